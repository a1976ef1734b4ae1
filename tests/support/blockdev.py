"""Real block devices for root-only tests: loop devices over disk-image files."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def require_loop() -> None:
    """Skip unless root with losetup and a free loop device."""
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices)")
    if shutil.which("losetup") is None:
        pytest.skip("needs losetup (util-linux)")
    probe = subprocess.run(["losetup", "-f"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no free loop device: {probe.stderr.strip()}")


@contextlib.contextmanager
def loop_device(
    backing: Path, offset: int | None = None, size: int | None = None
) -> Iterator[Path]:
    """Attach `backing` (optionally a byte range of it) as a loop device; detach after."""
    argv = ["losetup", "-f", "--show"]
    if offset is not None:
        argv += ["-o", str(offset)]
    if size is not None:
        argv += ["--sizelimit", str(size)]
    dev = subprocess.run([*argv, str(backing)], capture_output=True, text=True, check=True)
    path = Path(dev.stdout.strip())
    try:
        yield path
    finally:
        subprocess.run(["losetup", "-d", str(path)], capture_output=True)


@contextlib.contextmanager
def mounted(device: Path, where: Path, readonly: bool = True) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    opts = ["-o", "ro"] if readonly else []
    res = subprocess.run(["mount", *opts, str(device), str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount here: {res.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)
