"""imagetype docker end to end, with a real dockerd (vfs, no iptables) and a local registry.

dockerd runs on the session's containerd and pulls from docker-registry on 127.0.0.1
(plain http is allowed for loopback registries). If dockerd cannot start on a machine,
these tests skip with its log as the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from kubeos_image_docker.engine import DockerEngine

from kubeos.contracts import NodeContext
from kubeos.errors import ImageError
from kubeos.node.upgrade import upgrade
from kubeos.plugins import PluginHost
from tests.container.daemons import Containerd, Dockerd, Registry, publish
from tests.container.helpers import (
    debugfs_stat,
    os_image,
    recorded,
    recorder,
    scratch_left,
    upgrade_spec,
)
from tests.support.disk import ROOTS, TestNode, grubenv_bytes, read_file
from tests.support.plugins import RebootRecorder

Host = tuple[PluginHost, RebootRecorder]


@pytest.fixture
def node(disk_node: TestNode, dockerd: Dockerd) -> TestNode:
    disk_node.node.extras["docker.host"] = dockerd.host
    return disk_node


def leftovers(dockerd: Dockerd) -> tuple[list[str], list[str]]:
    images = dockerd.docker("images", "--quiet").stdout.split()
    containers = dockerd.docker("ps", "--all", "--quiet").stdout.split()
    return images, containers


def test_engine_address_from_extras_then_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    node = NodeContext(host_root=Path("/host"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert DockerEngine.for_node(node).host == "unix:///host/var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert DockerEngine.for_node(node).host == "tcp://127.0.0.1:2375"
    node.extras["docker.host"] = "unix:///run/other.sock"
    assert DockerEngine.for_node(node).host == "unix:///run/other.sock"


def test_upgrade_from_a_docker_image_u2(
    node: TestNode,
    dockerd: Dockerd,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = os_image("KubeOS 2.0.1")
    ref = publish(containerd, registry, image, "kubeos/os:2.0.1")
    shims, log = tmp_path / "bin", tmp_path / "docker.log"
    shims.mkdir()
    recorder(shims / "docker", log, f'exec {shutil.which("docker")} "$@"')
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    host, _ = plugin_host_with_recorder

    result = upgrade(
        host, upgrade_spec("docker", ref, image.manifest_digest, "KubeOS 2.0.1"), node.node
    )

    assert result.label == "B"
    assert node.version_on("B") == "KubeOS 2.0.1"
    assert node.saved_entry() == "B"
    with pytest.raises(FileNotFoundError):
        read_file(node.disk, ROOTS["B"], "/etc/obsolete.conf")
    with pytest.raises(FileNotFoundError):
        read_file(node.disk, ROOTS["B"], "/.dockerenv")
    assert "Mode:  04755" in debugfs_stat(node.disk, "B", "/usr/bin/passwd")

    calls = [c[2:] for c in recorded(log)]
    assert all(c[:2] == ["-H", dockerd.host] for c in recorded(log))
    verbs = [c[0] if c[0] != "image" else f"image {c[1]}" for c in calls]
    assert verbs == ["image inspect", "pull", "create", "export", "rm", "image inspect", "rmi"]
    create = calls[2]
    assert create[1:3] == ["--network", "none"]
    assert f"{ref.rsplit(':', 1)[0]}@{image.manifest_digest}" in create  # the verified digest
    assert leftovers(dockerd) == ([], [])
    assert scratch_left(node.node) == []


def test_docker_digest_mismatch_is_refused_d4(
    node: TestNode,
    dockerd: Dockerd,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
) -> None:
    image = os_image("KubeOS 2.0.2")
    ref = publish(containerd, registry, image, "kubeos/os:2.0.2")
    before = grubenv_bytes(node.node)
    host, _ = plugin_host_with_recorder
    with pytest.raises(ImageError, match=r"spec\.checksum.*\[D4\]"):
        upgrade(host, upgrade_spec("docker", ref, "0" * 64, "KubeOS 2.0.2"), node.node)
    assert node.version_on("B") is None
    assert grubenv_bytes(node.node) == before
    assert leftovers(dockerd) == ([], [])
    assert scratch_left(node.node) == []


def test_an_image_already_on_the_node_is_kept(
    node: TestNode,
    dockerd: Dockerd,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
) -> None:
    image = os_image("KubeOS 2.0.3")
    ref = publish(containerd, registry, image, "kubeos/os:2.0.3")
    dockerd.docker("pull", ref)
    host, _ = plugin_host_with_recorder
    try:
        upgrade(host, upgrade_spec("docker", ref, image.manifest_digest, "KubeOS 2.0.3"), node.node)
        assert node.version_on("B") == "KubeOS 2.0.3"
        images, containers = leftovers(dockerd)
        assert len(images) == 1 and containers == []
    finally:
        dockerd.docker("rmi", ref, check=False)


def test_digest_from_repo_digests_when_pull_output_lacks_it(
    node: TestNode,
    dockerd: Dockerd,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An engine/CLI whose pull output has no 'Digest:' line: RepoDigests is read instead."""
    image = os_image("KubeOS 2.0.4")
    ref = publish(containerd, registry, image, "kubeos/os:2.0.4")
    shims = tmp_path / "bin"
    shims.mkdir()
    real = shutil.which("docker")
    recorder(
        shims / "docker",
        tmp_path / "docker.log",
        f'if [ "$3" = pull ]; then {real} "$@" | grep -v "^Digest:"; exit 0; fi\nexec {real} "$@"',
    )
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    host, _ = plugin_host_with_recorder
    caplog.set_level("INFO", logger="kubeos_image_docker.engine")
    upgrade(host, upgrade_spec("docker", ref, image.manifest_digest, "KubeOS 2.0.4"), node.node)
    assert "names no digest" in caplog.text
    assert node.version_on("B") == "KubeOS 2.0.4"
    assert leftovers(dockerd) == ([], [])
