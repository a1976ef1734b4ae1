"""Fixtures that install throw-away plugin distributions the way pip would (dist-info on a path)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "deploy" / "samples").glob("*.yaml"))


def write_distribution(
    site: Path, dist: str, module: str, source: str, entry_name: str | None = None
) -> None:
    """Install `module` (with `source`) as distribution `dist` with a `kubeos` entry point.

    This is what `pip install` leaves behind: the package plus a dist-info directory whose
    entry_points.txt importlib.metadata reads. Nothing in the core is touched.
    """
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[kubeos]\n{entry_name or module} = {module}\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    d = tmp_path / "site"
    d.mkdir()
    return d


@pytest.fixture
def agent_cli(site: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `kubeos-agent` in a child whose sys.path also holds `site`."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        return subprocess.run(
            [sys.executable, "-m", "kubeos.cli.agent", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    return run
