"""Every OS rule that can be checked without a node: one failing and one passing case each."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
import yaml

from kubeos.errors import ValidationFailed
from kubeos.models.os import parse_image_ref, parse_os
from kubeos.models.timewindow import parse_timewindow
from kubeos.plugins import PluginHost

from .conftest import SAMPLES

HEX = "6d4f2c1b0e9a8f7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170ff5"


@pytest.fixture(scope="module")
def validators():
    return PluginHost().load_entry_points().model_validators()


def disk_upgrade() -> dict[str, Any]:
    return {
        "apiVersion": "upgrade.openeuler.org/v1alpha1",
        "kind": "OS",
        "metadata": {"name": "os-sample", "namespace": "default"},
        "spec": {
            "imagetype": "disk",
            "opstype": "upgrade",
            "osversion": "KubeOS 1.0.1",
            "maxunavailable": 2,
            "containerimage": "",
            "evictpodforce": True,
            "imageurl": "https://images.example.internal/kubeos/update.img",
            "checksum": HEX,
            "flagSafe": False,
            "mtls": True,
            "cacert": "ca.crt",
            "clientcert": "client.crt",
            "clientkey": "client.key",
        },
    }


def container_upgrade(kind: str = "containerd") -> dict[str, Any]:
    doc = disk_upgrade()
    doc["spec"].update(
        imagetype=kind,
        imageurl="",
        containerimage="registry.example.internal/kubeos/os:1.0.1",
        checksum="sha256:" + HEX,
    )
    return doc


def config_op(configs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "upgrade.openeuler.org/v1alpha1",
        "kind": "OS",
        "metadata": {"name": "cfg"},
        "spec": {
            "imagetype": "",
            "opstype": "config",
            "osversion": "KubeOS 1.0.0",
            "maxunavailable": 1,
            "sysconfigs": {"version": "2", "configs": configs},
        },
    }


def with_spec(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for k, v in changes.items():
        if v is _DROP:
            doc["spec"].pop(k, None)
        else:
            doc["spec"][k] = v
    return doc


_DROP = object()
SYSCTL = "kernel.sysctl"

# (id, broken document, field the error must name, rule id, a fixed document that passes)
CASES: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    ("apiVersion", {**disk_upgrade(), "apiVersion": "v1"}, "apiVersion", "T", disk_upgrade()),
    ("required-osversion", with_spec(disk_upgrade(), osversion=_DROP), "spec.osversion", "R",
     disk_upgrade()),
    ("required-maxunavailable", with_spec(disk_upgrade(), maxunavailable=_DROP),
     "spec.maxunavailable", "R", disk_upgrade()),
    ("opstype", with_spec(disk_upgrade(), opstype="upgrade-now"), "spec.opstype", "O",
     disk_upgrade()),
    ("imagetype-upgrade", with_spec(disk_upgrade(), imagetype=""), "spec.imagetype", "U2",
     disk_upgrade()),
    ("imagetype-unknown", with_spec(config_op([]), imagetype="iso"), "spec.imagetype", "U2",
     with_spec(config_op([]), imagetype="docker")),
    ("osversion-empty", with_spec(disk_upgrade(), osversion=" "), "spec.osversion", "C1",
     disk_upgrade()),
    ("maxunavailable-zero", with_spec(disk_upgrade(), maxunavailable=0), "spec.maxunavailable",
     "M", with_spec(disk_upgrade(), maxunavailable=1)),
    ("maxunavailable-bool", with_spec(disk_upgrade(), maxunavailable=True),
     "spec.maxunavailable", "M", disk_upgrade()),
    ("D1-scheme", with_spec(disk_upgrade(), imageurl="ftp://h/x.img"), "spec.imageurl", "D1",
     disk_upgrade()),
    ("D1-missing", with_spec(disk_upgrade(), imageurl=""), "spec.imageurl", "D1", disk_upgrade()),
    ("D1-no-host", with_spec(disk_upgrade(), imageurl="https:///x.img"), "spec.imageurl", "D1",
     disk_upgrade()),
    ("D2-http-unsafe", with_spec(disk_upgrade(), imageurl="http://h/x.img", mtls=False),
     "spec.imageurl", "D2", with_spec(disk_upgrade(), imageurl="http://h/x.img", flagSafe=True)),
    ("D3-cacert", with_spec(disk_upgrade(), cacert=""), "spec.cacert", "D3", disk_upgrade()),
    ("D3-clientkey", with_spec(disk_upgrade(), clientkey=""), "spec.clientkey", "D3",
     with_spec(disk_upgrade(), clientkey="", clientcert="", mtls=False)),
    ("D3-cert-name-escapes", with_spec(disk_upgrade(), cacert="../../etc/shadow"),
     "spec.cacert", "D3", disk_upgrade()),
    ("D4-checksum-missing", with_spec(disk_upgrade(), checksum=""), "spec.checksum", "D4",
     disk_upgrade()),
    ("D4-checksum-format", with_spec(disk_upgrade(), checksum="abc"), "spec.checksum", "D4",
     with_spec(disk_upgrade(), checksum="sha256:" + HEX.upper())),
    ("containerimage-missing", with_spec(container_upgrade(), containerimage=""),
     "spec.containerimage", "U2", container_upgrade()),
    ("containerimage-form", with_spec(container_upgrade("docker"), containerimage="os:1.0"),
     "spec.containerimage", "U2", container_upgrade("docker")),
    ("containerimage-tag-and-digest",
     with_spec(container_upgrade(), containerimage=f"r.io/os:1@sha256:{HEX}"),
     "spec.containerimage", "U2",
     with_spec(container_upgrade(), containerimage=f"r.io/os@sha256:{HEX}")),
    ("N1-label-value", with_spec(disk_upgrade(), nodeselector="a b"), "spec.nodeselector", "N1",
     with_spec(disk_upgrade(), nodeselector="")),
    ("W1-half", with_spec(disk_upgrade(), timewindow={"starttime": "22:00:00"}),
     "spec.timewindow.endtime", "W1",
     with_spec(disk_upgrade(), timewindow={"starttime": "", "endtime": ""})),
    ("W2-format", with_spec(disk_upgrade(), timewindow={"starttime": "22:00", "endtime": "04:00"}),
     "spec.timewindow.starttime", "W2",
     with_spec(disk_upgrade(), timewindow={"starttime": "22:00:00", "endtime": "04:00:00"})),
    ("W2-single-digits", with_spec(disk_upgrade(), timewindow={"starttime": "2:00:00",
                                                               "endtime": "04:00:00"}),
     "spec.timewindow.starttime", "W2",
     with_spec(disk_upgrade(), timewindow={"starttime": "02:00:00", "endtime": "04:00:00"})),
    ("W2-full-single-digits", with_spec(disk_upgrade(), timewindow={
        "starttime": "2026-11-24 2:00:00", "endtime": "2026-11-25 04:00:00"}),
     "spec.timewindow.starttime", "W2",
     with_spec(disk_upgrade(), timewindow={"starttime": "2026-11-24 02:00:00",
                                           "endtime": "2026-11-25 04:00:00"})),
    ("W2-mixed", with_spec(disk_upgrade(), timewindow={"starttime": "2026-11-24 22:00:00",
                                                       "endtime": "04:00:00"}),
     "spec.timewindow", "W2",
     with_spec(disk_upgrade(), timewindow={"starttime": "2026-11-24 22:00:00",
                                           "endtime": "2026-11-25 04:00:00"})),
    ("W2-full-reversed", with_spec(disk_upgrade(), timewindow={"starttime": "2026-11-25 00:00:00",
                                                               "endtime": "2026-11-24 00:00:00"}),
     "spec.timewindow", "W2", disk_upgrade()),
    ("I-negative", with_spec(disk_upgrade(), timeinterval=-1), "spec.timeinterval", "I1",
     with_spec(disk_upgrade(), timeinterval=0)),
    ("E-mode", with_spec(disk_upgrade(), executionmode="rolling"), "spec.executionmode", "E",
     with_spec(disk_upgrade(), executionmode="serial")),
    ("bool-type", with_spec(disk_upgrade(), evictpodforce="yes"), "spec.evictpodforce", "T",
     disk_upgrade()),
    ("C1-sysconfigs-required", with_spec(config_op([]), sysconfigs=_DROP), "spec.sysconfigs",
     "C1", config_op([])),
    ("S1-unknown-model", config_op([{"model": "kernel.sysctll", "contents": []}]),
     "spec.sysconfigs.configs[0].model", "S1", config_op([{"model": SYSCTL, "contents": []}])),
    ("S2-empty-key", config_op([{"model": SYSCTL, "contents": [{"key": "", "value": "1"}]}]),
     "spec.sysconfigs.configs[0].contents[0].key", "S2",
     config_op([{"model": SYSCTL, "contents": [{"key": "vm.swappiness", "value": "1"}]}])),
    ("S2-key-with-equals",
     config_op([{"model": SYSCTL, "contents": [{"key": "a=b", "value": "1"}]}]),
     "spec.sysconfigs.configs[0].contents[0].key", "S2",
     config_op([{"model": SYSCTL, "contents": [{"key": "a.b", "value": "1"}]}])),
    ("S3-empty-value", config_op([{"model": SYSCTL, "contents": [{"key": "vm.swappiness"}]}]),
     "spec.sysconfigs.configs[0].contents[0].value", "S3",
     config_op([{"model": SYSCTL, "contents": [{"key": "vm.swappiness", "value": 10}]}])),
    ("S4-operation",
     config_op([{"model": SYSCTL, "contents": [{"key": "a.b", "value": "1", "operation": "del"}]}]),
     "spec.sysconfigs.configs[0].contents[0].operation", "S4",
     config_op([{"model": SYSCTL, "contents": [{"key": "a.b", "value": "1",
                                                "operation": "delete"}]}])),
    ("P2-configpath", config_op([{"model": "kernel.sysctl.persist", "configpath": "etc/x.conf",
                                  "contents": [{"key": "a.b", "value": "1"}]}]),
     "spec.sysconfigs.configs[0].configpath", "P2",
     config_op([{"model": "kernel.sysctl.persist", "configpath": "/etc/x.conf",
                 "contents": [{"key": "a.b", "value": "1"}]}])),
    ("upgradeconfigs-checked", with_spec(disk_upgrade(), upgradeconfigs={
        "version": "1", "configs": [{"model": SYSCTL, "contents": [{"key": "", "value": "1"}]}]}),
     "spec.upgradeconfigs.configs[0].contents[0].key", "S2",
     with_spec(disk_upgrade(), upgradeconfigs={
         "version": "1",
         "configs": [{"model": SYSCTL, "contents": [{"key": "a", "value": "1"}]}]})),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "field", "rule", "good"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_rule_rejects_and_accepts(validators, bad, field, rule, good) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_os(bad, validators)
    hits = [p for p in exc.value.problems if p.field == field]
    assert hits, f"no problem names {field}: {exc.value.problems}"
    assert hits[0].rule == rule
    assert field in str(exc.value)
    parse_os(good, validators)


def test_all_problems_of_an_object_reported_together(validators) -> None:
    bad = with_spec(disk_upgrade(), maxunavailable=0, imageurl="ftp://x", executionmode="x")
    with pytest.raises(ValidationFailed) as exc:
        parse_os(bad, validators)
    fields = {p.field for p in exc.value.problems}
    assert {"spec.maxunavailable", "spec.imageurl", "spec.executionmode"} <= fields
    assert "3 problem(s)" in str(exc.value)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_every_spec_sample_is_valid(validators, sample) -> None:
    os_ = parse_os(yaml.safe_load(sample.read_text()), validators)
    assert os_.name == "os-sample"


def test_parsed_defaults_follow_the_spec(validators) -> None:
    spec = parse_os(disk_upgrade(), validators).spec
    assert spec.timeinterval == 15  # I1
    assert spec.executionmode == "parallel"  # E1
    assert spec.nodeselector is None  # N2: unset differs from ""
    explicit = parse_os(with_spec(disk_upgrade(), nodeselector=""), validators).spec
    assert explicit.nodeselector == ""  # N3


def test_image_reference_forms() -> None:
    assert parse_image_ref("r.io/kubeos/os").tag is None
    assert parse_image_ref("127.0.0.1:5000/kubeos/os:1.0.1").tag == "1.0.1"
    assert parse_image_ref(f"r.io/os@sha256:{HEX}").digest == f"sha256:{HEX}"
    for bad in ("os", "r.io/os:", "r.io/OS", "r.io/os:1 ; rm -rf /", "-r/os", f"r/os@md5:{HEX}",
                "r.io/os:1.0\n", f"r.io/os@sha256:{HEX}\n"):
        assert parse_image_ref(bad) is None, repr(bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [("checksum", f"{HEX}\n"), ("cacert", "ca.crt\n"), ("nodeselector", "gpu\n"),
     ("containerimage", "r.io/os:1\n")],
)
def test_a_trailing_newline_never_passes_a_pattern(validators, field, value) -> None:
    """`$` alone matches before a final newline; every pattern must match the whole value."""
    bad = with_spec(disk_upgrade(), **{field: value})
    if field == "containerimage":
        bad = with_spec(bad, imagetype="containerd")
    with pytest.raises(ValidationFailed) as exc:
        parse_os(bad, validators)
    assert f"spec.{field}" in {p.field for p in exc.value.problems}


@pytest.mark.parametrize(
    ("start", "end", "now", "open_"),
    [
        ("22:00:00", "04:00:00", "2026-11-24 23:30:00", True),  # W3: wraps midnight
        ("22:00:00", "04:00:00", "2026-11-25 03:59:59", True),
        ("22:00:00", "04:00:00", "2026-11-24 12:00:00", False),
        ("01:00:00", "03:00:00", "2026-11-24 02:00:00", True),
        ("01:00:00", "03:00:00", "2026-11-24 03:00:01", False),
        ("2026-11-24 22:00:00", "2026-11-25 04:00:00", "2026-11-25 01:00:00", True),
        ("2026-11-24 22:00:00", "2026-11-25 04:00:00", "2026-11-26 01:00:00", False),
    ],
)
def test_time_window_is_open(start, end, now, open_) -> None:
    window, problems = parse_timewindow({"starttime": start, "endtime": end})
    assert problems == [] and window is not None
    assert window.is_open(datetime.strptime(now, "%Y-%m-%d %H:%M:%S")) is open_
