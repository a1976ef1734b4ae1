"""OSInstance: one per node, the contract between the operator and that node's agent.

The operator writes `spec` (what the node must do); the agent writes `status` (what it
did). `spec.dispatch` names one operation uniquely so that both sides are idempotent:
the agent acts on a dispatch at most once to completion, and the operator never
re-dispatches a node whose status already reports that dispatch.

```yaml
spec:
  nodestatus: idle | upgrade | config | rollback
  dispatch: "<os uid>:<os generation>"      # "" when idle
  osref: {namespace: default, name: os-sample}
  osversion: KubeOS 1.0.1
  upgrade: {imagetype, imageurl, checksum, containerimage, flagSafe, mtls,
            cacert, clientcert, clientkey, evictpodforce}
  sysconfigs: {version, configs: [...]}     # same shape as in the OS
  upgradeconfigs: {version, configs: [...]}
status:
  dispatch: "<os uid>:<generation>"         # the operation this status is about
  phase: "" | draining | fetching | installing | rebooting | configuring | done | failed
  reason: human-readable cause when phase is failed
  pinnedcurrent: A | B                       # B3: partition current at dispatch time
  sysconfigs: {version}
  upgradeconfigs: {version}
```
"""

from __future__ import annotations

NODE_STATUSES = ("idle", "upgrade", "config", "rollback")
PHASES = ("", "draining", "fetching", "installing", "rebooting", "configuring", "done", "failed")
UPGRADE_FIELDS = (
    "imagetype",
    "imageurl",
    "checksum",
    "containerimage",
    "flagSafe",
    "mtls",
    "cacert",
    "clientcert",
    "clientkey",
    "evictpodforce",
)
PLURAL = "osinstances"
KIND = "OSInstance"
