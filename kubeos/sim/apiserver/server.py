"""`ApiServer`: the facade that starts the stand-in and seeds, inspects and faults it."""


from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kubeos import fsutil
from kubeos.sim.apiserver import rbac as apirbac
from kubeos.sim.apiserver.audit import AuditLog, AuditRecord, Fault
from kubeos.sim.apiserver.auth import TlsMaterial, TokenAuthenticator
from kubeos.sim.apiserver.errors import ApiError
from kubeos.sim.apiserver.resources import BY_KIND, ResourceType, resolve
from kubeos.sim.apiserver.store import ApiStore, Obj
from kubeos.sim.apiserver.transport import ApiHttpServer

log = logging.getLogger(__name__)


class ApiServer:
    """The API stand-in: start it, point clients at `.url`, seed and inspect with the helpers.

    Thread-safe. `watch_timeout` bounds every watch (a longer timeoutSeconds is cut, as by a
    proxy in front of a real server);
    `bookmark_interval` paces BOOKMARK events for watches that allow them; `history_limit`
    is how many events a watch can resume across before it gets 410 Gone. `tls=True` serves
    HTTPS with a throw-away CA (`ca_pem`, `ca_file`); `tokens` (token -> user name, or
    `add_user` later) makes a bearer token mandatory and names the caller in the audit;
    `authorize=True` then enforces the stored RBAC objects on those callers (apirbac).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        history_limit: int = 10000,
        watch_timeout: float = 1800.0,
        bookmark_interval: float = 5.0,
        tls: bool = False,
        tokens: Mapping[str, str] | None = None,
        authorize: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.rbac = authorize
        self._admins: set[str] = set()
        self.authenticator = TokenAuthenticator(tokens)
        self._tls_material: TlsMaterial | None = None
        self.store = ApiStore(history_limit=history_limit)
        self.watch_timeout = watch_timeout
        self.bookmark_interval = bookmark_interval
        self.stopping = False
        self.audit_log = AuditLog()
        self._httpd: ApiHttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ApiServer:
        """Listen (again): after stop(), the same port, objects and history come back, which
        is how a test takes the API away for a while (clients see connection errors)."""
        if self._httpd is not None:
            raise RuntimeError("ApiServer already started")
        self.stopping = False
        self.store.reopen()
        if self.tls:
            self._tls_material = TlsMaterial()
        context = self._tls_material.context if self._tls_material else None
        self._httpd = ApiHttpServer((self.host, self.port), self, context)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"kube-api-{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("Kubernetes API stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        """End every watch stream and connection, then the listener."""
        if self._httpd is None:
            return
        self.stopping = True
        self.store.close()
        self._httpd.shutdown()
        self._httpd.cut_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        if self._tls_material is not None:
            self._tls_material.cleanup()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM) that signed the server's certificate (tls=True, started)."""
        return self._material().ca_pem

    @property
    def ca_file(self) -> Path:
        """A file with `ca_pem`, valid while the server runs."""
        return self._material().ca_file

    def _material(self) -> TlsMaterial:
        if self._tls_material is None:
            raise RuntimeError("no TLS material: construct with tls=True and start() first")
        return self._tls_material

    def add_user(self, user: str, token: str | None = None, *, admin: bool = False) -> str:
        """Register a caller; returns its bearer token. From then on tokens are required.
        An admin (like system:masters) is never refused by RBAC."""
        if admin:
            self._admins.add(user)
        return self.authenticator.add(user, token)

    def authorize(self, record: AuditRecord) -> None:
        """RBAC on an authenticated caller when authorize=True (called per request)."""
        if not self.rbac or not record.user or record.user in self._admins:
            return
        stored = {
            kind: self.store.list(resolve(f"{kind}.rbac.authorization.k8s.io"))[0]
            for kind in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
        }
        if not apirbac.allowed(
            record,
            stored["roles"],
            stored["clusterroles"],
            stored["rolebindings"],
            stored["clusterrolebindings"],
        ):
            raise apirbac.forbidden(record)

    # -- clients ---------------------------------------------------------------------------

    def api_client(
        self, user_agent: str = "kubeos-test/0", token: str | None = None
    ) -> client.ApiClient:
        """An official-client ApiClient pointed here (trusting the CA with tls=True, sending
        `token` as bearer token); the user agent shows up in the audit."""
        cfg = client.Configuration()
        cfg.host = self.url
        if self.tls:
            cfg.ssl_ca_cert = str(self.ca_file)
        if token:
            cfg.api_key = {"BearerToken": token}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
        api = client.ApiClient(cfg)
        api.user_agent = user_agent
        return api

    def write_kubeconfig(self, path: str | Path, token: str | None = None) -> Path:
        """A kubeconfig for this server (kubectl, config.load_kube_config): the CA inline
        with tls=True, `token` as the user's bearer token. A new file gets mode 0600."""
        path = Path(path)
        cluster: Obj = {"server": self.url}
        if self.tls:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sim", "cluster": cluster}],
            "users": [{"name": "sim", "user": {"token": token} if token else {}}],
            "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}}],
            "current-context": "sim",
        }
        fsutil.atomic_write(path, json.dumps(cfg, indent=2), default_mode=0o600)  # JSON is YAML
        return path

    # -- seeding and inspection (no HTTP, not audited) ------------------------------------

    def create(self, resource: str, obj: Obj, namespace: str | None = None) -> Obj:
        """Create an object directly; namespace defaults to metadata.namespace or "default".

        Unlike a POST, an object as read back (with a resourceVersion) is accepted: the
        server-managed metadata is replaced anyway.
        """
        rtype = resolve(resource)
        meta = dict(obj.get("metadata") or {})
        meta.pop("resourceVersion", None)
        ns = namespace or meta.get("namespace") or "default"
        return self.store.create(rtype, ns if rtype.namespaced else "", {**obj, "metadata": meta})

    def apply_manifests(self, *paths: str | Path) -> list[str]:
        """Create or replace every object in these YAML files (multi-document), like
        `kubectl apply` without the three-way merge; returns "Kind/name" of each.

        CRDs go first, so custom resources in the same files are checked against them.
        """
        docs = [
            (path, doc)
            for path in paths
            for doc in yaml.safe_load_all(Path(path).read_text())
            if doc
        ]
        docs.sort(key=lambda item: item[1].get("kind") != "CustomResourceDefinition")
        applied = []
        for path, doc in docs:
            rtype = BY_KIND.get((doc.get("apiVersion", ""), doc.get("kind", "")))
            if rtype is None:
                raise ValueError(
                    f"{path}: {doc.get('apiVersion')} {doc.get('kind')} is not served here"
                )
            applied.append(f"{rtype.kind}/{self._upsert(rtype, doc)['metadata']['name']}")
        return applied

    def install_crds(self, *paths: str | Path) -> list[str]:
        """Store the CustomResourceDefinitions in these YAML files (create or replace).

        From then on the custom resources they define are pruned, defaulted and validated
        against their schema and CEL rules on every write, as on a real server (apischema).
        """
        crds = resolve("customresourcedefinitions")
        return [
            self._upsert(crds, doc)["metadata"]["name"]
            for path in paths
            for doc in yaml.safe_load_all(Path(path).read_text())
            if doc and doc.get("kind") == "CustomResourceDefinition"
        ]

    def _upsert(self, rtype: ResourceType, doc: Obj) -> Obj:
        meta = doc.setdefault("metadata", {})
        namespace = (meta.get("namespace") or "default") if rtype.namespaced else ""
        try:
            current = self.store.get(rtype, namespace, meta.get("name", ""))
        except ApiError:
            meta.pop("resourceVersion", None)
            return self.store.create(rtype, namespace, doc)
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.store.replace(rtype, namespace, meta["name"], doc)

    def get(self, resource: str, name: str, namespace: str = "default") -> Obj:
        return self.store.get(resolve(resource), namespace, name)

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        return self.store.list(resolve(resource), namespace)[0]

    def replace(self, resource: str, obj: Obj, *, status: bool = False) -> Obj:
        """PUT semantics (status=True writes the status subresource)."""
        rtype, meta = resolve(resource), obj.get("metadata") or {}
        return self.store.replace(
            rtype,
            meta.get("namespace") or "default",
            meta["name"],
            obj,
            subresource="status" if status else None,
        )

    def patch(
        self,
        resource: str,
        name: str,
        patch: Obj,
        namespace: str = "default",
        *,
        status: bool = False,
    ) -> Obj:
        """A JSON merge patch (status=True patches the status subresource)."""
        return self.store.patch(
            resolve(resource),
            namespace,
            name,
            "application/merge-patch+json",
            patch,
            subresource="status" if status else None,
        )

    def delete(self, resource: str, name: str, namespace: str = "default") -> Obj:
        return self.store.delete(resolve(resource), namespace, name)

    def wait_for(
        self,
        resource: str,
        predicate: Callable[[list[Obj]], Any],
        namespace: str | None = None,
        timeout: float = 10.0,
    ) -> Any:
        """Block until predicate(all objects of the resource) is truthy; returns its value."""
        return self.store.wait_for(resolve(resource), predicate, namespace, timeout)

    def compact(self) -> None:
        """Drop the event history: watches resuming from before now get 410 Gone."""
        self.store.compact()

    # -- fault injection and audit ---------------------------------------------------------

    def inject_fault(
        self,
        verb: str,
        resource: str,
        status: int,
        *,
        count: int = 1,
        retry_after: float | None = None,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        message: str = "injected fault",
        delay: float = 0.0,
    ) -> Fault:
        """Make the next `count` matching requests fail with `status` (G2 retry tests),
        after `delay` seconds; `fault.remaining` counts down."""
        return self.audit_log.add_fault(
            Fault(
                verb,
                resource,
                status,
                count,
                retry_after,
                subresource,
                namespace,
                name,
                message,
                delay,
            )
        )

    def inject_delay(
        self,
        verb: str,
        resource: str,
        seconds: float,
        *,
        count: int = 1,
        subresource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
    ) -> Fault:
        """Make the next `count` matching requests answer only after `seconds` (client
        timeouts); they then succeed."""
        return self.audit_log.add_fault(
            Fault(verb, resource, None, count, None, subresource, namespace, name, "", seconds)
        )

    def clear_faults(self) -> None:
        self.audit_log.clear_faults()

    @property
    def audit(self) -> list[AuditRecord]:
        """Every resource request so far, oldest first (a copy)."""
        return self.audit_log.records()

    def clear_audit(self) -> None:
        self.audit_log.clear()


__all__ = ["ApiError", "ApiServer", "AuditRecord", "Fault"]
