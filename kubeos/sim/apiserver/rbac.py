"""RBAC authorization as a real server does it, from the Roles, ClusterRoles and bindings
stored in the stand-in (e.g. `kubectl apply -k deploy/`): with `authorize=True`, a request
by an authenticated user that no rule grants is refused with 403 Forbidden, so a missing
grant fails the simulation loudly instead of only in production.

Covered: Role/ClusterRole rules (apiGroups, resources incl. `res/subresource` and `*`,
verbs, resourceNames), RoleBinding (Role or ClusterRole, in its namespace) and
ClusterRoleBinding, subjects ServiceAccount, User and Group (`system:serviceaccounts`,
`system:serviceaccounts:<ns>`, `system:authenticated`). Not covered: aggregated
ClusterRoles, nonResourceURLs (non-resource paths are open to every authenticated user),
impersonation, escalation checks on RBAC writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubeos.sim.apiserver.audit import AuditRecord
from kubeos.sim.apiserver.errors import ApiError

Obj = dict[str, Any]
SA_PREFIX = "system:serviceaccount:"


def groups_of(user: str) -> set[str]:
    """The groups a real server puts a token's user in."""
    groups = {"system:authenticated"}
    if user.startswith(SA_PREFIX):
        namespace = user[len(SA_PREFIX) :].split(":", 1)[0]
        groups |= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
    return groups


def _subject_matches(subject: Obj, user: str, groups: set[str], binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_ns
        return user == f"{SA_PREFIX}{namespace}:{name}"
    if kind == "User":
        return user == name
    if kind == "Group":
        return name in groups
    return False


def _rule_allows(rule: Obj, req: AuditRecord) -> bool:
    resource = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    return (
        ("*" in groups or req.api_group in groups)
        and ("*" in resources or resource in resources or f"*/{req.subresource}" in resources)
        and ("*" in verbs or req.verb in verbs)
        and (not names or (bool(req.name) and req.name in names))
    )


def allowed(
    req: AuditRecord,
    roles: Iterable[Obj],
    cluster_roles: Iterable[Obj],
    bindings: Iterable[Obj],
    cluster_bindings: Iterable[Obj],
) -> bool:
    """Whether any binding of the user grants this request."""
    user = req.user
    groups = groups_of(user)
    role_rules = {
        (r["metadata"].get("namespace", ""), r["metadata"]["name"]): r.get("rules") or []
        for r in roles
    }
    cluster_rules = {r["metadata"]["name"]: r.get("rules") or [] for r in cluster_roles}
    for binding in cluster_bindings:
        if any(_subject_matches(s, user, groups, "") for s in binding.get("subjects") or []):
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole" and any(
                _rule_allows(rule, req) for rule in cluster_rules.get(ref.get("name"), [])
            ):
                return True
    for binding in bindings:
        namespace = binding["metadata"].get("namespace", "")
        if namespace != req.namespace:
            continue
        if not any(
            _subject_matches(s, user, groups, namespace) for s in binding.get("subjects") or []
        ):
            continue
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            rules = cluster_rules.get(ref.get("name"), [])
        else:
            rules = role_rules.get((namespace, ref.get("name")), [])
        if any(_rule_allows(rule, req) for rule in rules):
            return True
    return False


def forbidden(req: AuditRecord) -> ApiError:
    """The 403 a real server answers, in its words."""
    what = f"{req.resource}.{req.api_group}" if req.api_group else req.resource
    named = f' "{req.name}"' if req.name else ""
    sub = f"/{req.subresource}" if req.subresource else ""
    scope = f' in the namespace "{req.namespace}"' if req.namespace else " at the cluster scope"
    return ApiError(
        403,
        f'{what}{sub}{named} is forbidden: User "{req.user}" cannot {req.verb} resource '
        f'"{req.resource}{sub}" in API group "{req.api_group}"{scope}',
        reason="Forbidden",
        details={"name": req.name, "group": req.api_group, "kind": req.resource},
    )
