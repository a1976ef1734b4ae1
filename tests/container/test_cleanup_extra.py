"""What a killed or finished container fetch leaves on the node: nothing of ours, nothing
readable by others, no docker volumes. Real containerd, dockerd and registry.

- the scratch sweep before each fetch removes only names kubeos creates (spool files,
  built root images, work trees, even read-only ones) and never follows a symlink;
- the scratch directory is 0700 and the built root image 0600 (it holds /etc/shadow);
- `docker rm --volumes`: an image that declares a VOLUME leaves no anonymous volume.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import kubeos_image_containerd
import pytest

from kubeos.contracts import DEFAULT_SCRATCH
from kubeos.node.layout import find_layout
from kubeos.node.upgrade import upgrade
from kubeos.plugins import PluginHost
from tests.container.daemons import Containerd, Dockerd, Registry, publish
from tests.container.helpers import os_image, upgrade_spec
from tests.container.ociimage import OCIImage
from tests.support.disk import TestNode
from tests.support.plugins import RebootRecorder

Host = tuple[PluginHost, RebootRecorder]


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def with_volume(image: OCIImage, path: str) -> OCIImage:
    """The same image with `VOLUME path` in its config (new config and manifest digests)."""
    blobs = dict(image.blobs)
    manifest = json.loads(blobs.pop(image.manifest_digest))
    config = json.loads(blobs.pop(manifest["config"]["digest"]))
    config["config"] = {**config.get("config", {}), "Volumes": {path: {}}}
    raw_config = json.dumps(config).encode()
    blobs[_digest(raw_config)] = raw_config
    manifest["config"] = {
        **manifest["config"],
        "digest": _digest(raw_config),
        "size": len(raw_config),
    }
    raw_manifest = json.dumps(manifest).encode()
    blobs[_digest(raw_manifest)] = raw_manifest
    return OCIImage(blobs, _digest(raw_manifest), len(raw_manifest))


def plant_leftovers(scratch: Path, outside: Path) -> tuple[list[str], list[str]]:
    """What a SIGKILLed fetch leaves (ours) next to things that are not ours."""
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    (scratch / "kubeos-spool-ab_cd123.img").write_bytes(b"half an image")
    (scratch / "kubeos-root-0123456789abcdef.ext4").write_bytes(b"half an ext4")
    tree = scratch / "kubeos-containerd-x1y2z3w4" / "rootfs" / "usr" / "sbin"
    tree.mkdir(parents=True)
    (tree / "tool").write_bytes(b"\x7fELF")
    tree.chmod(0o555)  # read-only dirs as an extracted image has them
    (scratch / "kubeos-docker-q9q9q9q9").mkdir()
    ours = [
        "kubeos-spool-ab_cd123.img",
        "kubeos-root-0123456789abcdef.ext4",
        "kubeos-containerd-x1y2z3w4",
        "kubeos-docker-q9q9q9q9",
    ]
    outside.write_text("keep me")
    (scratch / "kubeos-spool-zzzzzzzz.img").symlink_to(outside)  # never followed
    (scratch / "kubeos-root-0123456789abcdef.ext4.d").mkdir()  # not our name
    (scratch / "kubeos-containerd-notours").mkdir()  # wrong length: not mkdtemp's
    (scratch / "kubeos-root-fedcba9876543210.ext4").mkdir()  # our file name, but a dir
    (scratch / "notes.txt").write_text("the admin's")
    theirs = [
        "kubeos-spool-zzzzzzzz.img",
        "kubeos-root-0123456789abcdef.ext4.d",
        "kubeos-containerd-notours",
        "kubeos-root-fedcba9876543210.ext4",
        "notes.txt",
    ]
    return ours, theirs


@pytest.fixture
def node(containerd_node: TestNode) -> TestNode:
    return containerd_node


def test_the_next_fetch_sweeps_only_our_stale_entries(
    node: TestNode,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
    tmp_path: Path,
) -> None:
    scratch = node.node.scratch()
    ours, theirs = plant_leftovers(scratch, tmp_path / "outside.txt")
    image = os_image("KubeOS 3.0.1")
    ref = publish(containerd, registry, image, "kubeos/os:3.0.1")
    host, _ = plugin_host_with_recorder

    upgrade(host, upgrade_spec("containerd", ref, image.manifest_digest, "KubeOS 3.0.1"), node.node)

    assert node.version_on("B") == "KubeOS 3.0.1"
    left = sorted(os.listdir(scratch))
    assert not set(ours) & set(left)
    assert left == sorted(theirs)
    assert (tmp_path / "outside.txt").read_text() == "keep me"


def test_scratch_is_0700_and_the_built_image_0600(
    node: TestNode, containerd: Containerd, registry: Registry
) -> None:
    """The default scratch dir, created 0755 by an older agent, is tightened (review: Low)."""
    ctx = replace(node.node, work_dir=None)
    default = ctx.host_path(DEFAULT_SCRATCH)
    default.mkdir(parents=True)
    default.chmod(0o755)
    image = os_image("KubeOS 3.0.2")
    ref = publish(containerd, registry, image, "kubeos/os:3.0.2")
    spec = upgrade_spec("containerd", ref, image.manifest_digest, "KubeOS 3.0.2")

    fetched = kubeos_image_containerd.kubeos_fetch_image(
        spec=spec, node=ctx, target=find_layout(ctx).other
    )
    try:
        assert fetched.path.parent == default
        assert stat.S_IMODE(default.stat().st_mode) == 0o700
        assert stat.S_IMODE(fetched.path.stat().st_mode) == 0o600
        assert os.listdir(default) == [fetched.path.name]  # the work tree is gone
    finally:
        fetched.path.unlink()


def test_fresh_scratch_is_created_0700(tmp_path: Path, disk_node: TestNode) -> None:
    ctx = replace(disk_node.node, work_dir=tmp_path / "a" / "work")
    assert stat.S_IMODE(ctx.scratch().stat().st_mode) == 0o700


def test_docker_leaves_no_anonymous_volume(
    disk_node: TestNode,
    dockerd: Dockerd,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
) -> None:
    disk_node.node.extras["docker.host"] = dockerd.host
    image = with_volume(os_image("KubeOS 3.0.3"), "/var/lib/data")
    ref = publish(containerd, registry, image, "kubeos/os:3.0.3")
    volumes_before = dockerd.docker("volume", "ls", "--quiet").stdout.split()
    host, _ = plugin_host_with_recorder

    upgrade(
        host, upgrade_spec("docker", ref, image.manifest_digest, "KubeOS 3.0.3"), disk_node.node
    )

    assert disk_node.version_on("B") == "KubeOS 3.0.3"
    assert dockerd.docker("volume", "ls", "--quiet").stdout.split() == volumes_before
    assert dockerd.docker("ps", "--all", "--quiet").stdout.split() == []
