"""The boot switch never points the next boot at a root that cannot come up (U5).

Real parts throughout: GPT disk-image files (sfdisk), ext4 roots (mke2fs -d), the real
grubenv edited with grub-editenv, images served over HTTPS/mTLS on 127.0.0.1. The only
stand-in is a boot-switch plugin that fails the way a flaky grub-editenv does: after the
grubenv was already written.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from kubeos.contracts import NodeContext, Partition
from kubeos.errors import InstallError
from kubeos.hooks import hookimpl
from kubeos.node import ext4, grubenv
from kubeos.node import upgrade as node_upgrade
from kubeos.plugins import PluginHost
from kubeos.rootfs.mkfs import make_ext4
from tests.disk.helpers import upgrade_spec
from tests.support.disk import (
    ROOTS,
    TestNode,
    fs_uuid,
    grub_cfg_text,
    grubenv_bytes,
    make_node,
    make_rootfs,
    partition_info,
    read_partition,
    sha256_file,
)
from tests.support.https import Certs, ImageServer

NEW = "KubeOS 1.0.1"
OLD = "KubeOS 1.0.0"

pytestmark = pytest.mark.usefixtures("disk_tools")


@pytest.fixture
def host(plugin_host_with_recorder: tuple[PluginHost, object]) -> PluginHost:
    return plugin_host_with_recorder[0]


@pytest.fixture
def new_image(tmp_path: Path) -> Path:
    return make_rootfs(tmp_path / "new.ext4", NEW, size_mib=4)


class SetThenFail:
    """A boot switch that writes the grubenv for `fail_after_set`, then raises (as a
    read-back timing out would); for the labels in `always_fail` it raises before writing."""

    def __init__(self, fail_after_set: str, always_fail: frozenset[str] = frozenset()) -> None:
        self.fail_after_set = fail_after_set
        self.always_fail = always_fail
        self.calls: list[str] = []

    @hookimpl
    def kubeos_switch_boot(self, target: Partition, node: NodeContext) -> str:
        self.calls.append(target.label)
        if target.label in self.always_fail:
            raise InstallError(f"grub-editenv set saved_entry={target.label}: I/O error")
        assignment = grubenv.set_saved_entry(node, target.label)
        if target.label == self.fail_after_set:
            raise InstallError("grub-editenv list: timed out after the set")
        return assignment


def _upgrade(host: PluginHost, t: TestNode, certs: Certs, image: Path, version: str = NEW):
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(image), version, mtls=True, **fields)
        return node_upgrade.upgrade(host, spec, t.node)


def _assert_unchanged(t: TestNode, before: bytes) -> None:
    assert grubenv_bytes(t.node) == before
    assert t.saved_entry() == t.current
    assert t.version_on(t.current) == OLD
    assert list(t.node.scratch().iterdir()) == []


def _set_entry_root(t: TestNode, label: str, root: str) -> None:
    """grub.cfg whose entry `label` boots root=`root` (the other entry keeps its device)."""
    devices = {"A": "/dev/vda2", "B": "/dev/vda3", label: root}
    t.node.grub_cfg.write_text(grub_cfg_text(devices["A"], devices["B"]))


# --- finding 1: a failed switch -------------------------------------------------------


def test_switch_failing_after_the_set_points_back_then_wipes(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """grubenv said B when the hook failed: it is pointed back at A, then B is wiped."""
    t = disk_node
    switch = SetThenFail(fail_after_set="B")
    host.register(switch, name="set_then_fail")
    with pytest.raises(InstallError, match=r"next boot points at the running root A again") as e:
        _upgrade(host, t, certs, new_image)
    assert "root B is wiped" in str(e.value) and "timed out after the set" in str(e.value)
    assert switch.calls == ["B", "A"]
    assert t.saved_entry() == "A"
    assert t.version_on("B") is None
    assert read_partition(t.disk, ROOTS["B"], 4096) == bytes(4096)
    assert t.version_on("A") == OLD


def test_switch_and_restore_both_failing_keep_the_verified_target(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """grubenv stuck on B: B holds the verified new root and must stay bootable."""
    t = disk_node
    host.register(
        SetThenFail(fail_after_set="B", always_fail=frozenset({"A"})), name="set_then_fail"
    )
    with pytest.raises(InstallError, match=r"failed too.*root B .*NOT wiped"):
        _upgrade(host, t, certs, new_image)
    assert t.saved_entry() == "B"
    assert t.version_on("B") == NEW  # still intact: the next boot starts a good root
    assert t.version_on("A") == OLD


def test_switch_failing_before_any_write_wipes_the_target(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    before = grubenv_bytes(t.node)
    host.register(SetThenFail(fail_after_set="-", always_fail=frozenset({"B"})), name="fail")
    with pytest.raises(InstallError, match=r"root B failed .*I/O error.*root B is wiped"):
        _upgrade(host, t, certs, new_image)
    assert grubenv_bytes(t.node) == before
    assert t.version_on("B") is None


# --- finding 2: the target entry must mount the new root ------------------------------


def test_entry_naming_another_uuid_is_refused_before_switching(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    stale = str(uuid.uuid4())
    _set_entry_root(t, "B", f"UUID={stale}")
    before = grubenv_bytes(t.node)
    with pytest.raises(InstallError, match=rf"entry 'B' boots root=UUID={stale}.*\[U5\]"):
        _upgrade(host, t, certs, new_image)
    _assert_unchanged(t, before)
    assert t.version_on("B") is None  # wiped as for any refusal before the switch


def test_entry_naming_the_running_device_is_refused(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    _set_entry_root(t, "B", "/dev/vda2")  # a copy-paste slip: B would boot root A
    before = grubenv_bytes(t.node)
    with pytest.raises(InstallError, match=r"entry 'B' boots root=/dev/vda2"):
        _upgrade(host, t, certs, new_image)
    _assert_unchanged(t, before)


def test_entry_without_root_is_refused(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    cfg = t.node.grub_cfg
    cfg.write_text(cfg.read_text().replace("root=/dev/vda3 ", ""))
    before = grubenv_bytes(t.node)
    with pytest.raises(InstallError, match=r"entry 'B'.*no root="):
        _upgrade(host, t, certs, new_image)
    _assert_unchanged(t, before)


@pytest.mark.parametrize("form", ["uuid", "by-uuid", "partuuid", "by-partuuid", "device"])
def test_entry_naming_the_target_is_accepted(
    tmp_path: Path, host: PluginHost, certs: Certs, new_image: Path, form: str
) -> None:
    t = make_node(tmp_path / "n", root_by="uuid" if "uuid" in form else "device")
    _, _, partuuid = partition_info(t.disk, ROOTS["B"])
    image_uuid = fs_uuid(new_image)  # a disk image carries its own fs UUID
    root = {
        "uuid": f"UUID={image_uuid.upper()}",
        "by-uuid": f"/dev/disk/by-uuid/{image_uuid}",
        "partuuid": f"PARTUUID={partuuid}",
        "by-partuuid": f"/dev/disk/by-partuuid/{partuuid}",
        "device": "/dev/vda3",
    }[form]
    _set_entry_root(t, "B", root)
    assert _upgrade(host, t, certs, new_image).label == "B"
    assert t.saved_entry() == "B"
    assert t.version_on("B") == NEW


def test_container_built_root_keeps_the_target_uuid_and_is_accepted(
    tmp_path: Path, host: PluginHost, certs: Certs
) -> None:
    """kubeos.rootfs.mkfs with the target's previous UUID: the UUID= entry still mounts it."""
    t = make_node(tmp_path / "n", version_b="KubeOS 0.9.0", root_by="uuid")
    offset, size, _ = partition_info(t.disk, ROOTS["B"])
    previous = fs_uuid(t.disk, offset)
    _set_entry_root(t, "B", f"UUID={previous}")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text(f'PRETTY_NAME="{NEW}"\n')
    built = tmp_path / "built.ext4"
    target = Partition("B", ROOTS["B"], t.disk, offset, size)
    make_ext4(tree, built, size, uuid=ext4.fs_uuid(target.path, target.offset))
    assert fs_uuid(built) == previous
    assert _upgrade(host, t, certs, built).label == "B"
    assert t.saved_entry() == "B"
    assert fs_uuid(t.disk, offset) == previous


def test_mkfs_refuses_a_malformed_uuid(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    with pytest.raises(Exception, match="not a UUID"):
        make_ext4(tree, tmp_path / "x.ext4", 8 << 20, uuid="-O ^has_journal")


# --- low: the filesystem must fit the partition ---------------------------------------


def test_image_claiming_more_blocks_than_the_partition_is_refused(
    tmp_path: Path, host: PluginHost, certs: Certs
) -> None:
    """A truncated 12 MiB filesystem (6 MiB file) fits an 8 MiB root by size, not by fs."""
    t = make_node(tmp_path / "n", root_mib=8)
    image = make_rootfs(tmp_path / "big.ext4", NEW, size_mib=12)
    subprocess.run(["truncate", "-s", "6M", str(image)], check=True)
    before = grubenv_bytes(t.node)
    with pytest.raises(InstallError, match=r"superblock claims 12582912 bytes.*\[U5\]"):
        _upgrade(host, t, certs, image)
    _assert_unchanged(t, before)
    assert t.version_on("B") is None
