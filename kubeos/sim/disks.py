"""Simulated machines' storage: ext4 root images, GPT disk-image files, host-root trees.

Everything is built with the real tools (sfdisk, mke2fs -d, grub-editenv) so the agent's
real disk code runs unchanged against it: a KubeOS disk of partitions 1 boot, 2 root A,
3 root B, 4 persist, and a host root with grub.cfg, grubenv, proc/cmdline and os-release.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from kubeos import runner
from kubeos.contracts import NodeContext
from kubeos.errors import KubeosError
from kubeos.rootfs.mkfs import make_ext4

MiB = 1 << 20
ROOT_NUMBERS = {"A": 2, "B": 3}
DEVICES = {"A": "/dev/vda2", "B": "/dev/vda3"}
KERNEL_ARGS = "ro rootfstype=ext4 nomodeset quiet oops=panic softlockup_panic=1 panic=3"

#: The simulated kernel's /proc/sys files (relative to proc_sys) and their boot values.
KERNEL_DEFAULTS = {
    "net/ipv4/ip_forward": "0",
    "vm/max_map_count": "65530",
    "kernel/pid_max": "32768",
}


@dataclass(frozen=True)
class DiskSizes:
    boot_mib: int = 2
    root_mib: int = 12
    persist_mib: int = 4


def os_release(version: str) -> str:
    """An os-release whose PRETTY_NAME is `version` (e.g. "KubeOS 1.0.1")."""
    number = version.split()[-1] if version.split() else version
    return (
        f'NAME="KubeOS"\nVERSION="{number}"\nID=kubeos\nVERSION_ID="{number}"\n'
        f'PRETTY_NAME="{version}"\n'
    )


def build_root_image(path: Path, version: str, size_mib: int = 8) -> Path:
    """An ext4 root file system image holding etc/os-release for `version` (mke2fs -d)."""
    with tempfile.TemporaryDirectory(prefix="kubeos-rootfs-") as tmp:
        tree = Path(tmp)
        for d in ("etc", "usr/lib", "boot", "var/log", "persist"):
            (tree / d).mkdir(parents=True, exist_ok=True)
        (tree / "etc/os-release").write_text(os_release(version))
        (tree / "boot/vmlinuz").write_bytes(b"kernel for " + version.encode())
        make_ext4(tree, path, size_mib * MiB, label="ROOT")
    return path


def partitions(disk: Path) -> dict[int, tuple[int, int]]:
    """Partition number -> (byte offset, byte size), from `sfdisk -J`."""
    out = runner.run(["sfdisk", "-J", disk]).stdout
    table = json.loads(out)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    result: dict[int, tuple[int, int]] = {}
    for entry in table["partitions"]:
        found = re.search(r"(\d+)$", str(entry["node"]))
        if found is None:
            raise KubeosError(f"sfdisk names a partition of {disk} oddly: {entry['node']!r}")
        number = int(found.group(1))
        result[number] = (int(entry["start"]) * sector, int(entry["size"]) * sector)
    return result


def build_disk(path: Path, root_a: Path, sizes: DiskSizes = DiskSizes()) -> Path:
    """A GPT disk-image file with the KubeOS layout; root A holds `root_a`, root B nothing."""
    total = (1 + sizes.boot_mib + 2 * sizes.root_mib + sizes.persist_mib + 1) * MiB
    with open(path, "xb") as f:
        f.truncate(total)
    script = (
        "label: gpt\n"
        f"size={sizes.boot_mib}MiB, name=boot\n"
        f"size={sizes.root_mib}MiB, name=rootA\n"
        f"size={sizes.root_mib}MiB, name=rootB\n"
        "name=persist\n"
    )
    runner.run(["sfdisk", "-q", path], input=script.encode())
    offset, size = partitions(path)[ROOT_NUMBERS["A"]]
    if root_a.stat().st_size > size:
        raise KubeosError(f"root image {root_a} does not fit root A ({size} bytes)")
    with open(root_a, "rb") as src, open(path, "r+b") as dst:
        dst.seek(offset)
        shutil.copyfileobj(src, dst, 1 * MiB)
    return path


def grub_cfg() -> str:
    """grub.cfg with the two KubeOS entries; grubenv's saved_entry picks one."""
    entries = []
    for label in ("A", "B"):
        entries.append(
            f"menuentry '{label}' --class KubeOS --class gnu-linux --class gnu --class os"
            f" --unrestricted $menuentry_id_option '{label}' {{\n"
            "\tload_video\n\tset gfxpayload=keep\n\tinsmod gzio\n\tinsmod part_gpt\n"
            "\tinsmod ext2\n"
            f"\tlinux\t/boot/vmlinuz root={DEVICES[label]} {KERNEL_ARGS}\n"
            "\tinitrd\t/boot/initramfs.img\n}\n"
        )
    return "set timeout=3\nload_env\nset default=${saved_entry}\n" + "".join(entries)


def build_host_root(host_root: Path, disk: Path, version: str) -> NodeContext:
    """The tree the agent sees as the host's /: booted from root A running `version`."""
    node = NodeContext(host_root=host_root, proc_sys=host_root / "proc/sys", disk=disk)
    node.grub_cfg.parent.mkdir(parents=True, exist_ok=True)
    node.grub_cfg.write_text(grub_cfg())
    editenv = runner.which("grub2-editenv", "grub-editenv")
    if editenv is None:
        raise KubeosError("grub-editenv (grub-common) is not installed")
    runner.run([editenv, node.grubenv, "create"])
    runner.run([editenv, node.grubenv, "set", "saved_entry=A"])
    (host_root / "etc").mkdir(parents=True, exist_ok=True)
    node.host_path("/etc/os-release").write_text(os_release(version))
    node.certs_dir.mkdir(parents=True, exist_ok=True)
    node.certs_dir.chmod(0o700)
    for d in ("/persist/kubeos", "/var/log", "/run"):
        node.host_path(d).mkdir(parents=True, exist_ok=True)
    write_boot_state(node, f"BOOT_IMAGE=/boot/vmlinuz root={DEVICES['A']} {KERNEL_ARGS}")
    return node


def write_boot_state(node: NodeContext, cmdline: str) -> None:
    """What the kernel shows after a boot: its command line, a fresh boot id, and the
    runtime sysctl values back at their defaults (only persisted settings survive)."""
    cmdline_path = node.host_path(node.cmdline_path)
    cmdline_path.parent.mkdir(parents=True, exist_ok=True)
    cmdline_path.write_text(cmdline.strip() + "\n")
    boot_id = node.proc_sys / "kernel/random/boot_id"
    boot_id.parent.mkdir(parents=True, exist_ok=True)
    boot_id.write_text(f"{uuid.uuid4()}\n")
    for key, value in KERNEL_DEFAULTS.items():
        path = node.proc_sys / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
