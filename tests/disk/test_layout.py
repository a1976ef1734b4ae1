"""Layout discovery on real GPT disk images (sfdisk) and real ext4 roots (mke2fs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kubeos.contracts import NodeContext
from kubeos.node import ext4
from kubeos.node.layout import LayoutError, find_layout, other_label
from kubeos.node.rootspec import parse_root, split_device
from tests.support.disk import (
    ROOTS,
    fs_uuid,
    make_gpt_disk,
    make_node,
    partition_info,
    write_cmdline,
)
from tests.support.fixtures import require_disk_tools


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_disk_tools()


@pytest.mark.parametrize("root_by", ["device", "uuid", "partuuid"])
@pytest.mark.parametrize("current", ["A", "B"])
def test_booted_root_found_by_device_uuid_and_partuuid(
    tmp_path: Path, root_by: str, current: str
) -> None:
    t = make_node(
        tmp_path,
        current=current,
        version_a="KubeOS 1.0.0",
        version_b="KubeOS 0.9.0",
        root_by=root_by,
    )
    layout = find_layout(t.node)
    assert layout.current == current
    assert layout.other.label == other_label(current)
    for label in ("A", "B"):
        part = layout.partition(label)
        offset, size, _ = partition_info(t.disk, ROOTS[label])
        assert (part.path, part.offset, part.size, part.number) == (
            t.disk,
            offset,
            size,
            ROOTS[label],
        )


def test_device_names_follow_the_booted_device(tmp_path: Path) -> None:
    t = make_node(tmp_path)
    (t.host_root / "proc" / "cmdline").write_text("root=/dev/nvme0n1p2 ro quiet")
    layout = find_layout(t.node)
    assert (layout.current, layout.a.device, layout.b.device) == (
        "A",
        "/dev/nvme0n1p2",
        "/dev/nvme0n1p3",
    )


def test_ext4_uuid_read_from_the_superblock_matches_debugfs(tmp_path: Path) -> None:
    t = make_node(tmp_path)
    offset, _, _ = partition_info(t.disk, 2)
    assert ext4.fs_uuid(t.disk, offset) == fs_uuid(t.disk, offset)
    assert ext4.fs_uuid(t.disk, partition_info(t.disk, 3)[0]) is None  # root B empty


@pytest.mark.parametrize(
    "device, expected",
    [
        ("/dev/vda2", ("/dev/vda", "", 2)),
        ("/dev/sda3", ("/dev/sda", "", 3)),
        ("/dev/sdp3", ("/dev/sdp", "", 3)),
        ("/dev/xvda12", ("/dev/xvda", "", 12)),
        ("/dev/nvme0n1p3", ("/dev/nvme0n1", "p", 3)),
        ("/dev/mmcblk0p2", ("/dev/mmcblk0", "p", 2)),
        ("/dev/nvme0n1", None),
        ("/dev/mmcblk0", None),
        ("/dev/vda", None),
    ],
)
def test_partition_device_names(device: str, expected: tuple[str, str, int] | None) -> None:
    assert split_device(device) == expected


@pytest.mark.parametrize(
    "cmdline, kind, value",
    [
        ("BOOT_IMAGE=/vmlinuz root=/dev/vda2 ro", "device", "/dev/vda2"),
        (
            "root=UUID=0F3A-AA root=UUID=1b2c3d4e-0000-4000-8000-00000000000a",
            "uuid",
            "1b2c3d4e-0000-4000-8000-00000000000a",
        ),
        ("quiet root=PARTUUID=ABCDEF01-02 ro", "partuuid", "abcdef01-02"),
    ],
)
def test_root_parameter_forms(cmdline: str, kind: str, value: str) -> None:
    spec = parse_root(cmdline)
    assert (spec.kind, spec.value) == (kind, value)


@pytest.mark.parametrize("cmdline", ["quiet ro", "root=LABEL=root", "root=vda2"])
def test_unusable_root_parameter_is_refused(cmdline: str) -> None:
    with pytest.raises(LayoutError):
        parse_root(cmdline)


def test_booted_from_persist_partition_is_refused(tmp_path: Path) -> None:
    t = make_node(tmp_path)
    (t.host_root / "proc" / "cmdline").write_text("root=/dev/vda4 ro")
    with pytest.raises(LayoutError, match="neither root A"):
        find_layout(t.node)


def test_uuid_matching_no_root_is_refused(tmp_path: Path) -> None:
    t = make_node(tmp_path)
    (t.host_root / "proc" / "cmdline").write_text("root=UUID=00000000-0000-0000-0000-000000000000")
    with pytest.raises(LayoutError, match="neither root A nor root B"):
        find_layout(t.node)


def test_disk_without_root_b_is_not_a_kubeos_disk(tmp_path: Path) -> None:
    """G5: exactly the A/B layout; a disk with fewer partitions is refused."""
    disk = tmp_path / "two.img"
    with open(disk, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", str(disk)], input=b"label: gpt\nsize=2M\nsize=4M\n", check=True)
    host = tmp_path / "host"
    write_cmdline(host, disk, "A")
    with pytest.raises(LayoutError, match="no partition 3"):
        find_layout(NodeContext(host_root=host, disk=disk))


def test_missing_disk_and_missing_cmdline_are_clear_errors(tmp_path: Path) -> None:
    t = make_node(tmp_path)
    with pytest.raises(LayoutError, match="does not exist"):
        find_layout(NodeContext(host_root=t.host_root, disk=tmp_path / "nope.img"))
    with pytest.raises(LayoutError, match="kernel command line"):
        find_layout(NodeContext(host_root=tmp_path / "empty", disk=t.disk))


def _fake_sysfs(host: Path, disk: Path) -> None:
    """The sysfs shape of a virtio disk: class/block/<name> links into devices/.../block/vda."""
    devices = host / "sys" / "devices" / "pci0000:00" / "virtio2" / "block" / "vda"
    cls = host / "sys" / "class" / "block"
    cls.mkdir(parents=True)
    devices.mkdir(parents=True)
    os.symlink(os.path.relpath(devices, cls), cls / "vda")
    for n in range(1, 5):
        part = devices / f"vda{n}"
        part.mkdir()
        (part / "partition").write_text(f"{n}\n")
        os.symlink(os.path.relpath(part, cls), cls / f"vda{n}")
    dev = host / "dev"
    dev.mkdir()
    os.link(disk, dev / "vda")  # the whole disk; partition nodes are its byte ranges
    for n in range(1, 5):
        (dev / f"vda{n}").touch()


@pytest.mark.parametrize("root_by", ["device", "uuid"])
def test_real_node_discovers_the_disk_through_sysfs(tmp_path: Path, root_by: str) -> None:
    """No --disk: the booted partition and its parent disk come from /dev and /sys."""
    t = make_node(tmp_path, current="B", version_b="KubeOS 1.0.1")
    _fake_sysfs(t.host_root, t.disk)
    if root_by == "uuid":
        # partition device nodes must carry the filesystem for the UUID scan
        offset, size, _ = partition_info(t.disk, 3)
        with open(t.disk, "rb") as f:
            f.seek(offset)
            (t.host_root / "dev" / "vda3").write_bytes(f.read(size))
    write_cmdline(t.host_root, t.disk, "B", root_by)
    node = NodeContext(host_root=t.host_root)
    layout = find_layout(node)
    assert layout.current == "B"
    assert layout.disk == t.host_root / "dev" / "vda"
    assert layout.other.label == "A"
    assert layout.other.offset == partition_info(t.disk, 2)[0]


def test_make_gpt_disk_has_the_kubeos_layout(tmp_path: Path) -> None:
    disk = make_gpt_disk(tmp_path / "d.img", root_mib=4)
    sizes = [partition_info(disk, n)[1] for n in (1, 2, 3, 4)]
    assert sizes[1] == sizes[2] == 4 * 1024 * 1024
