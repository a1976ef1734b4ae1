"""An in-process Kubernetes API server stand-in for tests and the embedded simulation.

No kube-apiserver binary can run here, so this speaks the Kubernetes REST API over real HTTP
for the resources in `resources.RESOURCES`, well enough that the official `kubernetes`
client (CoreV1Api, CustomObjectsApi, CoordinationV1Api, PolicyV1Api, EventsV1Api,
kubernetes.watch.Watch) and kubectl work against it unchanged: CRUD, status subresources,
resourceVersion conflicts, merge / strategic merge / JSON patch, label and field selectors,
chunked watch streams with resume and 410 Gone, and the pods/eviction subresource with
PodDisruptionBudgets. Writes the official client could not read back are refused (422);
custom resources whose CRD is installed are pruned, defaulted and validated (schema + CEL).
On top: fault injection (make the next N matching requests fail), an audit log of every
request in RBAC terms (the deployment's RBAC is derived from it), optional HTTPS with bearer
tokens, stop()/start() outages on the same port.

Modules: server (the `ApiServer` facade), transport (HTTP framing, watch streaming, TLS),
rest (routes, verbs, paging, discovery), store (objects, versions, events, watch), validate
(admission checks), schema (CRD schemas), patch, selectors, eviction (PDBs), table (kubectl
get columns), openapi (/openapi/v3 for kubectl), auth (tokens, certificates), audit (audit
log, faults), resources (the resource table), errors (Status bodies), rbac (authorization).

Written on the standard library (ThreadingHTTPServer in a background thread) rather than on
kmock: kmock lacks resourceVersion conflicts, PUT semantics, the status split and label
selectors, and brings aiohttp; the semantics are the bulk of the work either way.

    with ApiServer() as api:
        api.create("nodes", {"metadata": {"name": "n1"}})
        core = kubernetes.client.CoreV1Api(api.api_client(user_agent="kubeos-agent/0.1"))
        core.list_node(label_selector="role=worker")
"""
from kubeos.sim.apiserver.audit import AuditRecord
from kubeos.sim.apiserver.errors import ApiError
from kubeos.sim.apiserver.server import ApiServer

__all__ = ["ApiError", "ApiServer", "AuditRecord"]
