"""imagetype containerd end to end, with the real containerd, ctr and a local registry.

The image is built in the test, pushed to docker-registry on 127.0.0.1, pulled by the
plugin (ctr here: crictl is not packaged in Debian; the crictl branch runs with a
recording `crictl` on PATH that pulls through CRI's store for real), turned into an ext4
root and written to root B of a GPT disk-image file by `kubeos.node.upgrade.upgrade`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kubeos.errors import ImageError
from kubeos.node.upgrade import upgrade
from kubeos.plugins import PluginHost
from tests.container.daemons import Containerd, Registry, publish
from tests.container.helpers import (
    debugfs_stat,
    on_containerd,
    os_image,
    recorded,
    recorder,
    scratch_left,
    trust_plain_http,
    upgrade_spec,
)
from tests.container.tarcraft import reg
from tests.support.disk import (
    ROOTS,
    TestNode,
    fs_uuid,
    grub_cfg_text,
    grubenv_bytes,
    make_node,
    partition_info,
    read_file,
)
from tests.support.plugins import RebootRecorder

MiB = 1 << 20
Host = tuple[PluginHost, RebootRecorder]


@pytest.fixture
def node(containerd_node: TestNode) -> TestNode:
    return containerd_node


def test_upgrade_from_a_containerd_image_u2(
    node: TestNode,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ctr fallback (no crictl): the command sequence, G9 hosts dir, result on root B."""
    image = os_image("KubeOS 1.0.1")
    ref = publish(containerd, registry, image, "kubeos/os:1.0.1")
    shims, log = tmp_path / "bin", tmp_path / "ctr.log"
    shims.mkdir()
    recorder(shims / "ctr", log, f'exec {shutil.which("ctr")} "$@"')
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    host, reboots = plugin_host_with_recorder

    result = upgrade(host, upgrade_spec("containerd", ref, image.manifest_digest), node.node)

    assert result.label == "B"
    assert node.version_on("B") == "KubeOS 1.0.1"
    assert node.saved_entry() == "B"
    assert reboots.reboots == []  # upgrade stages; the caller reboots
    with pytest.raises(FileNotFoundError):
        read_file(node.disk, ROOTS["B"], "/etc/obsolete.conf")  # whited out by layer 2
    assert "Mode:  04755" in debugfs_stat(node.disk, "B", "/usr/bin/passwd")
    assert "Type: symlink" in debugfs_stat(node.disk, "B", "/bin")
    assert "Mode:  01777" in debugfs_stat(node.disk, "B", "/tmp")
    root_inode = debugfs_stat(node.disk, "B", "/")
    assert "Mode:  0755" in root_inode and "User:     0   Group:     0" in root_inode

    prefix = ["--address", str(containerd.address), "--namespace", "k8s.io"]
    calls = recorded(log)
    assert all(c[:4] == prefix for c in calls)
    hosts_dir = str(node.node.host_path("/etc/containerd/certs.d"))
    sub = [c[4:] for c in calls]
    assert sub[0] == ["images", "ls", f"name=={ref}"]
    assert sub[1] == ["images", "pull", "--hosts-dir", hosts_dir, ref]
    assert sub[2] == ["images", "ls", f"name=={ref}"]
    assert sub[3][:2] == ["images", "export"] and sub[3][3] == ref
    assert sub[-1] == ["images", "rm", ref]
    assert containerd.image_names() == []  # the pulled image is gone again
    assert scratch_left(node.node) == []


def test_crictl_is_preferred_when_present(
    node: TestNode,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With crictl on PATH it pulls and removes; ctr only lists and exports."""
    image = os_image("KubeOS 1.0.2")
    ref = publish(containerd, registry, image, "kubeos/os:1.0.2")
    shims, crictl_log, ctr_log = tmp_path / "bin", tmp_path / "crictl.log", tmp_path / "ctr.log"
    shims.mkdir()
    ctr = shutil.which("ctr")
    hosts = node.node.host_path("/etc/containerd/certs.d")
    # What CRI would do, done for real against the same containerd store.
    base = f"{ctr} --address {containerd.address} --namespace k8s.io images"
    recorder(
        shims / "crictl",
        crictl_log,
        'for last; do :; done\ncase " $* " in\n'
        f'  *" pull "*) exec {base} pull --hosts-dir {hosts} "$last" >/dev/null ;;\n'
        f'  *" rmi "*) exec {base} rm "$last" ;;\n'
        "esac\nexit 2",
    )
    recorder(shims / "ctr", ctr_log, f'exec {ctr} "$@"')
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    host, _ = plugin_host_with_recorder

    upgrade(host, upgrade_spec("containerd", ref, image.manifest_digest, "KubeOS 1.0.2"), node.node)

    endpoint = f"unix://{containerd.address}"
    ends = ["--runtime-endpoint", endpoint, "--image-endpoint", endpoint]
    assert recorded(crictl_log) == [[*ends, "pull", ref], [*ends, "rmi", ref]]
    assert not any("pull" in call for call in recorded(ctr_log))
    assert node.version_on("B") == "KubeOS 1.0.2"
    assert containerd.image_names() == []
    assert scratch_left(node.node) == []


def _refused(node: TestNode, before: bytes, containerd: Containerd) -> None:
    """Nothing changed on the node: root B empty, boot entry as it was, no leftovers."""
    assert node.version_on("B") is None
    assert grubenv_bytes(node.node) == before
    assert containerd.image_names() == []
    assert scratch_left(node.node) == []


def test_digest_mismatch_is_refused_before_writing_d4(
    node: TestNode, containerd: Containerd, registry: Registry, plugin_host_with_recorder: Host
) -> None:
    image = os_image("KubeOS 1.0.3")
    ref = publish(containerd, registry, image, "kubeos/os:1.0.3")
    before = grubenv_bytes(node.node)
    host, _ = plugin_host_with_recorder
    with pytest.raises(ImageError, match=r"spec\.checksum.*\[D4\]"):
        upgrade(host, upgrade_spec("containerd", ref, "ab" * 32), node.node)
    _refused(node, before, containerd)


def test_pinned_digest_form_and_pinned_mismatch(
    node: TestNode, containerd: Containerd, registry: Registry, plugin_host_with_recorder: Host
) -> None:
    image = os_image("KubeOS 1.0.4")
    ref = publish(containerd, registry, image, "kubeos/os:1.0.4")
    pinned = f"{ref.rsplit(':', 1)[0]}@{image.manifest_digest}"
    host, _ = plugin_host_with_recorder
    before = grubenv_bytes(node.node)
    with pytest.raises(ImageError, match="pinned"):
        upgrade(host, upgrade_spec("containerd", pinned, "cd" * 32), node.node)
    _refused(node, before, containerd)
    spec = upgrade_spec("containerd", pinned, image.manifest_digest, "KubeOS 1.0.4")
    upgrade(host, spec, node.node)
    assert node.version_on("B") == "KubeOS 1.0.4"
    assert containerd.image_names() == []


def test_hosts_dir_reaches_a_registry_by_its_configured_name_g9(
    node: TestNode, containerd: Containerd, registry: Registry, plugin_host_with_recorder: Host
) -> None:
    """`mirror.kubeos.invalid` exists only in certs.d/<name>/hosts.toml: no config, no pull."""
    image = os_image("KubeOS 1.0.5")
    publish(containerd, registry, image, "kubeos/os:1.0.5")
    ref = "mirror.kubeos.invalid/kubeos/os:1.0.5"
    spec = upgrade_spec("containerd", ref, image.manifest_digest, "KubeOS 1.0.5")
    before = grubenv_bytes(node.node)
    host, _ = plugin_host_with_recorder
    with pytest.raises(ImageError, match=r"spec\.containerimage: pulling .* failed"):
        upgrade(host, spec, node.node)
    _refused(node, before, containerd)

    trust_plain_http(node.node, registry, name="mirror.kubeos.invalid")
    upgrade(host, spec, node.node)
    assert node.version_on("B") == "KubeOS 1.0.5"


def test_hostile_image_is_refused(
    node: TestNode,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
    tmp_path: Path,
) -> None:
    image = os_image("KubeOS 6.6.6", [reg("../../../../../../tmp/kubeos-pwned", b"evil")])
    ref = publish(containerd, registry, image, "kubeos/os:evil")
    before = grubenv_bytes(node.node)
    host, _ = plugin_host_with_recorder
    with pytest.raises(ImageError, match=r"contains '\.\.'"):
        upgrade(host, upgrade_spec("containerd", ref, image.manifest_digest), node.node)
    assert not Path("/tmp/kubeos-pwned").exists()
    _refused(node, before, containerd)


def test_image_larger_than_the_partition_is_refused(
    node: TestNode, containerd: Containerd, registry: Registry, plugin_host_with_recorder: Host
) -> None:
    image = os_image("KubeOS 1.0.7", [reg("usr/share/big", bytes(32 * MiB))])
    ref = publish(containerd, registry, image, "kubeos/os:big")
    before = grubenv_bytes(node.node)
    host, _ = plugin_host_with_recorder
    with pytest.raises(ImageError, match="exceeds"):
        upgrade(host, upgrade_spec("containerd", ref, image.manifest_digest), node.node)
    _refused(node, before, containerd)


def test_crictl_talking_to_another_runtime_is_reported(
    node: TestNode,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """crictl 'succeeds' but the image never reaches containerd's k8s.io namespace."""
    image = os_image("KubeOS 1.0.8")
    ref = publish(containerd, registry, image, "kubeos/os:1.0.8")
    shims = tmp_path / "bin"
    shims.mkdir()
    recorder(shims / "crictl", tmp_path / "crictl.log", "exit 0")
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    before = grubenv_bytes(node.node)
    host, _ = plugin_host_with_recorder
    with pytest.raises(ImageError, match=r"does not list .* after the pull"):
        upgrade(host, upgrade_spec("containerd", ref, image.manifest_digest), node.node)
    _refused(node, before, containerd)


def test_uuid_booting_grub_entry_still_finds_a_container_built_root_u5(
    tmp_path: Path,
    containerd: Containerd,
    registry: Registry,
    plugin_host_with_recorder: Host,
) -> None:
    """grub.cfg boots root B by `root=UUID=`: the root built from the image keeps B's
    filesystem UUID (mke2fs -U), so the entry mounts it and the switch is allowed."""
    t = make_node(tmp_path / "n", version_b="KubeOS 0.9.0")
    offset_b, _, _ = partition_info(t.disk, ROOTS["B"])
    uuid_b = fs_uuid(t.disk, offset_b)
    t.node.grub_cfg.write_text(grub_cfg_text("/dev/vda2", f"UUID={uuid_b}"))
    on_containerd(t, containerd, registry)
    image = os_image("KubeOS 1.0.1")
    ref = publish(containerd, registry, image, "kubeos/os:uuid")
    host, _ = plugin_host_with_recorder

    upgrade(host, upgrade_spec("containerd", ref, image.manifest_digest), t.node)

    assert t.version_on("B") == "KubeOS 1.0.1" and t.saved_entry() == "B"
    assert fs_uuid(t.disk, offset_b) == uuid_b
