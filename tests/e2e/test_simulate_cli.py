"""`kubeos simulate`, the README's main job, run as a user runs it (a real process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.disk import missing_tools

pytestmark = pytest.mark.slow
KUBEOS = Path(sys.executable).with_name("kubeos")


def simulate(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if missing_tools():
        pytest.skip(f"needs {', '.join(missing_tools())} (scripts/setup installs them)")
    if not KUBEOS.exists():
        pytest.skip("the kubeos console script is not installed in this environment")
    return subprocess.run(
        [str(KUBEOS), "simulate", "--workdir", str(tmp_path / "sim"), *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_simulate_rolls_out_and_exits_zero(tmp_path: Path) -> None:
    proc = simulate("--nodes", "3", "--maxunavailable", "2", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "done: all 3 nodes run KubeOS 1.0.1" in out
    for node in ("node-1", "node-2", "node-3"):  # plain lines (not a TTY): every step shown
        assert f"{node}     upgrade   rebooting" in out
        assert any(
            line.startswith("[") and node in line and "root B" in line for line in out.splitlines()
        )
    assert "OS: upgrade to KubeOS 1.0.1: 3/3 done" in out
    # G7: each node's agent log is on that node.
    log = tmp_path / "sim/nodes/node-1/host/var/log/kubeos-agent.log"
    assert "boot check passed" in log.read_text()


def test_simulate_exits_non_zero_on_timeout(tmp_path: Path) -> None:
    proc = simulate("--nodes", "1", "--timeout", "0.01", tmp_path=tmp_path)
    assert proc.returncode == 1
    assert "TIMEOUT" in proc.stdout


def test_simulate_shows_a_failing_node_and_exits_one(tmp_path: Path) -> None:
    """--fail-node: that node refuses its corrupted download (D4); the others finish."""
    proc = simulate("--nodes", "3", "--fail-node", "node-2", tmp_path=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED: 1 of 3 nodes failed (node-2: spec.checksum" in proc.stdout
    assert "the others run KubeOS 1.0.1" in proc.stdout
    assert any(
        "node-2" in line and "failed" in line and "reason:" in line
        for line in proc.stdout.splitlines()
    )
