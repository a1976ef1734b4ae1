"""Build an ApiClient the same way for the operator, the agent and the simulation."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubernetes import client, config

#: (connect, read) seconds for every request that is not a watch stream.
DEFAULT_REQUEST_TIMEOUT: tuple[float, float] = (10.0, 60.0)


class BoundedApiClient(client.ApiClient):
    """An ApiClient whose plain requests cannot hang forever.

    The official client waits without limit unless each call passes `_request_timeout`:
    a half-open connection (an API server failing over behind a VIP) would then freeze a
    draining agent with its node cordoned, or the operator's Lease renewal. Watch streams
    (`_preload_content=False`) keep their own server-side `timeout_seconds`.
    """

    request_timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_request_timeout") is None and not _is_watch(args, kwargs):
            kwargs["_request_timeout"] = self.request_timeout
        return super().call_api(*args, **kwargs)


def _is_watch(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """A watch stream, in either calling convention of the official client.

    Before v31 a watch arrives with `_preload_content=False`; since then `call_api` gets
    (method, url-with-query, ...) and a watch is a `watch=true` query parameter.
    """
    if kwargs.get("_preload_content") is False:
        return True
    for arg in args[:2]:
        if isinstance(arg, str) and "?" in arg:
            watch = parse_qs(urlsplit(arg).query).get("watch", [""])[0]
            if watch.lower() in ("true", "1"):
                return True
    return False


def api_client(
    kubeconfig: str | None = None,
    server: str | None = None,
    user_agent: str | None = None,
    request_timeout: tuple[float, float] = DEFAULT_REQUEST_TIMEOUT,
) -> client.ApiClient:
    """In-cluster config when running in a pod, else kubeconfig; `server` forces a plain URL.

    `server` is how the embedded simulation points the real code at its in-process API.
    `user_agent` (e.g. "kubeos-operator/0.1.0") lets the API server tell callers apart.
    """
    api = _build(kubeconfig, server)
    api.request_timeout = request_timeout
    if user_agent:
        api.user_agent = user_agent
    return api


def _build(kubeconfig: str | None, server: str | None) -> BoundedApiClient:
    if server:
        cfg = client.Configuration()
        cfg.host = server
        return BoundedApiClient(cfg)
    if kubeconfig is None:
        try:
            config.load_incluster_config()
            return BoundedApiClient()
        except config.ConfigException:
            pass
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return BoundedApiClient(cfg)
