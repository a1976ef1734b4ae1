"""Talking to the Kubernetes API: client construction and retry policy (official client only)."""
