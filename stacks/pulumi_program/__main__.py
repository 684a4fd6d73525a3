"""Entry point `pulumi up` runs (Pulumi.yaml `main:` points here): build the stack the config describes."""
from stacks.pulumi_program.program import build_stack

build_stack()
