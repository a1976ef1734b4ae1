"""The embedded cluster: an in-process Kubernetes API stand-in and the node simulation."""
