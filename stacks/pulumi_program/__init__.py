"""The one Pulumi program for GCP and Azure stacks; `authgate:cloud` in the stack config picks the cloud."""
