"""`kubeos-agent upgrade / rollback / boot-check` run as real processes on a disk image."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.disk import TestNode, grubenv_bytes, make_rootfs, sha256_file
from tests.support.https import Certs, ImageServer

NEW = "KubeOS 1.0.1"
RECORDER = """
import os
from kubeos.hooks import hookimpl

@hookimpl
def kubeos_reboot(node, reason):
    with open(os.environ["REBOOT_LOG"], "a") as f:
        f.write(reason + "\\n")
    return True
"""

pytestmark = pytest.mark.usefixtures("disk_tools")


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubeos.cli.agent", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def os_file(path: Path, spec: dict[str, object]) -> Path:
    doc = {
        "apiVersion": "upgrade.openeuler.org/v1alpha1",
        "kind": "OS",
        "metadata": {"name": "os-sample", "namespace": "default"},
        "spec": {"maxunavailable": 1, "containerimage": "", "evictpodforce": True, **spec},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def node_args(t: TestNode) -> list[str]:
    return ["--host-root", str(t.host_root), "--disk", str(t.disk)]


@pytest.fixture
def served(tmp_path: Path, disk_node: TestNode, certs: Certs):
    image = make_rootfs(tmp_path / "new.ext4", NEW)
    fields = certs.install(disk_node.node.certs_dir)
    with ImageServer({"os.img": image}, certs=certs) as srv:
        spec = {
            "imagetype": "disk",
            "opstype": "upgrade",
            "osversion": NEW,
            "imageurl": srv.url("os.img"),
            "checksum": sha256_file(image),
            "flagSafe": False,
            "mtls": True,
            **fields,
        }
        yield spec


def reboot_plugin(site: Path) -> dict[str, str]:
    """Install a reboot-recording plugin the way pip would (dist-info + entry point)."""
    (site / "reboot_recorder").mkdir(parents=True)
    (site / "reboot_recorder" / "__init__.py").write_text(textwrap.dedent(RECORDER))
    info = site / "reboot_recorder-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: reboot-recorder\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kubeos]\nzz_reboot_recorder = reboot_recorder\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_upgrade_no_reboot_then_boot_check_and_rollback(
    tmp_path: Path, disk_node: TestNode, served: dict[str, object]
) -> None:
    t = disk_node
    f = os_file(tmp_path / "os.yaml", served)
    res = agent("upgrade", "-f", str(f), *node_args(t), "--no-reboot")
    assert res.returncode == 0, res.stderr
    assert "upgraded: root B (/dev/vda3) holds 'KubeOS 1.0.1'" in res.stdout
    assert "not rebooting" in res.stdout
    assert "download:" in res.stderr and "/s, ETA" in res.stderr  # plain progress lines
    assert t.version_on("B") == NEW and t.saved_entry() == "B"

    res = agent("boot-check", "--expect-version", NEW, *node_args(t))
    assert res.returncode == 1
    assert "running 'KubeOS 1.0.0' from root A; next boot: root B" in res.stdout
    t.reboot_into("B")
    res = agent("boot-check", "--expect-version", NEW, "--expect-root", "B", *node_args(t))
    assert res.returncode == 0, res.stderr

    rb = os_file(
        tmp_path / "rb.yaml", {"imagetype": "", "opstype": "rollback", "osversion": "KubeOS 1.0.0"}
    )
    res = agent("rollback", "-f", str(rb), *node_args(t), "--no-reboot")
    assert res.returncode == 0, res.stderr
    assert "rolled back: root A" in res.stdout
    assert t.saved_entry() == "A"


def test_upgrade_reboots_through_the_reboot_hook(
    tmp_path: Path, disk_node: TestNode, served: dict[str, object]
) -> None:
    log = tmp_path / "reboots.log"
    env = {**reboot_plugin(tmp_path / "site"), "REBOOT_LOG": str(log)}
    f = os_file(tmp_path / "os.yaml", served)
    res = agent("upgrade", "-f", str(f), *node_args(disk_node), env=env)
    assert res.returncode == 0, res.stderr
    assert log.read_text() == "upgrade to KubeOS 1.0.1\n"


def test_builtin_reboot_refuses_for_a_disk_image_file(
    tmp_path: Path, disk_node: TestNode, served: dict[str, object]
) -> None:
    """The real reboot hook never reboots this machine for a disk-image file."""
    f = os_file(tmp_path / "os.yaml", served)
    res = agent("upgrade", "-f", str(f), *node_args(disk_node))
    assert res.returncode == 1
    assert "boot entry switched, but the reboot failed: not rebooting this machine" in res.stderr


def test_failed_upgrade_exits_1_and_leaves_the_boot_entry(
    tmp_path: Path, disk_node: TestNode, served: dict[str, object]
) -> None:
    before = grubenv_bytes(disk_node.node)
    f = os_file(tmp_path / "os.yaml", {**served, "checksum": "ab" * 32})
    res = agent("upgrade", "-f", str(f), *node_args(disk_node), "--no-reboot")
    assert res.returncode == 1
    assert "upgrade failed, boot entry unchanged" in res.stderr and "[D4]" in res.stderr
    assert grubenv_bytes(disk_node.node) == before


def test_invalid_os_or_wrong_opstype_exits_2(
    tmp_path: Path, disk_node: TestNode, served: dict[str, object]
) -> None:
    f = os_file(tmp_path / "os.yaml", {**served, "imageurl": "http://127.0.0.1/x.img"})
    res = agent("upgrade", "-f", str(f), *node_args(disk_node))
    assert res.returncode == 2 and "[D2]" in res.stderr
    f = os_file(tmp_path / "cfg.yaml", {**served, "opstype": "rollback"})
    res = agent("upgrade", "-f", str(f), *node_args(disk_node))
    assert res.returncode == 2 and "[G8]" in res.stderr


def test_progress_bar_on_a_terminal(
    tmp_path: Path, disk_node: TestNode, served: dict[str, object]
) -> None:
    """On a terminal the download draws a rich bar: bytes, rate and time remaining."""
    f = os_file(tmp_path / "os.yaml", served)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubeos.cli.agent",
            "upgrade",
            "-f",
            str(f),
            *node_args(disk_node),
            "--no-reboot",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, screen
    assert "download" in screen and "MiB" in screen and "/s" in screen
    assert "━" in screen  # the bar itself
    assert b"upgraded: root B" in out


def test_extra_options_reach_the_plugins_and_malformed_ones_are_refused(
    tmp_path: Path, disk_node: TestNode, served: dict[str, object]
) -> None:
    before = grubenv_bytes(disk_node.node)
    f = os_file(tmp_path / "os.yaml", served)
    res = agent("upgrade", "-f", str(f), *node_args(disk_node), "--extra", "no-equals-sign")
    assert res.returncode == 2 and "--extra 'no-equals-sign'" in res.stderr
    # image_disk reads its retry policy from the extras: a bad value names them.
    res = agent(
        "upgrade", "-f", str(f), *node_args(disk_node), "--no-reboot",
        "--extra", "image_disk.attempts=many",
    )  # fmt: skip
    assert res.returncode == 1 and "image_disk.*" in res.stderr
    assert grubenv_bytes(disk_node.node) == before
    res = agent(
        "upgrade", "-f", str(f), *node_args(disk_node), "--no-reboot",
        "--extra", "image_disk.attempts=2",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert disk_node.saved_entry() == "B"
