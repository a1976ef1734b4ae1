"""What `root=` on the kernel command line names: a device, UUID=... or PARTUUID=...."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from kubeos.node.parttable import LayoutError

# /dev/vda2, /dev/sda3, /dev/xvda2 -> ("/dev/vda", "", 2); names ending in a digit put
# a "p" before the partition number: /dev/nvme0n1p3, /dev/mmcblk0p2, /dev/loop0p2.
_DEVICE = re.compile(r"^(?P<disk>/dev/(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]*?)(?P<sep>p?)(?P<n>\d+)$")

_WHOLE_DISK_STEM = re.compile(r"(nvme\d+n|mmcblk|loop|nbd)$")


@dataclass(frozen=True)
class RootSpec:
    kind: str  # "device", "uuid" or "partuuid"
    value: str  # /dev/vda2, or the (lower-case) uuid
    #: for kind "device": the disk part of the name and the separator before the number
    disk_name: str = ""
    sep: str = ""
    number: int = 0

    def sibling(self, number: int) -> str:
        """The device name of partition `number` on the same disk ('' if not a device)."""
        return f"{self.disk_name}{self.sep}{number}" if self.kind == "device" else ""

    def __str__(self) -> str:
        return {"device": self.value, "uuid": f"UUID={self.value}"}.get(
            self.kind, f"PARTUUID={self.value}"
        )


def split_device(device: str) -> tuple[str, str, int] | None:
    """(disk name, separator, partition number) of a partition device name, or None."""
    m = _DEVICE.match(device)
    if not m:
        return None
    disk, sep = m["disk"], m["sep"]
    if sep == "" and (disk[-1:].isdigit() or _WHOLE_DISK_STEM.search(disk)):
        return None  # /dev/nvme0n1 is a whole disk, not partition 1 of /dev/nvme0n
    if sep == "p" and not (disk and disk[-1].isdigit()):
        disk, sep = disk + "p", ""  # e.g. /dev/sdp3: the p belongs to the disk name
    return disk, sep, int(m["n"])


def parse_root(cmdline: str) -> RootSpec:
    """The last `root=` of a kernel command line (the kernel also honours the last one)."""
    try:
        words = shlex.split(cmdline)
    except ValueError:
        words = cmdline.split()
    values = [w[len("root=") :] for w in words if w.startswith("root=")]
    if not values:
        raise LayoutError("kernel command line has no root= parameter")
    value = values[-1]
    upper = value.upper()
    if upper.startswith("UUID="):
        return RootSpec("uuid", value[5:].lower())
    if upper.startswith("PARTUUID="):
        return RootSpec("partuuid", value[9:].lower())
    if not value.startswith("/dev/"):
        raise LayoutError(f"root={value!r} is neither a /dev/ device, UUID= nor PARTUUID=")
    parts = split_device(value)
    if parts is None:  # e.g. /dev/disk/by-label/x: only a real node can resolve it
        return RootSpec("device", value)
    disk, sep, number = parts
    return RootSpec("device", value, disk, sep, number)
