"""Rollback (R3) and the post-reboot check (U6) on a real disk image and grubenv."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kubeos.node import bootcheck
from kubeos.node import upgrade as node_upgrade
from kubeos.node.layout import find_layout
from kubeos.node.lock import NodeBusy, node_lock
from kubeos.node.upgrade import RollbackRefused
from kubeos.plugins import PluginHost
from tests.disk.helpers import upgrade_spec
from tests.support.disk import (
    TestNode,
    grubenv_bytes,
    make_node,
    make_rootfs,
    sha256_file,
    write_partition,
)
from tests.support.https import Certs, ImageServer
from tests.support.plugins import RebootRecorder

pytestmark = pytest.mark.usefixtures("disk_tools")


def test_upgrade_reboot_check_rollback_reboot_check(
    tmp_path: Path, plugin_host_with_recorder: tuple[PluginHost, RebootRecorder], certs: Certs
) -> None:
    """The whole cycle: A 1.0.0 -> upgrade -> B 1.0.1 -> rollback -> A 1.0.0."""
    host, recorder = plugin_host_with_recorder
    t = make_node(tmp_path / "n")
    image = make_rootfs(tmp_path / "new.ext4", "KubeOS 1.0.1")
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": image}, certs=certs) as srv:
        spec = upgrade_spec(
            srv.url("os.img"), sha256_file(image), "KubeOS 1.0.1", mtls=True, **fields
        )
        target = node_upgrade.upgrade(host, spec, t.node)
    node_upgrade.reboot(host, t.node, "upgrade")
    assert recorder.reboots == [("node-1", "upgrade")]

    # before the reboot took effect, the check says so
    early = bootcheck.check_boot(t.node, "KubeOS 1.0.1", target.label)
    assert not early.ok and "booted root A, expected root B" in early.reason

    t.reboot_into(t.saved_entry() or "")
    ok = bootcheck.check_boot(t.node, "KubeOS 1.0.1", "B")
    assert ok.ok and (ok.label, ok.version) == ("B", "KubeOS 1.0.1")

    back = node_upgrade.rollback(host, t.node, expected_version="KubeOS 1.0.0")
    assert back.label == "A" and t.saved_entry() == "A"
    assert t.version_on("B") == "KubeOS 1.0.1"  # rollback writes nothing
    t.reboot_into("A")
    assert bootcheck.check_boot(t.node, "KubeOS 1.0.0", "A").ok


def test_rollback_to_an_empty_partition_is_refused(
    disk_node: TestNode, plugin_host_with_recorder: tuple[PluginHost, RebootRecorder]
) -> None:
    """R3: the other root has no filesystem -> refused, grubenv unchanged."""
    host, _ = plugin_host_with_recorder
    before = grubenv_bytes(disk_node.node)
    with pytest.raises(RollbackRefused, match=r"root B holds no valid root filesystem.*\[R3\]"):
        node_upgrade.rollback(host, disk_node.node)
    assert grubenv_bytes(disk_node.node) == before


def test_rollback_to_a_root_without_os_release_is_refused(
    tmp_path: Path, plugin_host_with_recorder: tuple[PluginHost, RebootRecorder]
) -> None:
    host, _ = plugin_host_with_recorder
    t = make_node(tmp_path / "n", version_b="KubeOS 0.9.0")
    # replace root B by an ext4 without etc/os-release
    bare = tmp_path / "bare.ext4"
    make_rootfs(bare, "x")
    subprocess.run(
        ["debugfs", "-w", "-R", "rm /etc/os-release", str(bare)], check=True, capture_output=True
    )
    write_partition(t.disk, 3, bare)
    before = grubenv_bytes(t.node)
    with pytest.raises(RollbackRefused, match="os-release"):
        node_upgrade.rollback(host, t.node)
    assert grubenv_bytes(t.node) == before


def test_rollback_checks_the_version_it_was_asked_for(
    tmp_path: Path, plugin_host_with_recorder: tuple[PluginHost, RebootRecorder]
) -> None:
    host, _ = plugin_host_with_recorder
    t = make_node(tmp_path / "n", version_b="KubeOS 0.9.0")
    before = grubenv_bytes(t.node)
    with pytest.raises(RollbackRefused, match=r"holds 'KubeOS 0\.9\.0'"):
        node_upgrade.rollback(host, t.node, expected_version="KubeOS 0.8.0")
    assert grubenv_bytes(t.node) == before
    assert node_upgrade.rollback(host, t.node, expected_version="KubeOS 0.9.0").label == "B"
    assert t.saved_entry() == "B"


def test_rollback_target_reports_the_version(tmp_path: Path) -> None:
    t = make_node(tmp_path / "n", current="B", version_a="KubeOS 0.9.0", version_b="KubeOS 1.0.0")
    part, version = node_upgrade.rollback_target(find_layout(t.node))
    assert (part.label, version) == ("A", "KubeOS 0.9.0")


def test_boot_check_reports_a_wrong_version(disk_node: TestNode) -> None:
    result = bootcheck.check_boot(disk_node.node, "KubeOS 2.0.0", "A")
    assert not result.ok
    assert result.reason == "running 'KubeOS 1.0.0', expected 'KubeOS 2.0.0'"
    assert bootcheck.booted_version(disk_node.node) == "KubeOS 1.0.0"


def test_boot_check_without_os_release_fails_with_a_reason(disk_node: TestNode) -> None:
    (disk_node.host_root / "etc" / "os-release").unlink()
    result = bootcheck.check_boot(disk_node.node, "KubeOS 1.0.0")
    assert not result.ok and "cannot read" in result.reason and result.label == "A"


def test_a_second_operation_on_the_same_node_is_refused(
    tmp_path: Path, plugin_host_with_recorder: tuple[PluginHost, RebootRecorder]
) -> None:
    """G8: while one run changes the roots, another (agent vs. CLI) is refused, not queued."""
    host, _ = plugin_host_with_recorder
    t = make_node(tmp_path / "n", version_b="KubeOS 0.9.0")
    before = grubenv_bytes(t.node)
    with node_lock(t.node, "upgrade to 'KubeOS 2'"):
        with pytest.raises(NodeBusy, match=r"upgrade to 'KubeOS 2' \(pid \d+\) is changing"):
            node_upgrade.rollback(host, t.node)
        assert grubenv_bytes(t.node) == before
    assert node_upgrade.rollback(host, t.node).label == "B"  # released afterwards
