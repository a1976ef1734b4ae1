"""The resource table of the API stand-in: adding a resource is one `ResourceType(...)` line.

Field selectors are limited per resource to what a real kube-apiserver accepts, so code that
works here does not fail on a real cluster with "field label not supported".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeos.models.osinstance import KIND as OSINSTANCE_KIND
from kubeos.models.osinstance import PLURAL as OSINSTANCE_PLURAL

COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what it is called, how it behaves."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    #: Has a /status subresource: the main endpoint ignores status, /status only status.
    status: bool = False
    #: A custom resource: no strategic merge patch (415, as on a real server).
    custom: bool = False
    #: Extra field-selector paths beyond metadata.name / metadata.namespace.
    fields: tuple[str, ...] = ()
    subresources: tuple[str, ...] = field(default=())
    #: DELETE answers with the object (pods, custom resources) instead of a Status.
    delete_returns_object: bool = False
    #: The official client's model class: writes it cannot read back are refused (422).
    model: str = ""

    @property
    def returns_deleted_object(self) -> bool:
        return self.custom or self.delete_returns_object

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Unique name: the plural for the core group, `plural.group` otherwise."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def field_selectors(self) -> tuple[str, ...]:
        return COMMON_FIELDS + self.fields

    @property
    def allowed_subresources(self) -> tuple[str, ...]:
        return (("status",) if self.status else ()) + self.subresources


OS_GROUP = "upgrade.openeuler.org"

POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
CORE_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
EVENT_FIELDS = (
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "reason",
    "reportingController",
    "type",
)

# fmt: off
RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, status=True,
                 fields=("status.phase",), model="V1Namespace"),
    ResourceType("", "v1", "nodes", "Node", False, status=True,
                 fields=("spec.unschedulable",), model="V1Node"),
    ResourceType("", "v1", "pods", "Pod", True, status=True, subresources=("eviction",),
                 delete_returns_object=True, fields=POD_FIELDS, model="V1Pod"),
    ResourceType("", "v1", "events", "Event", True, fields=CORE_EVENT_FIELDS,
                 model="CoreV1Event"),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, model="V1ConfigMap"),
    ResourceType("", "v1", "secrets", "Secret", True, fields=("type",), model="V1Secret"),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, model="V1ServiceAccount"),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, fields=EVENT_FIELDS,
                 model="EventsV1Event"),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, model="V1Lease"),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True,
                 status=True, model="V1PodDisruptionBudget"),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True, status=True,
                 model="V1DaemonSet"),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, status=True,
                 model="V1ReplicaSet"),
    ResourceType("apps", "v1", "deployments", "Deployment", True, status=True,
                 model="V1Deployment"),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True, status=True,
                 model="V1StatefulSet"),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True, model="V1Role"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True,
                 model="V1RoleBinding"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False,
                 model="V1ClusterRole"),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
                 False, model="V1ClusterRoleBinding"),
    # Stored so that `kubectl apply -R -f deploy/` works; NOT enforced (no authentication).
    ResourceType("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies",
                 "ValidatingAdmissionPolicy", False, status=True,
                 model="V1ValidatingAdmissionPolicy"),
    ResourceType("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
                 "ValidatingAdmissionPolicyBinding", False,
                 model="V1ValidatingAdmissionPolicyBinding"),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                 "CustomResourceDefinition", False, status=True,
                 model="V1CustomResourceDefinition"),
    ResourceType(OS_GROUP, "v1alpha1", "os", "OS", True, status=True, custom=True),
    ResourceType(OS_GROUP, "v1alpha1", OSINSTANCE_PLURAL, OSINSTANCE_KIND, True, status=True,
                 custom=True),
)
# fmt: on

BY_PATH: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES}
#: (apiVersion, kind) -> ResourceType, for applying manifests
BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}


def resolve(name: str) -> ResourceType:
    """`pods`, `leases`, `osinstances`, `events.events.k8s.io` ... -> its ResourceType.

    A bare plural resolves when exactly one group serves it (`events` means core/v1 events).
    """
    if name in BY_KEY:
        return BY_KEY[name]
    matches = [r for r in RESOURCES if r.plural == name]
    if len(matches) == 1:
        return matches[0]
    raise KeyError(f"unknown resource {name!r}; known: {sorted(BY_KEY)}")


def groups() -> dict[str, list[str]]:
    """group -> versions served, for discovery."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out
