"""Build an ApiClient the same way for the operator, the agent and the simulation."""

from __future__ import annotations

from kubernetes import client, config


def api_client(
    kubeconfig: str | None = None, server: str | None = None, user_agent: str | None = None
) -> client.ApiClient:
    """In-cluster config when running in a pod, else kubeconfig; `server` forces a plain URL.

    `server` is how the embedded simulation points the real code at its in-process API.
    `user_agent` (e.g. "kubeos-operator/0.1.0") lets the API server tell callers apart.
    """
    api = _build(kubeconfig, server)
    if user_agent:
        api.user_agent = user_agent
    return api


def _build(kubeconfig: str | None, server: str | None) -> client.ApiClient:
    if server:
        cfg = client.Configuration()
        cfg.host = server
        return client.ApiClient(cfg)
    if kubeconfig is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return client.ApiClient(cfg)
