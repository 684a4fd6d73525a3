"""Infrastructure code: the auth policy model, its renderers, the AWS CDK stacks and the Pulumi components."""
