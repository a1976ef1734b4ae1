"""Imported by the simulation's fork server: the agent, the client and every plugin.

Also builds the Kubernetes API classes once: the client constructs them lazily and the
first CoreV1Api() costs about a second, which every forked agent would pay again.
"""

from kubernetes import client

from kubeos.sim import agentproc

agentproc.preload()
_warm = client.ApiClient()
client.CoreV1Api(_warm)
client.CustomObjectsApi(_warm)
