"""Custom model serving: delete a Bedrock customization pipeline's serving when its stack goes."""
