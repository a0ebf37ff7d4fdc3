"""verify: a self-hosted signup-verification service."""
