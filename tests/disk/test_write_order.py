"""R3 write order and G2 progress isolation, with real disks, real TLS and real SIGKILLs.

An image write zeroes the target's first MiB, holds the image's first MiB back and writes
it only after the rest is on the medium. So a write cut short, by a dropped download or a
SIGKILL that skips every cleanup, leaves a root with no ext4 superblock: nothing mounts,
boots or rolls back to it (R3). A progress callback that raises never aborts an upgrade.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubeos.contracts import NodeContext, Partition
from kubeos.errors import ImageError
from kubeos.node import ext4
from kubeos.node import upgrade as node_upgrade
from kubeos.node.blockio import HEAD_BYTES
from kubeos.node.bootcheck import check_boot
from kubeos.node.layout import find_layout
from kubeos.plugins import PluginHost
from tests.disk.helpers import upgrade_spec
from tests.support.disk import (
    ROOTS,
    TestNode,
    grubenv_bytes,
    make_node,
    make_rootfs,
    partition_info,
    read_partition,
    sha256_file,
)
from tests.support.https import Certs, ImageServer
from tests.support.plugins import RebootRecorder

pytestmark = pytest.mark.usefixtures("disk_tools")

MiB = 1024 * 1024
NEW = "KubeOS 1.0.1"
OLD_B = "KubeOS 0.9.0"

#: Runs one upgrade in a child process and SIGKILLs itself from the progress callback
#: once `phase` has passed `kill_at` bytes: no `finally`, no invalidate(), like a power cut.
CHILD = """
import json, os, signal, sys
from pathlib import Path
from kubeos.contracts import NodeContext
from kubeos.models.os import validate_spec
from kubeos.node.upgrade import upgrade
from kubeos.plugins import PluginHost

args = json.loads(sys.argv[1])
def progress(phase, done, total):
    if phase == args["phase"] and done >= args["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
node = NodeContext(
    host_root=Path(args["host_root"]), disk=Path(args["disk"]), work_dir=Path(args["work_dir"]),
    node_name="node-1", extras=args["extras"], progress=progress,
)
spec, problems = validate_spec(args["spec"])
assert spec is not None, problems
upgrade(PluginHost().load_entry_points(), spec, node)
print("upgrade completed without being killed")
"""


def big_image(path: Path, version: str = NEW) -> Path:
    """A 6 MiB ext4 root whose bytes are mostly random (a real file), so a partial write
    is visible as data beyond the held-back first MiB."""
    return make_rootfs(path, version, size_mib=6, files={"usr/lib/blob": os.urandom(4 * MiB)})


def part_b(t: TestNode) -> Partition:
    return find_layout(t.node).partition("B")


def assert_no_filesystem(t: TestNode) -> None:
    """Root B carries no ext4 superblock: our reader, debugfs and rollback all agree."""
    b = part_b(t)
    assert ext4.read_superblock(b.path, b.offset) is None
    with pytest.raises(ext4.RootFsError):
        ext4.root_version(b)
    offset, _, _ = partition_info(t.disk, ROOTS["B"])
    proc = subprocess.run(
        ["debugfs", "-R", "stats", f"{t.disk}?offset={offset}"], capture_output=True, text=True
    )
    assert "Filesystem UUID" not in proc.stdout and "Bad magic number" in proc.stderr
    with pytest.raises(node_upgrade.RollbackRefused, match=r"\[R3\]"):
        node_upgrade.rollback(PluginHost().load_entry_points(), t.node)
    assert t.saved_entry() == "A"


def run_killed_upgrade(t: TestNode, spec: dict[str, Any], phase: str, kill_at: int) -> None:
    args = {
        "host_root": str(t.host_root),
        "disk": str(t.disk),
        "work_dir": str(t.node.work_dir),
        "extras": t.node.extras,
        "spec": spec,
        "phase": phase,
        "kill_at": kill_at,
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"},
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)


def raw_spec(url: str, image: Path, fields: dict[str, str]) -> dict[str, Any]:
    return {
        "imagetype": "disk",
        "opstype": "upgrade",
        "osversion": NEW,
        "maxunavailable": 1,
        "imageurl": url,
        "checksum": sha256_file(image),
        "flagSafe": False,
        "mtls": True,
        **fields,
    }


@pytest.mark.parametrize(
    ("spool", "phase"),
    [("never", "download"), ("always", "write")],
    ids=["streamed-onto-target", "copied-from-spool"],
)
def test_sigkill_mid_write_leaves_no_superblock_r3(
    tmp_path: Path, certs: Certs, spool: str, phase: str
) -> None:
    t = make_node(tmp_path / "n", version_b=OLD_B)
    t.node.extras["image_disk.spool"] = spool
    image = big_image(tmp_path / "new.ext4")
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": image}, certs=certs) as srv:
        run_killed_upgrade(t, raw_spec(srv.url("os.img"), image, fields), phase, 4 * MiB)

    written = read_partition(t.disk, ROOTS["B"], 4 * MiB)
    assert written[:HEAD_BYTES] == bytes(HEAD_BYTES)  # old signature gone, new one held back
    assert written[HEAD_BYTES:] == image.read_bytes()[HEAD_BYTES : 4 * MiB]  # really midway
    assert_no_filesystem(t)


def test_head_is_written_after_the_rest_then_verified_and_booted(
    disk_node: TestNode,
    certs: Certs,
    plugin_host_with_recorder: tuple[PluginHost, RebootRecorder],
    tmp_path: Path,
) -> None:
    t = disk_node
    host, _ = plugin_host_with_recorder
    image = big_image(tmp_path / "new.ext4")
    data = image.read_bytes()
    seen: list[bytes] = []

    def look_when_all_arrived(phase: str, done: int, total: int | None) -> None:
        if phase == "download" and done == len(data):
            seen.append(read_partition(t.disk, ROOTS["B"], len(data)))

    t.node.progress = look_when_all_arrived
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(image), NEW, mtls=True, **fields)
        node_upgrade.upgrade(host, spec, t.node)

    (on_disk,) = seen
    assert on_disk[:HEAD_BYTES] == bytes(HEAD_BYTES) and on_disk[HEAD_BYTES:] == data[HEAD_BYTES:]
    assert read_partition(t.disk, ROOTS["B"], len(data)) == data
    assert t.saved_entry() == "B"
    t.reboot_into("B")
    result = check_boot(t.node, NEW, "B")
    assert result.ok, result.reason


def test_dropped_download_without_retries_leaves_no_superblock(
    tmp_path: Path, certs: Certs, plugin_host_with_recorder: tuple[PluginHost, RebootRecorder]
) -> None:
    t = make_node(tmp_path / "n", version_b=OLD_B)
    t.node.extras["image_disk.attempts"] = "1"
    host, _ = plugin_host_with_recorder
    image = big_image(tmp_path / "new.ext4")
    before = grubenv_bytes(t.node)
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": image}, certs=certs, fail_after=3 * MiB, failures=1) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(image), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match="1 attempt"):
            node_upgrade.upgrade(host, spec, t.node)
    assert grubenv_bytes(t.node) == before
    assert_no_filesystem(t)


def test_refused_download_leaves_the_rollback_root_untouched(
    tmp_path: Path, certs: Certs, plugin_host_with_recorder: tuple[PluginHost, RebootRecorder]
) -> None:
    """The head is zeroed at the first image byte, not when the target is opened."""
    t = make_node(tmp_path / "n", version_b=OLD_B)
    host, _ = plugin_host_with_recorder
    before = read_partition(t.disk, ROOTS["B"])
    fields = certs.install(t.node.certs_dir)
    with ImageServer({}, certs=certs) as srv:  # 404
        spec = upgrade_spec(srv.url("os.img"), "0" * 64, NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match="404"):
            node_upgrade.upgrade(host, spec, t.node)
    assert read_partition(t.disk, ROOTS["B"]) == before
    assert t.version_on("B") == OLD_B


@pytest.mark.parametrize("spool", ["never", "always"])
def test_a_raising_progress_callback_does_not_abort_the_upgrade_g2(
    disk_node: TestNode,
    certs: Certs,
    plugin_host_with_recorder: tuple[PluginHost, RebootRecorder],
    tmp_path: Path,
    spool: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Like the agent's status write failing while the API server is away (G2)."""
    t = disk_node
    host, _ = plugin_host_with_recorder
    calls: list[str] = []

    def api_down(phase: str, done: int, total: int | None) -> None:
        calls.append(phase)
        raise ConnectionError("kube-apiserver unreachable")

    node = NodeContext(
        host_root=t.host_root,
        disk=t.disk,
        work_dir=t.node.work_dir,
        node_name="node-1",
        extras={"image_disk.spool": spool},
        progress=api_down,
    )
    image = big_image(tmp_path / "new.ext4")
    fields = certs.install(node.certs_dir)
    with ImageServer({"os.img": image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(image), NEW, mtls=True, **fields)
        assert node_upgrade.upgrade(host, spec, node).label == "B"

    assert t.version_on("B") == NEW and t.saved_entry() == "B"
    assert len(calls) > 3 and {"download", "verify"} <= set(calls)
    failures = [r for r in caplog.records if "progress report" in r.getMessage()]
    assert len(failures) == len(set(calls))  # logged once per phase, not per chunk
    t.reboot_into("B")
    assert check_boot(node, NEW, "B").ok
