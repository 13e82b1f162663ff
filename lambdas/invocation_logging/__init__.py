"""Bedrock model invocation logging: a custom resource for a setting CloudFormation has no resource for."""
