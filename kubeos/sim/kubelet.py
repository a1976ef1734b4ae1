"""A simulated kubelet: registers the Node and reports what the machine booted.

Just the part of a kubelet the product relies on: the Node object with its labels, the
Ready condition and status.nodeInfo.osImage (PRETTY_NAME of the booted /etc/os-release,
U8), plus one ReplicaSet pod and one DaemonSet pod so that the drain has work to do.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeos import __version__
from kubeos.kube.retry import retry_call

log = logging.getLogger(__name__)
USER_AGENT = f"kubeos-sim-kubelet/{__version__}"
WORKLOAD_NAMESPACE = "default"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimKubelet:
    def __init__(self, api: client.ApiClient, node: str, labels: Mapping[str, str]) -> None:
        self.core = client.CoreV1Api(api)
        self.node = node
        self.labels = dict(labels)

    def _status(self, os_image: str, ready: bool) -> dict:
        return {
            "nodeInfo": {
                "osImage": os_image,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "kernelVersion": "6.1.0-kubeos-sim",
                "kubeletVersion": "v1.30.0-sim",
                "containerRuntimeVersion": "containerd://1.6.20",
                "machineID": self.node,
                "systemUUID": self.node,
                "bootID": "",
                "kubeProxyVersion": "",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "kubelet is posting ready status" if ready else "node rebooting",
                    "lastHeartbeatTime": _now(),
                    "lastTransitionTime": _now(),
                }
            ],
            "addresses": [{"type": "Hostname", "address": self.node}],
        }

    def register(self, os_image: str) -> None:
        """Create the Node (Ready, running `os_image`) and its pods."""
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node, "labels": self.labels},
            "spec": {},
        }
        try:
            retry_call(lambda: self.core.create_node(body), what=f"register node {self.node}")
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.report(os_image, ready=True)
        self._schedule_pods()

    def report(self, os_image: str, ready: bool) -> None:
        """What a kubelet posts after (re)starting: osImage and the Ready condition."""
        body = {"status": self._status(os_image, ready)}
        retry_call(
            lambda: self.core.patch_node_status(self.node, body),
            what=f"node status {self.node}",
        )

    def _schedule_pods(self) -> None:
        for kind, name in (("ReplicaSet", "web"), ("DaemonSet", "node-exporter")):
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-{self.node}",
                    "namespace": WORKLOAD_NAMESPACE,
                    "labels": {"app": name},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": kind,
                            "name": name,
                            "uid": f"{name}-uid",
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "nodeName": self.node,
                    "containers": [{"name": name, "image": f"example.internal/{name}:1"}],
                },
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
            try:
                self.core.create_namespaced_pod(WORKLOAD_NAMESPACE, pod)
            except ApiException as exc:
                if exc.status != 409:
                    raise
