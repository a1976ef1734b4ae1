"""The agent's side of the OSInstance contract, reduced to what the operator can observe."""

from __future__ import annotations

from typing import Any

from kubeos.sim.apiserver import ApiServer


def busy(api: ApiServer) -> list[str]:
    """Nodes whose OSInstance is in an operation that has not failed."""
    out = []
    for o in api.list("osinstances", "default"):
        st = o.get("status") or {}
        failed = st.get("phase") == "failed" and st.get("dispatch") == o["spec"].get("dispatch")
        if o["spec"].get("nodestatus", "idle") != "idle" and not failed:
            out.append(o["metadata"]["name"])
    return sorted(out)


def register(api: ApiServer, name: str) -> dict[str, Any]:
    """What the agent does at start: create its idle OSInstance."""
    return api.create(
        "osinstances",
        {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodestatus": "idle"}},
    )


def finish(api: ApiServer, name: str) -> None:
    """Success: the node runs the target, status names the dispatch, spec back to idle."""
    spec = api.get("osinstances", name)["spec"]
    if spec.get("nodestatus") in ("upgrade", "rollback"):
        api.patch("nodes", name, {"status": {"nodeInfo": {"osImage": spec["osversion"]}}},
                  namespace="", status=True)
    status: dict[str, Any] = {"dispatch": spec["dispatch"], "phase": "done"}
    # As the real agent: a config records sysconfigs only; upgrades record both (U3).
    blocks = ("sysconfigs",) if spec.get("nodestatus") == "config" else ("sysconfigs",
                                                                          "upgradeconfigs")
    for block in blocks:
        status[block] = {"version": (spec.get(block) or {}).get("version", "")}
    api.patch("osinstances", name, {"status": status}, status=True)
    api.patch("osinstances", name, {"spec": {"nodestatus": "idle"}})


def fail(api: ApiServer, name: str, reason: str = "checksum mismatch [D4]") -> None:
    """Failure: status failed with the reason; spec.nodestatus stays (C5)."""
    spec = api.get("osinstances", name)["spec"]
    api.patch("osinstances", name,
              {"status": {"dispatch": spec["dispatch"], "phase": "failed", "reason": reason}},
              status=True)
