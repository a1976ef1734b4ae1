"""Read a GPT/MBR partition table with `sfdisk -J`: where each partition starts and ends.

Works the same on a block device and on a disk-image file, which is what lets the tests
and the local demo exercise the real layout code against a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kubeos.errors import KubeosError
from kubeos.runner import CommandError, run


class LayoutError(KubeosError):
    """The node's disk does not have the KubeOS A/B layout, or it cannot be found."""


@dataclass(frozen=True)
class TableEntry:
    number: int
    start: int  # bytes from the start of the disk
    size: int  # bytes
    node: str  # what sfdisk calls it: /dev/vda3, or disk.img3 for a file
    partuuid: str  # GPT partition UUID, lower case ("" on MBR)
    name: str  # GPT partition name ("" on MBR)


@dataclass(frozen=True)
class PartitionTable:
    device: Path
    label: str  # "gpt" or "dos"
    sector_size: int
    entries: tuple[TableEntry, ...]

    def entry(self, number: int) -> TableEntry | None:
        return next((e for e in self.entries if e.number == number), None)


def _number(node: str) -> int:
    digits = ""
    for ch in reversed(node):
        if not ch.isdigit():
            break
        digits = ch + digits
    if not digits:
        raise LayoutError(f"sfdisk partition {node!r} has no partition number")
    return int(digits)


def read_table(device: Path) -> PartitionTable:
    """Parse `sfdisk -J device`; LayoutError if it has no table or sfdisk is missing."""
    try:
        proc = run(["sfdisk", "-J", device], timeout=60)
    except CommandError as exc:
        raise LayoutError(f"cannot read the partition table of {device}: {exc}") from exc
    try:
        table = json.loads(proc.stdout)["partitiontable"]
        sector = int(table.get("sectorsize", 512))
        if table.get("unit", "sectors") != "sectors":
            raise LayoutError(f"{device}: sfdisk reports unit {table.get('unit')!r}")
        entries = tuple(
            TableEntry(
                number=_number(p["node"]),
                start=int(p["start"]) * sector,
                size=int(p["size"]) * sector,
                node=str(p["node"]),
                partuuid=str(p.get("uuid", "")).lower(),
                name=str(p.get("name", "")),
            )
            for p in table.get("partitions", [])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LayoutError(f"{device}: unexpected sfdisk output ({exc})") from exc
    return PartitionTable(Path(device), str(table.get("label", "")), sector, entries)
