"""AWS CDK constructs and stacks that put authgate's policy in front of APIs on AWS."""
