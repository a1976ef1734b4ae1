"""Add-ons arrive by `pip install` alone: built as wheels, installed into a fresh virtual
environment next to the core, and listed by `kubeos-agent list-plugins` only afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ADDONS, REPO

pytestmark = pytest.mark.slow
PRODUCT = ["image_disk", "image_docker", "image_containerd", "settings_sysctl", "settings_grub"]


def sh(*argv: str | Path, timeout: int = 240) -> str:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv}: {proc.stderr[-3000:]}"
    return proc.stdout


def models(venv: Path) -> set[str]:
    out = json.loads(sh(venv / "bin" / "kubeos-agent", "list-plugins", "--output", "json"))
    assert out["failed"] == []
    return {m for p in out["plugins"] for m in p["setting_models"]}


def test_addons_installed_as_wheels_into_a_fresh_environment(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    # Build from copies: an in-tree build leaves build/ and *.egg-info in the source folders.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "tests")
    shutil.copytree(REPO, src, ignore=ignore)
    sources = [src] + [src / "plugins" / p for p in PRODUCT + list(ADDONS)]
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, *sources)
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--find-links", wheels]
    sh(*pip, "kubeos", *(f"kubeos-{p.replace('_', '-')}" for p in PRODUCT))

    before = models(venv)
    assert before == {"kernel.sysctl", "kernel.sysctl.persist", "grub.cmdline.current",
                      "grub.cmdline.next"}  # fmt: skip

    sh(*pip, "kubeos-settings-kubelet", "kubeos-settings-containerd", "kubeos-settings-pam-limits")
    assert models(venv) - before == {"kubernetes.kubelet", "container.containerd", "pam.limits"}
