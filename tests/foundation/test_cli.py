"""`kubeos-agent validate` as an admin uses it: exit codes and messages naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import SAMPLES


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_validate_accepts_samples(agent_cli, sample: Path) -> None:
    out = agent_cli("validate", "-f", str(sample))
    assert out.returncode == 0, out.stderr
    assert "OS default/os-sample: valid" in out.stdout


def test_validate_reports_every_broken_document(agent_cli, tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all((SAMPLES[0].parent / "upgrade-disk.yaml").read_text()))
    good = docs[0]
    bad = yaml.safe_load(yaml.safe_dump(good))
    bad["metadata"]["name"] = "broken"
    bad["spec"]["imageurl"] = "http://images.example.internal/update.img"
    bad["spec"]["maxunavailable"] = -1
    f = tmp_path / "two.yaml"
    f.write_text(yaml.safe_dump_all([good, bad]))
    out = agent_cli("validate", "-f", str(f))
    assert out.returncode == 1
    assert "OS default/os-sample: valid" in out.stdout
    assert "OS default/broken is invalid (2 problem(s))" in out.stderr
    assert "spec.imageurl: http address is unsafe" in out.stderr
    assert "spec.maxunavailable: must be an integer > 0" in out.stderr


def test_validate_rejects_non_yaml_and_missing_file(agent_cli, tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("spec: [unclosed\n")
    out = agent_cli("validate", "-f", str(f))
    assert out.returncode == 2 and "is not valid YAML" in out.stderr
    out = agent_cli("validate", "-f", str(tmp_path / "none.yaml"))
    assert out.returncode == 2 and "cannot read" in out.stderr
