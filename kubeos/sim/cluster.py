"""The embedded cluster: API stand-in, operator, N simulated machines, an image server.

Everything is real except what cannot exist here (kube-apiserver, a machine's reboot):
the operator runs in-process against the API stand-in over HTTP, each node's agent is
its own process with its own plugin host and the real plugins, disks are GPT image files
written by the real disk code, and the new OS image comes over mutual TLS.

    with EmbeddedCluster(workdir, ClusterConfig(nodes=4)) as cluster:
        cluster.apply_os(cluster.upgrade_spec(maxunavailable=2))
        cluster.wait_rollout(timeout=120)

The agents are multiprocessing (fork server) children, so a script using this must keep
its top level behind `if __name__ == "__main__":` (children import the main module).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from kubeos import API_VERSION, GROUP, NODE_SELECTOR_LABEL, VERSION, __version__
from kubeos.kube.client import api_client
from kubeos.kube.retry import retry_call
from kubeos.node.osrelease import pretty_name
from kubeos.sim import disks
from kubeos.sim.apiserver import ApiServer
from kubeos.sim.imageserver import ImageServer
from kubeos.sim.kubelet import SimKubelet
from kubeos.sim.machine import SimMachine, start_fork_server
from kubeos.sim.monitor import Monitor, Snapshot

log = logging.getLogger(__name__)
OLD_VERSION = "KubeOS 1.0.0"
NEW_VERSION = "KubeOS 1.0.1"
IMAGE_PATH = "kubeos/update-1.0.1.img"
OS_NAME = "os-sample"
ADMIN_AGENT = f"kubectl/kubeos-sim-{__version__}"
#: The product's CRDs (schemas, CEL rules), when running from a source tree.
CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"
#: An agent dying this soon after its start counts as crash-looping: back off.
CRASH_WINDOW = 5.0
MAX_RESTART_DELAY = 10.0


@dataclass
class ClusterConfig:
    nodes: int = 4
    namespace: str = "default"
    #: node index (1-based) -> extra labels, e.g. {2: {NODE_SELECTOR_LABEL: "edge"}}
    labels: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    drain_timeout: float = 20.0
    root_mib: int = 12
    image_mib: int = 8
    #: how soon a dead agent is started again (the DaemonSet restarting its pod)
    restart_delay: float = 0.5


class EmbeddedCluster:
    def __init__(self, workdir: Path, config: ClusterConfig | None = None) -> None:
        self.workdir = Path(workdir)
        self.config = config or ClusterConfig()
        self.api = ApiServer()
        self.images = ImageServer(self.workdir / "images")
        self.machines: dict[str, SimMachine] = {}
        self.monitor: Monitor | None = None
        self.operator_stop = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._admin: client.ApiClient | None = None
        self.image_sha256 = ""
        self.reboots: list[tuple[float, str, str]] = []  # (time, node, booted version)

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> EmbeddedCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EmbeddedCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        start_fork_server()
        self.api.start()
        crds = sorted(CRD_DIR.glob("*.yaml")) if CRD_DIR.is_dir() else []
        if crds:  # from a source tree: OS/OSInstance writes are validated and pruned
            self.api.install_crds(*crds)
        self._admin = self.api.api_client(user_agent=ADMIN_AGENT)
        self._build_images()
        self.images.start()
        template = self._template_disk()
        for i in range(1, self.config.nodes + 1):
            self._add_machine(f"node-{i}", template, self.config.labels.get(i, {}))
        self.monitor = Monitor(self.api, self.config.namespace).start()
        self._spawn(self._supervise, "sim-supervisor")
        self._spawn(self._run_operator, "sim-operator")
        self.wait_agents_ready()
        return self

    def wait_agents_ready(self, timeout: float = 120.0) -> None:
        """Block until every node's agent has registered its OSInstance (agents are up)."""
        names = set(self.machines)
        self.api.wait_for(
            "osinstances",
            lambda items: names <= {o["metadata"]["name"] for o in items if o.get("status")},
            namespace=self.config.namespace,
            timeout=timeout,
        )

    def stop(self) -> None:
        self._stop.set()
        self.operator_stop.set()
        for t in self._threads:  # the supervisor first: it must not restart agents now
            t.join(timeout=10)
        for machine in self.machines.values():
            machine.kill_agent()  # power off: the agent is built to be cut anywhere
        if self.monitor is not None:
            self.monitor.stop()
        self.images.stop()
        self.api.stop()

    def _spawn(self, target: Any, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # -- building the machines ---------------------------------------------------------
    def _build_images(self) -> None:
        image = self.workdir / "images" / IMAGE_PATH
        image.parent.mkdir(parents=True, exist_ok=True)
        image.unlink(missing_ok=True)
        disks.build_root_image(image, NEW_VERSION, self.config.image_mib)
        self.image_sha256 = hashlib.sha256(image.read_bytes()).hexdigest()

    def _template_disk(self) -> Path:
        tdir = self.workdir / "template"
        shutil.rmtree(tdir, ignore_errors=True)
        tdir.mkdir(parents=True)
        root_a = disks.build_root_image(tdir / "rootA.img", OLD_VERSION, self.config.image_mib)
        sizes = disks.DiskSizes(root_mib=self.config.root_mib)
        disk = disks.build_disk(tdir / "disk.img", root_a, sizes)
        root_a.unlink()
        return disk

    def _add_machine(self, name: str, template: Path, extra: Mapping[str, str]) -> None:
        mdir = self.workdir / "nodes" / name
        shutil.rmtree(mdir, ignore_errors=True)
        mdir.mkdir(parents=True)
        disk = shutil.copyfile(template, mdir / "disk.img")
        node = disks.build_host_root(mdir / "host", disk, OLD_VERSION)
        node.node_name = name
        self.images.install_node_certs(node.certs_dir, name)
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "node-role.kubernetes.io/worker": "",
            **extra,
        }
        kubelet = SimKubelet(self.api.api_client(user_agent=f"kubelet/{name}"), name, labels)
        kubelet.register(pretty_name(node.host_path("/etc/os-release").read_text()))
        machine = SimMachine(
            name=name,
            workdir=mdir,
            node=node,
            kubelet=kubelet,
            server_url=self.api.url,
            namespace=self.config.namespace,
            drain_timeout=self.config.drain_timeout,
        )
        machine.start_agent()
        self.machines[name] = machine

    # -- the machines' world: reboots and restarts -------------------------------------
    def _supervise(self) -> None:
        """Carry out reboot requests; restart dead agents with a growing delay (CrashLoop)."""
        dead_since: dict[str, float] = {}
        delay = dict.fromkeys(self.machines, self.config.restart_delay)
        started = dict.fromkeys(self.machines, time.monotonic())
        broken: set[str] = set()
        while not self._stop.wait(0.05):
            for name, machine in list(self.machines.items()):
                if name in broken:
                    continue
                if machine.reboot_requested:
                    try:
                        version = machine.reboot()
                    except Exception:
                        log.exception("%s: the machine does not come back; it stays down", name)
                        broken.add(name)
                        continue
                    self.reboots.append((time.monotonic(), name, version))
                    started[name] = time.monotonic()
                    dead_since.pop(name, None)
                elif not machine.agent_running and not self._stop.is_set():
                    since = dead_since.setdefault(name, time.monotonic())
                    if time.monotonic() - since < delay[name]:
                        continue
                    crashed_early = time.monotonic() - started[name] < CRASH_WINDOW
                    delay[name] = (
                        min(delay[name] * 2, MAX_RESTART_DELAY)
                        if crashed_early
                        else self.config.restart_delay
                    )
                    log.info("%s: agent is not running; restarting it", name)
                    machine.start_agent()
                    started[name] = time.monotonic()
                    dead_since.pop(name, None)

    def _run_operator(self) -> None:
        from kubeos.operator.service import Operator

        api = api_client(server=self.api.url)
        Operator(
            api,
            self.config.namespace,
            lease_duration=5.0,
            renew_deadline=4.0,
            retry_period=0.5,
        ).run(self.operator_stop)

    # -- the admin's view --------------------------------------------------------------
    @property
    def custom(self) -> client.CustomObjectsApi:
        assert self._admin is not None
        return client.CustomObjectsApi(self._admin)

    def upgrade_spec(self, **overrides: Any) -> dict[str, Any]:
        """The disk upgrade to 1.0.1 over mTLS; `overrides` replace spec fields."""
        names = self.images.names
        spec: dict[str, Any] = {
            "imagetype": "disk",
            "opstype": "upgrade",
            "osversion": NEW_VERSION,
            "maxunavailable": 2,
            "containerimage": "",
            "evictpodforce": True,
            "imageurl": self.images.url(IMAGE_PATH),
            "checksum": self.image_sha256,
            "flagSafe": False,
            "mtls": True,
            "cacert": names.cacert,
            "clientcert": names.clientcert,
            "clientkey": names.clientkey,
            "executionmode": "parallel",
            "timeinterval": 0,
        }
        spec.update(overrides)
        return spec

    def apply_os(self, spec: Mapping[str, Any], name: str = OS_NAME) -> dict[str, Any]:
        """Create the OS object, or replace its spec (a new generation: a new dispatch)."""
        ns = self.config.namespace

        def apply() -> dict[str, Any]:
            try:
                current = self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "os", name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                body = {
                    "apiVersion": API_VERSION,
                    "kind": "OS",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": dict(spec),
                }
                return dict(
                    self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, "os", body)
                )
            body = copy.deepcopy(current)
            body["spec"] = dict(spec)
            return dict(
                self.custom.replace_namespaced_custom_object(GROUP, VERSION, ns, "os", name, body)
            )

        # The operator writes the OS status meanwhile: a 409 means read it again (G2).
        return retry_call(apply, what=f"apply OS {ns}/{name}")

    def label(self, node: str, value: str) -> None:
        """Set the node-selector label (N1) on one node."""
        core = client.CoreV1Api(self._admin)
        core.patch_node(node, {"metadata": {"labels": {NODE_SELECTOR_LABEL: value}}})

    # -- waiting -----------------------------------------------------------------------
    def settled(self, snap: Snapshot, nodes: list[str], version: str) -> bool:
        """Every node in `nodes` runs `version`, is Ready and idle."""
        rows = [snap.row(n) for n in nodes]
        return all(
            r is not None and r.version == version and r.nodestatus == "idle" and r.ready
            for r in rows
        )

    def wait_rollout(
        self, version: str = NEW_VERSION, nodes: list[str] | None = None, timeout: float = 120.0
    ) -> Snapshot:
        assert self.monitor is not None
        targets = nodes or sorted(self.machines)
        return self.monitor.wait(lambda s: self.settled(s, targets, version), timeout)
