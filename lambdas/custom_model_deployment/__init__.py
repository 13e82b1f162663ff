"""Custom model deployment task of the Bedrock customization pipeline."""
