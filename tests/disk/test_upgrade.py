"""Single-node disk upgrade end to end: real HTTPS/mTLS server, real ext4, real GPT image.

Every failure test proves the same three things: a clear error naming the rule, the
grubenv byte-for-byte unchanged, and no spool files left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubeos.contracts import FetchedImage, NodeContext, Partition, Provides
from kubeos.errors import ImageError, InstallError, KubeosError
from kubeos.hooks import hookimpl
from kubeos.models.os import OSSpec
from kubeos.node import upgrade as node_upgrade
from kubeos.node.layout import find_layout
from kubeos.plugins import PluginHost
from tests.disk.helpers import upgrade_spec
from tests.support.disk import (
    TestNode,
    grubenv_bytes,
    make_node,
    make_rootfs,
    read_file,
    read_partition,
    sha256_file,
)
from tests.support.https import Certs, ImageServer
from tests.support.plugins import RebootRecorder

NEW = "KubeOS 1.0.1"
FAST_RETRY = {"image_disk.backoff": "0.05", "image_disk.read_timeout": "5"}

pytestmark = pytest.mark.usefixtures("disk_tools")


@pytest.fixture
def new_image(tmp_path: Path) -> Path:
    return make_rootfs(tmp_path / "new.ext4", NEW, size_mib=4, files={"usr/lib/marker": "new"})


@pytest.fixture
def host(plugin_host_with_recorder: tuple[PluginHost, RebootRecorder]) -> PluginHost:
    return plugin_host_with_recorder[0]


def _spool_files(t: TestNode) -> list[Path]:
    return list(t.node.scratch().iterdir())


def assert_nothing_switched(t: TestNode, before: bytes) -> None:
    assert grubenv_bytes(t.node) == before
    assert t.saved_entry() == t.current
    assert t.version_on(t.current) == "KubeOS 1.0.0"  # the running root is never touched
    assert _spool_files(t) == []


@pytest.mark.parametrize("root_by", ["device", "uuid", "partuuid"])
def test_mtls_upgrade_writes_the_other_root_and_switches_boot(
    tmp_path: Path, host: PluginHost, certs: Certs, new_image: Path, root_by: str
) -> None:
    """U5: image streamed over mTLS onto root B, read back with debugfs, grubenv -> B."""
    t = make_node(tmp_path / "n", root_by=root_by)
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        part = node_upgrade.upgrade(host, spec, t.node)
    assert srv.requests and all(r.client_cert for r in srv.requests)
    assert part.label == "B"
    assert 'PRETTY_NAME="KubeOS 1.0.1"' in read_file(t.disk, 3, "/etc/os-release")
    assert read_file(t.disk, 3, "/usr/lib/marker") == "new"
    assert t.saved_entry() == "B"
    assert t.version_on("A") == "KubeOS 1.0.0"
    assert _spool_files(t) == []


def test_upgrade_from_b_writes_a(
    tmp_path: Path, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = make_node(tmp_path / "n", current="B", version_a="KubeOS 0.9.0", version_b="KubeOS 1.0.0")
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        assert node_upgrade.upgrade(host, spec, t.node).label == "A"
    assert t.version_on("A") == NEW
    assert t.version_on("B") == "KubeOS 1.0.0"
    assert t.saved_entry() == "A"


def test_https_without_mtls_and_spool_path(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """D3 without mtls; the spool path (target not ready) is cleaned up after install."""
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    t.node.extras["image_disk.spool"] = "always"
    with ImageServer({"os.img": new_image}, certs=certs, require_client_cert=False) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, cacert=fields["cacert"])
        node_upgrade.upgrade(host, spec, t.node)
    assert not srv.requests[0].client_cert
    assert t.version_on("B") == NEW and t.saved_entry() == "B"
    assert _spool_files(t) == []


def test_http_with_flag_safe_is_fetched(
    disk_node: TestNode, host: PluginHost, new_image: Path
) -> None:
    with ImageServer({"os.img": new_image}) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, flagSafe=True)
        node_upgrade.upgrade(host, spec, disk_node.node)
    assert disk_node.version_on("B") == NEW


def test_http_without_flag_safe_is_refused_before_any_byte(
    disk_node: TestNode, host: PluginHost, new_image: Path
) -> None:
    """D2: refused, and the server never saw a request."""
    t = disk_node
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}) as srv:
        # validate_spec refuses it too; build it as a CR that slipped past validation
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, flagSafe=True)
        spec = type(spec)(**{**spec.__dict__, "flagSafe": False})
        with pytest.raises(ImageError, match=r"unsafe.*\[D2\]"):
            node_upgrade.upgrade(host, spec, t.node)
    assert srv.requests == []
    assert_nothing_switched(t, before)


def test_wrong_checksum_switches_nothing_and_wipes_the_target(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """D4: mismatch -> nothing switched; the half-trusted root B is left unbootable."""
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), "0" * 64, NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match=r"does not match.*\[D4\]"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)
    assert t.version_on("B") is None
    assert read_partition(t.disk, 3, 4096) == bytes(4096)


def test_missing_cacert_is_refused(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(
            srv.url("os.img"), sha256_file(new_image), NEW, cacert="ca.crt"
        )  # nothing installed in the certs dir
        with pytest.raises(ImageError, match=r"spec.cacert: 'ca.crt' not found.*\[D3\]"):
            node_upgrade.upgrade(host, spec, t.node)
    assert srv.requests == []
    assert_nothing_switched(t, before)


def test_server_not_signed_by_cacert_is_refused(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """D3: the server must chain to the configured CA, not to any CA."""
    t = disk_node
    other = Certs()
    fields = other.install(t.node.certs_dir)  # a CA that did not sign the server
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match=r"TLS .*failed.*\[D3\]"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)


def test_bad_client_certificate_is_rejected_by_the_server(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """mTLS: a client cert from another CA fails the handshake; nothing is switched."""
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    stranger = Certs()
    stranger.client.cert_chain_pems[0].write_to_path(str(t.node.certs_dir / "client.crt"))
    stranger.client.private_key_pem.write_to_path(str(t.node.certs_dir / "client.key"))
    t.node.extras.update({**FAST_RETRY, "image_disk.attempts": "2"})
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match="TLS"):
            node_upgrade.upgrade(host, spec, t.node)
    assert srv.bytes_sent == 0
    assert_nothing_switched(t, before)
    assert t.version_on("B") is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_readable_by_group_or_others_is_refused(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path, mode: int
) -> None:
    """G3: the key must be private; nothing is fetched otherwise."""
    t = disk_node
    fields = certs.install(t.node.certs_dir, key_mode=mode)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match=rf"mode {mode:04o}.*\[G3\]"):
            node_upgrade.upgrade(host, spec, t.node)
    assert srv.requests == []
    assert_nothing_switched(t, before)


def test_cert_names_cannot_escape_the_certs_dir(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path, tmp_path: Path
) -> None:
    """D3: names are files in /etc/KubeOS/certs; '..' and symlinks out of it are refused."""
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    outside = certs.ca_file(tmp_path / "elsewhere.crt")
    os.symlink(outside, t.node.certs_dir / "link.crt")
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        for name, pattern in (("../../../elsewhere.crt", "file name"), ("link.crt", "outside")):
            bad = type(spec)(**{**spec.__dict__, "cacert": name})
            with pytest.raises(ImageError, match=rf"spec.cacert.*{pattern}.*\[D3\]"):
                node_upgrade.upgrade(host, bad, t.node)
    assert srv.requests == []


@pytest.mark.parametrize("honour_range", [True, False])
def test_server_dying_mid_transfer_is_resumed(
    disk_node: TestNode, host: PluginHost, certs: Certs, tmp_path: Path, honour_range: bool
) -> None:
    """A broken transfer resumes with Range (206) or restarts when Range is ignored."""
    t = disk_node
    big = make_rootfs(tmp_path / "big.ext4", NEW, size_mib=6, files={"blob": os.urandom(3 << 20)})
    fields = certs.install(t.node.certs_dir)
    t.node.extras.update(FAST_RETRY)
    with ImageServer(
        {"os.img": big}, certs=certs, fail_after=1 << 20, failures=2, honour_range=honour_range
    ) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(big), NEW, mtls=True, **fields)
        node_upgrade.upgrade(host, spec, t.node)
    ranges = [r.range for r in srv.requests]
    assert len(ranges) == 3 and ranges[0] is None
    if honour_range:
        assert ranges[1:] == [f"bytes={1 << 20}-", f"bytes={2 << 20}-"]
    assert t.version_on("B") == NEW and t.saved_entry() == "B"


def test_server_dying_every_time_fails_cleanly(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    t.node.extras.update({**FAST_RETRY, "image_disk.attempts": "3"})
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs, fail_after=0, failures=100) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match="3 attempt"):
            node_upgrade.upgrade(host, spec, t.node)
    assert len(srv.requests) == 3
    assert_nothing_switched(t, before)


def test_image_larger_than_the_partition_is_refused_before_writing(
    tmp_path: Path, host: PluginHost, certs: Certs
) -> None:
    """Content-Length over the partition size: refused, root B keeps its old system."""
    t = make_node(tmp_path / "n", root_mib=4, version_b="KubeOS 0.9.0")
    big = make_rootfs(tmp_path / "big.ext4", NEW, size_mib=5)
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": big}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(big), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match="larger than the target root partition"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)
    assert t.version_on("B") == "KubeOS 0.9.0"  # not a byte was written


def test_stream_passing_the_partition_size_is_cut_off(
    tmp_path: Path, host: PluginHost, certs: Certs
) -> None:
    """No Content-Length: the stream is refused the moment it passes the partition end."""
    t = make_node(tmp_path / "n", root_mib=4)
    big = make_rootfs(tmp_path / "big.ext4", NEW, size_mib=6)
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": big}, certs=certs, send_length=False) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(big), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match="larger than the target root partition"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)
    assert t.version_on("B") is None  # partially written, then wiped


def test_not_found_is_not_retried(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("nope.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        with pytest.raises(ImageError, match="HTTP 404"):
            node_upgrade.upgrade(host, spec, t.node)
    assert len(srv.requests) == 1
    assert_nothing_switched(t, before)


def test_image_that_is_not_a_root_filesystem_is_not_switched_to(
    disk_node: TestNode, host: PluginHost, certs: Certs, tmp_path: Path
) -> None:
    """Checksum right but no ext4 root with os-release: boot entry stays, target wiped."""
    t = disk_node
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1 << 20))
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": junk}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(junk), NEW, mtls=True, **fields)
        with pytest.raises(InstallError, match="not a usable root"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)
    assert read_partition(t.disk, 3, 4096) == bytes(4096)


class WrongPartitionInstaller:
    """An install hook that returns a partition other than the one it was given."""

    @hookimpl
    def kubeos_install_partition(
        self, image: FetchedImage, target: Partition, node: NodeContext
    ) -> Partition:
        return find_layout(node).current_partition


def test_boot_is_never_switched_unless_install_returned_the_target(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    host.register(WrongPartitionInstaller(), name="wrong_installer")
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        with pytest.raises(InstallError, match="instead of the verified root B"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)


def test_grub_cfg_without_the_target_entry_is_not_switched_to(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    t = disk_node
    cfg = t.node.grub_cfg
    cfg.write_text(cfg.read_text().replace("'B'", "'C'"))
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        with pytest.raises(InstallError, match="no menu entry 'B'"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)


def test_upgrade_does_not_reboot(
    disk_node: TestNode,
    plugin_host_with_recorder: tuple[PluginHost, RebootRecorder],
    certs: Certs,
    new_image: Path,
) -> None:
    host, recorder = plugin_host_with_recorder
    fields = certs.install(disk_node.node.certs_dir)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        node_upgrade.upgrade(host, spec, disk_node.node)
    assert recorder.reboots == []
    node_upgrade.reboot(host, disk_node.node, "upgrade to KubeOS 1.0.1")
    assert recorder.reboots == [("node-1", "upgrade to KubeOS 1.0.1")]


def test_image_of_another_version_is_not_switched_to(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """U6: an image whose PRETTY_NAME is not osversion would be upgraded forever."""
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    before = grubenv_bytes(t.node)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        spec = upgrade_spec(
            srv.url("os.img"), sha256_file(new_image), "KubeOS 1.0.2", mtls=True, **fields
        )
        with pytest.raises(InstallError, match=r"calls itself 'KubeOS 1\.0\.1'.*\[U6\]"):
            node_upgrade.upgrade(host, spec, t.node)
    assert_nothing_switched(t, before)


class BrokenFetcher:
    """An image plugin with a bug: raises something that is not a KubeosError."""

    @hookimpl
    def kubeos_provides(self) -> Provides:
        return Provides(image_types=("broken",))

    @hookimpl
    def kubeos_fetch_image(self, spec: OSSpec, node: NodeContext, target: Partition) -> None:
        raise RuntimeError("plugin bug")


def test_a_plugin_bug_is_reported_as_a_kubeos_error(disk_node: TestNode, host: PluginHost) -> None:
    host.register(BrokenFetcher(), name="broken_fetcher")
    before = grubenv_bytes(disk_node.node)
    spec = upgrade_spec("https://127.0.0.1/x", "0" * 64, NEW, cacert="ca.crt")
    spec = type(spec)(**{**spec.__dict__, "imagetype": "broken"})
    with pytest.raises(KubeosError, match="upgrade failed: RuntimeError: plugin bug"):
        node_upgrade.upgrade(host, spec, disk_node.node)
    assert_nothing_switched(disk_node, before)


def test_a_staged_but_not_rebooted_upgrade_never_leaves_a_wiped_root_as_next_boot(
    disk_node: TestNode, host: PluginHost, certs: Certs, new_image: Path
) -> None:
    """Node on A with B staged (saved_entry=B): a failing second upgrade rewrites B, so the
    next boot is pointed back at the running root A first."""
    t = disk_node
    fields = certs.install(t.node.certs_dir)
    with ImageServer({"os.img": new_image}, certs=certs) as srv:
        good = upgrade_spec(srv.url("os.img"), sha256_file(new_image), NEW, mtls=True, **fields)
        node_upgrade.upgrade(host, good, t.node)
        assert t.saved_entry() == "B"
        bad = type(good)(**{**good.__dict__, "checksum": "1" * 64})
        with pytest.raises(ImageError, match=r"\[D4\]"):
            node_upgrade.upgrade(host, bad, t.node)
    assert t.version_on("B") is None  # wiped
    assert t.saved_entry() == "A"  # and not the next boot
