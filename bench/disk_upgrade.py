#!/usr/bin/env python3
"""Benchmark: one-pass disk upgrade vs. `curl && sha256sum && dd conv=fsync`.

Both sides fetch the same image from the same local HTTPS server (mTLS, trustme certs)
and end with the image on root B of a GPT disk-image file, verified:

  baseline  curl -o file URL && sha256sum file && dd if=file of=<partition> conv=fsync
  kubeos    kubeos.node.upgrade.upgrade(): stream + SHA-256 while writing onto the
            partition, fsync, read the partition back (page cache dropped) and hash it,
            check the root's os-release, switch the grubenv

Run:  .venv/bin/python bench/disk_upgrade.py [--size 1G] [--rounds 1] [--dir /var/tmp]
Reports each side's wall time and the ratio kubeos/baseline (target <= 1.0x).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support: the same disk and HTTPS helpers as the tests

from kubeos.models.os import validate_spec  # noqa: E402
from kubeos.node import upgrade as node_upgrade  # noqa: E402
from tests.support.disk import (  # noqa: E402
    make_node,
    make_rootfs,
    partition_info,
    sha256_file,
)
from tests.support.https import Certs, ImageServer  # noqa: E402
from tests.support.plugins import plugin_host  # noqa: E402

MiB = 1024 * 1024
VERSION = "KubeOS 9.9.9"


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def build_image(path: Path, size: int) -> Path:
    """An ext4 root of `size` bytes: os-release plus an incompressible blob filling it."""
    blob_dir = path.parent / "blob"
    blob_dir.mkdir(exist_ok=True)
    blob = blob_dir / "blob"
    payload = int(size * 0.85)
    with open(blob, "wb") as f:
        left = payload
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    make_rootfs(path, VERSION, size_mib=size // MiB, files={"var/blob": blob.read_bytes()})
    shutil.rmtree(blob_dir)
    return path


def baseline(url: str, certs_dir: Path, fields: dict[str, str], disk: Path, work: Path) -> float:
    offset, _, _ = partition_info(disk, 3)
    out = work / "baseline.img"
    os.sync()  # start both sides with no pending writeback
    steps = {
        "curl": [
            "curl", "-sS", "--fail", "-o", str(out),
            "--cacert", str(certs_dir / fields["cacert"]),
            "--cert", str(certs_dir / fields["clientcert"]),
            "--key", str(certs_dir / fields["clientkey"]),
            url,
        ],
        "sha256sum": ["sha256sum", str(out)],
        "dd": [
            "dd", f"if={out}", f"of={disk}", "bs=4M", f"seek={offset}",
            "oflag=seek_bytes", "conv=notrunc,fsync", "status=none",
        ],
    }  # fmt: skip
    start = time.perf_counter()
    took = []
    for name, argv in steps.items():
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        took.append(f"{name} {time.perf_counter() - t0:.2f}s")
    elapsed = time.perf_counter() - start
    print(f"  baseline steps: {', '.join(took)}", flush=True)
    out.unlink()
    return elapsed


def ours(url: str, checksum: str, fields: dict[str, str], node_dir: Path) -> float:
    t = make_node(node_dir, root_mib=ROOT_MIB)
    certs_fields = CERTS.install(t.node.certs_dir)
    assert certs_fields == fields
    spec, problems = validate_spec(
        {
            "imagetype": "disk",
            "opstype": "upgrade",
            "osversion": VERSION,
            "maxunavailable": 1,
            "imageurl": url,
            "checksum": checksum,
            "mtls": True,
            **fields,
        }
    )
    assert spec is not None, problems
    host, _ = plugin_host()
    phases: dict[str, list[float]] = {}

    def progress(phase: str, done: int, total: int | None) -> None:
        now = time.perf_counter()
        phases.setdefault(phase, [now, now])[1] = now

    t.node.progress = progress
    os.sync()
    start = time.perf_counter()
    node_upgrade.upgrade(host, spec, t.node)
    elapsed = time.perf_counter() - start
    marks = sorted((v[0], v[1], k) for k, v in phases.items())
    bounds = [start] + [m[1] for m in marks] + [start + elapsed]
    names = ["layout+connect+download+write"] + [k for _, _, k in marks[1:]] + ["check+switch"]
    parts = [f"{n} {bounds[i + 1] - bounds[i]:.2f}s" for i, n in enumerate(names)]
    print(f"  kubeos phases: {', '.join(parts)}", flush=True)
    assert t.saved_entry() == "B" and t.version_on("B") == VERSION
    return elapsed


CERTS: Certs
ROOT_MIB = 0


def main() -> int:
    global CERTS, ROOT_MIB
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="1G", help="image size, e.g. 256M, 1G (default 1G)")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each side, interleaved")
    ap.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for tool in ("curl", "sha256sum", "dd", "sfdisk", "mke2fs", "debugfs"):
        if shutil.which(tool) is None:
            print(f"bench needs {tool} (apt-get install -y curl fdisk e2fsprogs)", file=sys.stderr)
            return 2
    size = parse_size(args.size) // MiB * MiB
    ROOT_MIB = size // MiB + 8
    work = Path(tempfile.mkdtemp(prefix="kubeos-bench-", dir=args.dir))
    CERTS = Certs()
    try:
        print(f"building a {size // MiB} MiB ext4 image in {work} ...", flush=True)
        image = build_image(work / "image.ext4", size)
        checksum = sha256_file(image)
        base_node = make_node(work / "base", root_mib=ROOT_MIB)
        fields = CERTS.install(base_node.node.certs_dir)
        times: dict[str, list[float]] = {"baseline": [], "kubeos": []}
        with ImageServer({"image.img": image}, certs=CERTS) as srv:
            url = srv.url("image.img")
            for r in range(args.rounds):
                times["baseline"].append(
                    baseline(url, base_node.node.certs_dir, fields, base_node.disk, work)
                )
                node_dir = work / f"ours{r}"
                times["kubeos"].append(ours(url, checksum, fields, node_dir))
                shutil.rmtree(node_dir)
                print(
                    f"round {r + 1}: baseline {times['baseline'][-1]:.2f}s,"
                    f" kubeos {times['kubeos'][-1]:.2f}s",
                    flush=True,
                )
        b, k = statistics.median(times["baseline"]), statistics.median(times["kubeos"])
        mib = size / MiB
        print(f"\nimage {mib:.0f} MiB, {args.rounds} round(s), medians:")
        print(f"  baseline curl+sha256sum+dd: {b:7.2f} s  {mib / b:8.1f} MiB/s")
        print(f"  kubeos one pass + read-back: {k:6.2f} s  {mib / k:8.1f} MiB/s")
        print(f"  ratio kubeos/baseline: {k / b:.2f}x (target <= 1.0x)")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
