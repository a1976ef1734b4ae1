from pathlib import Path

from kubeos.node import upgrade as node_upgrade
from tests.disk.helpers import upgrade_spec
from tests.support.disk import make_rootfs, sha256_file
from tests.support.https import ImageServer


def test_smoke(tmp_path: Path, disk_node, certs, plugin_host_with_recorder):
    host, _rec = plugin_host_with_recorder
    img = make_rootfs(tmp_path / "new.ext4", "KubeOS 1.0.1", size_mib=4)
    fields = certs.install(disk_node.node.certs_dir)
    with ImageServer({"os.img": img}, certs=certs) as srv:
        spec = upgrade_spec(
            srv.url("os.img"), sha256_file(img), "KubeOS 1.0.1", mtls=True, **fields
        )
        part = node_upgrade.upgrade(host, spec, disk_node.node)
    assert part.label == "B"
    assert disk_node.version_on("B") == "KubeOS 1.0.1"
    assert disk_node.saved_entry() == "B"
