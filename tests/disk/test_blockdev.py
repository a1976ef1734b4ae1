"""The same upgrade on real block devices (loop devices over the disk image), as root."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeos.contracts import Partition
from kubeos.errors import InstallError
from kubeos.node import upgrade as node_upgrade
from kubeos.node.blockio import PartitionWriter
from kubeos.node.layout import find_layout
from kubeos.plugins import PluginHost
from tests.disk.helpers import upgrade_spec
from tests.support.blockdev import loop_device, mounted, require_loop
from tests.support.disk import TestNode, make_node, make_rootfs, partition_info, sha256_file
from tests.support.https import Certs, ImageServer
from tests.support.plugins import RebootRecorder

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("disk_tools")]


@pytest.fixture(autouse=True)
def _loop() -> None:
    require_loop()


def test_upgrade_onto_a_whole_disk_block_device(
    disk_node: TestNode,
    plugin_host_with_recorder: tuple[PluginHost, RebootRecorder],
    certs: Certs,
    tmp_path: Path,
) -> None:
    """--disk /dev/loopN: the table is read from the device, roots written at offsets."""
    host, _ = plugin_host_with_recorder
    t = disk_node
    image = make_rootfs(tmp_path / "new.ext4", "KubeOS 1.0.1")
    fields = certs.install(t.node.certs_dir)
    with loop_device(t.disk) as dev:
        t.node.disk = dev
        layout = find_layout(t.node)
        assert layout.other.path == dev and layout.other.offset == partition_info(t.disk, 3)[0]
        with ImageServer({"os.img": image}, certs=certs) as srv:
            spec = upgrade_spec(
                srv.url("os.img"), sha256_file(image), "KubeOS 1.0.1", mtls=True, **fields
            )
            node_upgrade.upgrade(host, spec, t.node)
    assert t.version_on("B") == "KubeOS 1.0.1" and t.saved_entry() == "B"


def test_a_mounted_partition_device_is_never_written(tmp_path: Path) -> None:
    """O_EXCL: a partition device that is mounted is refused, and accepted once unmounted."""
    t = make_node(tmp_path / "n", version_b="KubeOS 0.9.0")
    offset, size, _ = partition_info(t.disk, 3)
    with loop_device(t.disk, offset, size) as dev:
        part = Partition("B", 3, dev, 0, size, "/dev/vda3")
        with mounted(dev, tmp_path / "mnt"), pytest.raises(InstallError, match="in use"):
            PartitionWriter(part)
        with PartitionWriter(part) as w:
            w.write(b"\0" * 4096)
            w.sync()
