"""Talking to the Kubernetes API with the official client only: client construction
(client), retry policy (retry), list+watch caches (informer), Lease leader election
(leader) and Events (events)."""
