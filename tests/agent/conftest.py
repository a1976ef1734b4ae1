"""Agent tests: the real agent code against the API stand-in over HTTP, on a real node.

A node is a GPT disk-image file (root A "KubeOS 1.0.0") and a host-root tree, built with
the real tools; the new image comes from the simulation's mTLS image server. Only the
reboot is a test plugin: it records the request, and `boot()` then does what the
machine would (boot grubenv's saved entry) before a fresh agent is created.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubeos.agent.loop import agent_api_client
from kubeos.agent.operations import AgentSettings, Operations
from kubeos.contracts import NodeContext
from kubeos.hooks import hookimpl
from kubeos.models.os import validate_spec
from kubeos.operator.planner import dispatch_spec
from kubeos.plugins import PluginHost
from kubeos.sim import disks
from kubeos.sim.apiserver import ApiServer
from kubeos.sim.imageserver import ImageServer
from kubeos.sim.machine import boot_saved_entry
from tests.support.disk import missing_tools

NODE = "node-1"
OLD, NEW = "KubeOS 1.0.0", "KubeOS 1.0.1"
IMAGE = "kubeos/update.img"


class RebootRecorder:
    """kubeos_reboot for tests: records the request instead of rebooting the test machine."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    @hookimpl
    def kubeos_reboot(self, node: NodeContext, reason: str) -> bool:
        self.requests.append(reason)
        return True


@dataclass
class AgentEnv:
    api: ApiServer
    node: NodeContext
    images: ImageServer
    image_sha256: str
    reboots: RebootRecorder
    host: PluginHost
    generation: int = 0
    os_uid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def settings(self, **kw: Any) -> AgentSettings:
        base = dict(
            node_name=NODE,
            host_root=self.node.host_root,
            proc_sys=self.node.proc_sys,
            disk=self.node.disk,
            work_dir=self.node.host_root / "persist/kubeos/tmp",
            drain_timeout=2.0,
            reboot_wait=0.01,
        )
        base.update(kw)
        return AgentSettings(**base)

    def agent(self, **kw: Any) -> Operations:
        """A fresh agent (as after a restart): nothing carried over but what the node and
        the API hold."""
        return Operations(agent_api_client(server=self.api.url), self.host, self.settings(**kw))

    def upgrade_spec(self, **overrides: Any) -> dict[str, Any]:
        spec = {
            "imagetype": "disk",
            "opstype": "upgrade",
            "osversion": NEW,
            "maxunavailable": 1,
            "containerimage": "",
            "evictpodforce": True,
            "imageurl": self.images.url(IMAGE),
            "checksum": self.image_sha256,
            "flagSafe": False,
            "mtls": True,
            "cacert": "ca.crt",
            "clientcert": "client.crt",
            "clientkey": "client.key",
        }
        spec.update(overrides)
        return spec

    def dispatch(self, spec: dict[str, Any]) -> str:
        """Write the OSInstance spec exactly as the operator does for a new OS generation."""
        self.generation += 1
        os_obj = {
            "metadata": {
                "name": "os-sample",
                "namespace": "default",
                "uid": self.os_uid,
                "generation": self.generation,
            }
        }
        parsed, problems = validate_spec(spec, self.host.model_validators())
        assert parsed is not None, problems
        body = dispatch_spec(os_obj, parsed)
        current = self.osinstance()
        current["spec"] = body
        self.api.replace("osinstances", current)
        return body["dispatch"]

    def osinstance(self) -> dict[str, Any]:
        return self.api.get("osinstances", NODE)

    def status(self) -> dict[str, Any]:
        return self.osinstance().get("status") or {}

    def node_obj(self) -> dict[str, Any]:
        return self.api.get("nodes", NODE, "")

    def boot(self) -> tuple[str, str]:
        """The machine reboots: saved entry booted, new boot id."""
        return boot_saved_entry(self.node)

    def run(self, agent: Operations | None = None) -> dict[str, Any]:
        agent = agent or self.agent()
        return agent.reconcile(agent.store.ensure())


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with ApiServer() as server:
        yield server


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if missing_tools():
        pytest.skip(f"needs {', '.join(missing_tools())} (scripts/setup installs them)")
    d = tmp_path_factory.mktemp("images")
    (d / "kubeos").mkdir()
    disks.build_root_image(d / IMAGE, NEW, size_mib=8)
    disks.build_root_image(d / "rootA.img", OLD, size_mib=8)
    disks.build_disk(d / "template.img", d / "rootA.img")
    return d


@pytest.fixture
def env(api: ApiServer, image_dir: Path, tmp_path: Path) -> Iterator[AgentEnv]:
    disk = tmp_path / "disk.img"
    disk.write_bytes((image_dir / "template.img").read_bytes())
    node = disks.build_host_root(tmp_path / "host", disk, OLD)
    node.node_name = NODE
    images = ImageServer(image_dir)
    images.install_node_certs(node.certs_dir, NODE)
    api.create("nodes", {"metadata": {"name": NODE, "labels": {}}, "spec": {}})
    reboots = RebootRecorder()
    host = PluginHost().load_entry_points()
    host.register(reboots, name="test_reboot")
    sha = hashlib.sha256((image_dir / IMAGE).read_bytes()).hexdigest()
    with images.running():
        yield AgentEnv(api, node, images, sha, reboots, host)
