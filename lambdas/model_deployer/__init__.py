"""Model deployer: deploy an approved SageMaker model package version to its configured endpoint."""
