"""The model gateway: an OpenAI-compatible API over Bedrock, SageMaker and self-hosted models."""
