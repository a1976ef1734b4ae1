"""Real disks for tests: ext4 root images (mke2fs -d), GPT disk-image files (sfdisk),
host-root trees (grub.cfg, grubenv, proc/cmdline, etc/os-release) and debugfs read-back.

The usual entry point is `make_node()`: a disk-image file with roots A and B, the node
booted from one of them, and a NodeContext pointing at it all.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubeos.contracts import NodeContext

MiB = 1024 * 1024
SECTOR = 512
#: grub.cfg id of each root and its partition number on a KubeOS disk.
ROOTS = {"A": 2, "B": 3}
TOOLS = ("sfdisk", "mke2fs", "debugfs", "grub-editenv")


def missing_tools() -> list[str]:
    """Which of the disk tools are not installed (tests skip with this as the reason)."""
    return [
        t
        for t in TOOLS
        if shutil.which(t) is None and not (t == "grub-editenv" and shutil.which("grub2-editenv"))
    ]


def editenv() -> str:
    return shutil.which("grub2-editenv") or shutil.which("grub-editenv") or "grub-editenv"


def os_release_text(pretty_name: str) -> str:
    version = pretty_name.split()[-1] if pretty_name.split() else ""
    return (
        'NAME="KubeOS"\n'
        f'VERSION="{version}"\n'
        "ID=kubeos\n"
        f'VERSION_ID="{version}"\n'
        f'PRETTY_NAME="{pretty_name}"\n'
    )


def make_rootfs(
    path: Path,
    pretty_name: str,
    size_mib: int = 4,
    files: dict[str, str | bytes] | None = None,
) -> Path:
    """An ext4 image at `path` built with `mke2fs -d` from a tree holding etc/os-release.

    `files` adds more files (relative paths -> content), e.g. {"usr/bin/big": b"x" * n}.
    """
    with tempfile.TemporaryDirectory(prefix="rootfs-") as tmp:
        tree = Path(tmp)
        (tree / "etc").mkdir()
        (tree / "etc" / "os-release").write_text(os_release_text(pretty_name))
        for rel, content in (files or {}).items():
            f = tree / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                f.write_bytes(content)
            else:
                f.write_text(content)
        path.unlink(missing_ok=True)
        proc = subprocess.run(
            ["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(path), f"{size_mib}M"],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mke2fs of {size_mib} MiB failed: {proc.stderr.strip()}")
    return path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def make_gpt_disk(path: Path, root_mib: int = 8, boot_mib: int = 2, persist_mib: int = 2) -> Path:
    """A GPT disk-image file: 1 boot, 2 rootA, 3 rootB, 4 persist, made with real sfdisk."""
    total = 1 + boot_mib + 2 * root_mib + persist_mib + 1  # 1 MiB alignment + backup GPT
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(total * MiB)
    script = (
        "label: gpt\n"
        f"size={boot_mib}M, name=boot\n"
        f"size={root_mib}M, name=rootA\n"
        f"size={root_mib}M, name=rootB\n"
        "name=persist\n"
    )
    subprocess.run(
        ["sfdisk", "-q", str(path)], input=script.encode(), check=True, capture_output=True
    )
    return path


def partition_table(disk: Path) -> dict:
    out = subprocess.run(["sfdisk", "-J", str(disk)], check=True, capture_output=True).stdout
    return json.loads(out)["partitiontable"]


def partition_info(disk: Path, number: int) -> tuple[int, int, str]:
    """(byte offset, byte size, PARTUUID lower case) of partition `number`."""
    table = partition_table(disk)
    sector = int(table.get("sectorsize", SECTOR))
    for p in table["partitions"]:
        m = re.search(r"(\d+)$", p["node"])
        if m and int(m.group(1)) == number:
            return int(p["start"]) * sector, int(p["size"]) * sector, p["uuid"].lower()
    raise KeyError(f"{disk} has no partition {number}")


def write_partition(disk: Path, number: int, image: Path) -> None:
    """Copy `image` to the start of partition `number` of `disk` (refuses if it doesn't fit)."""
    offset, size, _ = partition_info(disk, number)
    data = image.read_bytes()
    if len(data) > size:
        raise ValueError(f"{image} ({len(data)} bytes) does not fit partition {number} ({size})")
    with open(disk, "r+b") as f:
        f.seek(offset)
        f.write(data)


def read_partition(disk: Path, number: int, length: int | None = None) -> bytes:
    offset, size, _ = partition_info(disk, number)
    with open(disk, "rb") as f:
        f.seek(offset)
        return f.read(size if length is None else length)


def read_file(disk: Path, number: int, path: str = "/etc/os-release") -> str:
    """A file read back from partition `number` with debugfs; raises if it is not there."""
    offset, _, _ = partition_info(disk, number)
    proc = subprocess.run(
        ["debugfs", "-R", f"cat {path}", f"{disk}?offset={offset}"],
        capture_output=True,
        text=True,
        check=True,
    )
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("debugfs ")]
    if errors:
        raise FileNotFoundError(f"partition {number}: {path}: {errors[0]}")
    return proc.stdout


def pretty_name_on(disk: Path, number: int) -> str | None:
    """PRETTY_NAME of the root on partition `number`, or None if none can be read."""
    try:
        text = read_file(disk, number)
    except (FileNotFoundError, subprocess.CalledProcessError):
        return None
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def fs_uuid(image_or_disk: Path, offset: int = 0) -> str:
    """The ext4 UUID as `blkid`/`root=UUID=` writes it (read with debugfs, not our code)."""
    target = f"{image_or_disk}?offset={offset}" if offset else str(image_or_disk)
    out = subprocess.run(
        ["debugfs", "-R", "stats", target], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("Filesystem UUID:"):
            return line.split(":", 1)[1].strip()
    raise ValueError(f"{target}: no filesystem UUID")


def grub_cfg_text(device_a: str = "/dev/vda2", device_b: str = "/dev/vda3") -> str:
    """A KubeOS grub.cfg: menu entries 'A' and 'B', default from the grubenv's saved_entry."""
    entries = []
    for label, dev in (("A", device_a), ("B", device_b)):
        entries.append(
            f"menuentry '{label}' --class KubeOS --class gnu-linux --class gnu --class os"
            f" --unrestricted $menuentry_id_option '{label}' {{\n"
            "\tload_video\n\tset gfxpayload=keep\n\tinsmod gzio\n\tinsmod part_gpt\n\tinsmod ext2\n"
            f"\tlinux /boot/vmlinuz root={dev} ro rootfstype=ext4 nomodeset quiet oops=panic"
            " softlockup_panic=1 nmi_watchdog=1 rd.shell=0 selinux=0 crashkernel=256M panic=3\n"
            "\tinitrd /boot/initramfs.img\n}\n"
        )
    return (
        "set timeout=3\n"
        "if [ -s $prefix/grubenv ]; then\n  load_env\nfi\n"
        'set default="${saved_entry}"\n' + "".join(entries)
    )


def grub_saved_entry(node: NodeContext) -> str | None:
    """saved_entry of the node's grubenv, read with the real grub-editenv."""
    out = subprocess.run(
        [editenv(), str(node.grubenv), "list"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("saved_entry="):
            return line.split("=", 1)[1]
    return None


def grubenv_bytes(node: NodeContext) -> bytes:
    """The whole grubenv block: compare before/after to prove nothing was switched."""
    return node.grubenv.read_bytes()


@dataclass
class TestNode:
    """A node made of files: `node` points at `host_root` and the disk-image file `disk`."""

    __test__ = False  # not a pytest test class

    node: NodeContext
    disk: Path
    host_root: Path
    current: str

    @property
    def other(self) -> str:
        return "B" if self.current == "A" else "A"

    def version_on(self, label: str) -> str | None:
        return pretty_name_on(self.disk, ROOTS[label])

    def saved_entry(self) -> str | None:
        return grub_saved_entry(self.node)

    def reboot_into(self, label: str, root_by: str = "device") -> None:
        """What a real reboot into `label` changes: /proc/cmdline and the live os-release."""
        self.current = label
        write_cmdline(self.host_root, self.disk, label, root_by)
        version = self.version_on(label)
        if version is not None:
            (self.host_root / "etc" / "os-release").write_text(os_release_text(version))


def root_argument(disk: Path, label: str, root_by: str) -> str:
    number = ROOTS[label]
    if root_by == "device":
        return f"/dev/vda{number}"
    offset, _, partuuid = partition_info(disk, number)
    if root_by == "partuuid":
        return f"PARTUUID={partuuid}"
    if root_by == "uuid":
        return f"UUID={fs_uuid(disk, offset)}"
    raise ValueError(f"root_by must be device, uuid or partuuid (got {root_by!r})")


def write_cmdline(host_root: Path, disk: Path, label: str, root_by: str = "device") -> None:
    proc = host_root / "proc"
    proc.mkdir(parents=True, exist_ok=True)
    root = root_argument(disk, label, root_by)
    (proc / "cmdline").write_text(
        f"BOOT_IMAGE=/boot/vmlinuz root={root} ro rootfstype=ext4 nomodeset quiet\n"
    )


def make_host_root(
    host_root: Path,
    disk: Path,
    current: str = "A",
    root_by: str = "device",
    saved_entry: str | None = None,
    grub_dir: str = "/boot/efi/EFI/openEuler",
) -> NodeContext:
    """A host-root tree for a node booted from `current` of `disk`; returns its NodeContext.

    Holds <grub_dir>/grub.cfg and grubenv (saved_entry = `saved_entry` or `current`),
    proc/cmdline (root= by device, uuid or partuuid), etc/os-release of the booted root
    and an empty etc/KubeOS/certs (mode 0700).
    """
    node = NodeContext(
        host_root=host_root,
        disk=disk,
        work_dir=host_root / "persist" / "kubeos" / "tmp",
        grub_dir=grub_dir,
        node_name="node-1",
    )
    node.grub_cfg.parent.mkdir(parents=True, exist_ok=True)
    node.grub_cfg.write_text(grub_cfg_text())
    subprocess.run([editenv(), str(node.grubenv), "create"], check=True, capture_output=True)
    subprocess.run(
        [editenv(), str(node.grubenv), "set", f"saved_entry={saved_entry or current}"],
        check=True,
        capture_output=True,
    )
    write_cmdline(host_root, disk, current, root_by)
    (host_root / "etc").mkdir(parents=True, exist_ok=True)
    version = pretty_name_on(disk, ROOTS[current]) or "KubeOS unknown"
    (host_root / "etc" / "os-release").write_text(os_release_text(version))
    certs = node.certs_dir
    certs.mkdir(parents=True, exist_ok=True)
    certs.chmod(0o700)
    return node


def make_node(
    tmp: Path,
    current: str = "A",
    version_a: str | None = "KubeOS 1.0.0",
    version_b: str | None = None,
    root_by: str = "device",
    root_mib: int = 8,
) -> TestNode:
    """A whole node under `tmp`: GPT disk image with roots A/B (ext4 with os-release where
    a version is given, empty otherwise) and a host root booted from `current`."""
    tmp.mkdir(parents=True, exist_ok=True)
    disk = make_gpt_disk(tmp / "disk.img", root_mib=root_mib)
    for label, version in (("A", version_a), ("B", version_b)):
        if version is not None:
            image = make_rootfs(tmp / f"root{label}.ext4", version, size_mib=min(4, root_mib))
            write_partition(disk, ROOTS[label], image)
            image.unlink()
    host_root = tmp / "host"
    node = make_host_root(host_root, disk, current=current, root_by=root_by)
    return TestNode(node=node, disk=disk, host_root=host_root, current=current)
