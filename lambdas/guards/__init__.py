"""Backend guards: a service behind a gateway checks its caller again (bearer tokens, ALB, GCP, Azure headers)."""
