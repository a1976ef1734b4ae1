"""Shared pieces of the container-image tests: specs, images, registry host config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kubeos.contracts import NodeContext
from kubeos.models.os import OSSpec, validate_spec
from tests.container.daemons import Containerd, Registry
from tests.container.ociimage import OCIImage, build_image
from tests.container.tarcraft import Member, directory, reg, symlink
from tests.support.disk import ROOTS, TestNode, os_release_text, partition_info


def upgrade_spec(imagetype: str, ref: str, checksum: str, version: str = "KubeOS 1.0.1") -> OSSpec:
    spec, problems = validate_spec(
        {
            "imagetype": imagetype,
            "opstype": "upgrade",
            "osversion": version,
            "maxunavailable": 1,
            "containerimage": ref,
            "checksum": checksum,
        }
    )
    assert spec is not None, problems
    return spec


def os_image(version: str = "KubeOS 1.0.1", *upper: list[Member]) -> OCIImage:
    """A small but root-like image: merged /usr, a setuid binary, an upper layer."""
    base = [
        directory("etc"),
        reg("etc/os-release", os_release_text("KubeOS 0.9.9").encode()),
        reg("etc/obsolete.conf", b"gone after the upper layer\n"),
        directory("usr/bin"),
        reg("usr/bin/passwd", b"\x7fELF", mode=0o4755),
        symlink("bin", "usr/bin"),
        directory("tmp", 0o1777),
    ]
    top = [reg("etc/os-release", os_release_text(version).encode()), reg("etc/.wh.obsolete.conf")]
    return build_image([base, top, *upper])


def trust_plain_http(node: NodeContext, registry: Registry, name: str = "") -> Path:
    """G9: containerd's host config for registry `name` (default: the registry's own
    address) in the node's /etc/containerd/certs.d, served by the local registry."""
    d = node.host_path(f"/etc/containerd/certs.d/{name or registry.host}")
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.toml").write_text(
        f'server = "http://{registry.host}"\n'
        f'[host."http://{registry.host}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    return d / "hosts.toml"


#: Kept in the scratch space by kubeos.node on purpose (one operation at a time per node).
NODE_LOCK = ".kubeos-node.lock"


def scratch_left(node: NodeContext) -> list[str]:
    """What a fetch left in the node's scratch space (must be nothing)."""
    scratch = node.work_dir
    names = os.listdir(scratch) if scratch and scratch.exists() else []
    return sorted(n for n in names if n != NODE_LOCK)


def recorder(path: Path, log: Path, then: str) -> Path:
    """An executable that appends its argv (tab separated) to `log`, then runs `then`."""
    path.write_text(f'#!/bin/sh\nprintf "%s\\t" "$@" >> "{log}"\necho >> "{log}"\n{then}\n')
    path.chmod(0o755)
    return path


def recorded(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [line.rstrip("\t").split("\t") for line in log.read_text().splitlines() if line]


def debugfs_stat(disk: Path, label: str, path: str) -> str:
    offset, _, _ = partition_info(disk, ROOTS[label])
    return subprocess.run(
        ["debugfs", "-R", f"stat {path}", f"{disk}?offset={offset}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def on_containerd(t: TestNode, containerd: Containerd, registry: Registry) -> TestNode:
    """Point node `t` at the test containerd and let it pull from the plain-http registry."""
    t.node.extras["containerd.address"] = str(containerd.address)
    trust_plain_http(t.node, registry)
    return t
