"""Every sample OS passes the CRD (schema + CEL) and the Python models; broken variants are
refused by both, naming the same field, so `kubectl apply` and `kubeos-agent validate`
agree on what is wrong (spec/os-cr.md rule ids in the table)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeos.errors import ValidationFailed
from kubeos.models.os import parse_os

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "samples"
SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))

#: The user guide's cases (issue 7 item 4) and the sample showing each.
USER_GUIDE_CASES = {
    "upgrade from a disk image (https, mTLS)": "upgrade-disk.yaml",
    "upgrade from a docker image": "upgrade-docker.yaml",
    "upgrade from a containerd image": "upgrade-containerd.yaml",
    "upgrade and configure together": "upgrade-with-config.yaml",
    "nodeselector + timewindow + timeinterval + serial": "upgrade-containerd-selector.yaml",
    "configure only": "config.yaml",
    "rollback to the previous partition": "rollback.yaml",
    "configuration rollback": "config-rollback.yaml",
    "rollback by upgrading to an older image": "rollback-by-upgrade.yaml",
}


def load(name: str) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d is not None]
    return doc


def model_fields(doc: Any, validators: Any) -> set[str]:
    try:
        parse_os(doc, validators)
    except ValidationFailed as exc:
        return {p.field for p in exc.problems}
    return set()


def test_every_user_guide_case_has_a_sample() -> None:
    present = {p.name for p in SAMPLE_FILES}
    missing = {case: f for case, f in USER_GUIDE_CASES.items() if f not in present}
    assert not missing
    assert present == set(USER_GUIDE_CASES.values()), "a sample no case names"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_sample_is_valid_for_crd_and_models(path: Path, os_crd: Any, model_validators) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1, "one OS per sample file"
    doc = docs[0]
    assert [str(e) for e in os_crd.errors(doc)] == []
    os_ = parse_os(doc, model_validators)
    assert os_.spec.opstype == doc["spec"]["opstype"]


Mutation = Callable[[dict[str, Any]], None]


def setter(**fields: Any) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        spec.update(fields)

    return mutate


def dropper(*names: str) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        for n in names:
            spec.pop(n, None)

    return mutate


def content(i: int, j: int, **fields: Any) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        spec["sysconfigs"]["configs"][i]["contents"][j].update(fields)

    return mutate


def config(i: int, **fields: Any) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        spec["sysconfigs"]["configs"][i].update(fields)

    return mutate


def window(start: str | None, end: str | None) -> Mutation:
    def mutate(spec: dict[str, Any]) -> None:
        spec["timewindow"] = {
            k: v for k, v in (("starttime", start), ("endtime", end)) if v is not None
        }

    return mutate


HTTPS_MTLS = "upgrade-disk.yaml"
DOCKER = "upgrade-docker.yaml"
CONTAINERD = "upgrade-containerd-selector.yaml"
CONFIG = "config.yaml"
DIGEST = "sha256:" + "ab" * 32

# (rule, sample, mutation, the field both must name)
BROKEN: list[tuple[str, str, Mutation, str]] = [
    ("R", DOCKER, dropper("opstype"), "spec.opstype"),
    ("R", DOCKER, dropper("osversion"), "spec.osversion"),
    ("R", DOCKER, dropper("maxunavailable"), "spec.maxunavailable"),
    ("R", DOCKER, dropper("imagetype"), "spec.imagetype"),
    ("O", DOCKER, setter(opstype="reboot"), "spec.opstype"),
    ("U2", DOCKER, setter(imagetype="iso"), "spec.imagetype"),
    ("U2", DOCKER, setter(imagetype=""), "spec.imagetype"),
    ("U2", CONFIG, setter(imagetype="rpm"), "spec.imagetype"),
    ("C1", DOCKER, setter(osversion=""), "spec.osversion"),
    ("C1", DOCKER, setter(osversion="   "), "spec.osversion"),
    ("M", DOCKER, setter(maxunavailable=0), "spec.maxunavailable"),
    ("M", DOCKER, setter(maxunavailable=-2), "spec.maxunavailable"),
    ("M", DOCKER, setter(maxunavailable="2"), "spec.maxunavailable"),
    ("M", DOCKER, setter(maxunavailable=True), "spec.maxunavailable"),
    ("U2", DOCKER, setter(containerimage=""), "spec.containerimage"),
    ("U2", CONTAINERD, dropper("containerimage"), "spec.containerimage"),
    ("U2", DOCKER, setter(containerimage="os:1.0.1"), "spec.containerimage"),
    ("U2", DOCKER, setter(containerimage="Registry.example/KubeOS/os"), "spec.containerimage"),
    ("U2", DOCKER, setter(containerimage="reg.example/os:bad tag"), "spec.containerimage"),
    ("U2", DOCKER, setter(containerimage="reg.example/os@sha256:abc"), "spec.containerimage"),
    ("U2", DOCKER, setter(containerimage="reg.example/os:1@" + DIGEST), "spec.containerimage"),
    ("U2", CONTAINERD, setter(containerimage="https://reg.example/os"), "spec.containerimage"),
    ("D1", HTTPS_MTLS, setter(imageurl=""), "spec.imageurl"),
    ("D1", HTTPS_MTLS, dropper("imageurl"), "spec.imageurl"),
    ("D1", HTTPS_MTLS, setter(imageurl="ftp://images.example/u.img"), "spec.imageurl"),
    ("D1", HTTPS_MTLS, setter(imageurl="images.example/u.img"), "spec.imageurl"),
    ("D1", HTTPS_MTLS, setter(imageurl="https:///u.img"), "spec.imageurl"),
    ("D1", HTTPS_MTLS, setter(imageurl="https://images.example/a b.img"), "spec.imageurl"),
    ("D2", HTTPS_MTLS, setter(imageurl="http://images.example/u.img"), "spec.imageurl"),
    ("D2", HTTPS_MTLS, setter(imageurl="HTTP://images.example/u.img"), "spec.imageurl"),
    ("D3", HTTPS_MTLS, setter(cacert=""), "spec.cacert"),
    ("D3", HTTPS_MTLS, dropper("cacert"), "spec.cacert"),
    ("D3", HTTPS_MTLS, setter(clientcert=""), "spec.clientcert"),
    ("D3", HTTPS_MTLS, dropper("clientkey"), "spec.clientkey"),
    ("D3", HTTPS_MTLS, setter(cacert="../../etc/shadow"), "spec.cacert"),
    ("D3", DOCKER, setter(clientkey="/etc/KubeOS/certs/client.key"), "spec.clientkey"),
    ("D4", DOCKER, setter(checksum=""), "spec.checksum"),
    ("D4", HTTPS_MTLS, dropper("checksum"), "spec.checksum"),
    ("D4", HTTPS_MTLS, setter(checksum="abc123"), "spec.checksum"),
    ("D4", DOCKER, setter(checksum="sha512:" + "ab" * 32), "spec.checksum"),
    ("T", HTTPS_MTLS, setter(flagSafe="yes"), "spec.flagSafe"),
    ("T", HTTPS_MTLS, setter(mtls=1), "spec.mtls"),
    ("T", DOCKER, setter(evictpodforce="true"), "spec.evictpodforce"),
    ("C1", CONFIG, dropper("sysconfigs"), "spec.sysconfigs"),
    ("N1", DOCKER, setter(nodeselector="bad label!"), "spec.nodeselector"),
    ("N1", DOCKER, setter(nodeselector="-edge"), "spec.nodeselector"),
    ("N1", DOCKER, setter(nodeselector="x" * 64), "spec.nodeselector"),
    ("W1", DOCKER, window("22:00:00", None), "spec.timewindow.endtime"),
    ("W1", DOCKER, window("", "04:00:00"), "spec.timewindow.starttime"),
    ("W2", DOCKER, window("25:00:00", "04:00:00"), "spec.timewindow.starttime"),
    ("W2", DOCKER, window("22:00:00", "4 am"), "spec.timewindow.endtime"),
    ("W2", DOCKER, window("2:00:00", "04:00:00"), "spec.timewindow.starttime"),  # HH:MM:SS
    (
        "W2",
        DOCKER,
        window("2026-13-01 00:00:00", "2026-12-02 00:00:00"),
        "spec.timewindow.starttime",
    ),
    ("W2", DOCKER, window("2026-12-01 22:00:00", "04:00:00"), "spec.timewindow"),
    ("W2", DOCKER, window("2026-12-02 00:00:00", "2026-12-01 00:00:00"), "spec.timewindow"),
    ("I1", DOCKER, setter(timeinterval=-1), "spec.timeinterval"),
    ("I1", DOCKER, setter(timeinterval="30"), "spec.timeinterval"),
    ("E", DOCKER, setter(executionmode="random"), "spec.executionmode"),
    ("S1", CONFIG, config(0, model=""), "spec.sysconfigs.configs[0].model"),
    ("S2", CONFIG, content(0, 0, key=""), "spec.sysconfigs.configs[0].contents[0].key"),
    ("S2", CONFIG, content(0, 0, key="a=b"), "spec.sysconfigs.configs[0].contents[0].key"),
    ("S2", CONFIG, content(0, 0, key="a\nb"), "spec.sysconfigs.configs[0].contents[0].key"),
    ("S3", CONFIG, content(0, 0, value="1\n2"), "spec.sysconfigs.configs[0].contents[0].value"),
    (
        "S4",
        CONFIG,
        content(0, 1, operation="remove"),
        "spec.sysconfigs.configs[0].contents[1].operation",
    ),
    (
        "P2",
        CONFIG,
        config(1, configpath="etc/persist.conf"),
        "spec.sysconfigs.configs[1].configpath",
    ),
    (
        "P2",
        CONFIG,
        config(1, configpath="/etc/../root/x.conf"),
        "spec.sysconfigs.configs[1].configpath",
    ),
    ("P2", CONFIG, config(1, configpath=""), "spec.sysconfigs.configs[1].configpath"),
]


@pytest.mark.parametrize(
    ("rule", "sample", "mutate", "field"),
    BROKEN,
    ids=[f"{r}-{f}-{i}" for i, (r, _, _, f) in enumerate(BROKEN)],
)
def test_broken_variant_is_refused_by_crd_and_models_naming_the_field(
    rule: str, sample: str, mutate: Mutation, field: str, os_crd: Any, model_validators: Any
) -> None:
    doc = copy.deepcopy(load(sample))
    mutate(doc["spec"])
    crd_says = {e.field for e in os_crd.errors(doc)}
    models_say = model_fields(doc, model_validators)
    assert field in crd_says, f"CRD: {crd_says or 'accepted'}"
    assert field in models_say, f"models: {models_say or 'accepted'}"


# Fields the spec says are ignored for an operation are not refused for it by either side.
IGNORED: list[tuple[str, str, Mutation]] = [
    ("U2", CONFIG, setter(containerimage="not an image!")),
    ("D1", DOCKER, setter(imageurl="ftp://ignored.example/x")),
    ("D2", "rollback.yaml", setter(imageurl="http://images.example/u.img")),
    ("D3", DOCKER, setter(imageurl="https://images.example/u.img", cacert="")),
    ("D4", CONFIG, setter(checksum="not a checksum")),
    ("U2", "rollback.yaml", setter(imagetype="")),
    ("W1", DOCKER, window("", "")),
    ("N3", DOCKER, setter(nodeselector="")),
    ("I2", DOCKER, setter(timeinterval=0)),
    ("E1", DOCKER, setter(executionmode="")),
]


@pytest.mark.parametrize(
    ("rule", "sample", "mutate"), IGNORED, ids=[f"{r}-{i}" for i, (r, *_) in enumerate(IGNORED)]
)
def test_ignored_or_allowed_values_pass_both(
    rule: str, sample: str, mutate: Mutation, os_crd: Any, model_validators: Any
) -> None:
    doc = copy.deepcopy(load(sample))
    mutate(doc["spec"])
    assert [str(e) for e in os_crd.errors(doc)] == []
    assert model_fields(doc, model_validators) == set()


# Where the two sides differ on purpose; each difference is stated here so it cannot grow
# unnoticed.
def test_models_alone_know_installed_settings_models_and_their_rules(
    os_crd: Any, model_validators: Any
) -> None:
    """S1 and model rules (K2, B5 ...) come from plugins: no CRD can list them."""
    doc = copy.deepcopy(load(CONFIG))
    doc["spec"]["sysconfigs"]["configs"][0]["model"] = "acme.unknown"
    doc["spec"]["sysconfigs"]["configs"][1]["contents"][0]["value"] = ""  # S3 for sysctl
    assert os_crd.errors(doc) == []
    assert model_fields(doc, model_validators) == {
        "spec.sysconfigs.configs[0].model",
        "spec.sysconfigs.configs[1].contents[0].value",
    }


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (setter(flagsafe=True), "spec.flagsafe"),  # typo of flagSafe: would be pruned
        (lambda s: s["sysconfigs"].update(version=2), "spec.sysconfigs.version"),
        (content(1, 0, value=16384), "spec.sysconfigs.configs[1].contents[0].value"),
    ],
    ids=["unknown-field", "int-version", "int-value"],
)
def test_crd_is_stricter_than_models_where_yaml_typing_would_surprise(
    mutate: Mutation, field: str, os_crd: Any, model_validators: Any
) -> None:
    """An unknown field (a typo) and unquoted numbers are refused at apply time; the models
    accept numbers (they arrive as YAML scalars) and ignore unknown fields."""
    doc = copy.deepcopy(load(CONFIG))
    mutate(doc["spec"])
    assert field in {e.field for e in os_crd.errors(doc)}
    assert model_fields(doc, model_validators) == set()


# -- differential: the CRD and the models agree value by value -------------------------------

HEX = "0123456789abcdef" * 4
CORPUS: dict[str, tuple[str, list[Any]]] = {
    "containerimage": (
        DOCKER,
        [
            "reg.example/os",
            "reg.example/os:1.0.1",
            "reg.example:5000/kubeos/os:v1",
            f"reg.example/os@sha256:{HEX}",
            "localhost/os",
            "127.0.0.1:5000/os:1",
            "os",
            "reg.example/OS",
            "reg.example/os:",
            "reg.example/os:-bad",
            f"reg.example/os@{HEX}",
            f"reg.example/os@sha256:{HEX[:-1]}",
            "reg.example/a__b",
            "reg.example/a___b",
            "reg.example/a--b",
            "reg.example/os:1\n",
            "reg.example/os\n",
            "-reg.example/os",
            "reg-.example/os",
            "reg.example/os/",
            "reg.example//os",
            "reg.example/os:" + "a" * 128,
            "reg.example/os:" + "a" * 129,
            "reg.example/" + "a" * 500,
            " reg.example/os",
        ],
    ),
    "checksum": (
        DOCKER,
        [
            HEX,
            f"sha256:{HEX}",
            f"SHA256:{HEX}",
            HEX.upper(),
            HEX[:-1],
            HEX + "0",
            HEX + "\n",
            f"sha256:{HEX}\n",
            f"sha512:{HEX}",
            "sha256:",
        ],
    ),
    "imageurl": (
        HTTPS_MTLS,
        [
            "https://h/x",
            "https://h",
            "https://h:8443/x?y#z",
            "https://user@h/x",
            "https://[::1]:8443/x",
            "https://h/x y",
            "https://h/x\n",
            "https:/h/x",
            "https://",
            "HTTPS://h/x",
            "hTTps://h/x",
            "ftp://h/x",
            "https://:80/x",
            "https://h\t/x",
            "https://images.example.internal/kubeos/update.img",
            "//h/x",
            "https://h/é",
        ],
    ),
    "nodeselector": (
        DOCKER,
        [
            "",
            "a",
            "a-b",
            "a_b.c",
            "-a",
            "a-",
            "x" * 63,
            "x" * 64,
            "a b",
            "A1",
            "all-label",
            "no-label",
            "a\n",
        ],
    ),
    "cacert": (
        HTTPS_MTLS,
        [
            "ca.crt",
            "../ca",
            "/etc/ca",
            ".hidden",
            "_x",
            "a b",
            "ca@1+2",
            "x" * 255,
            "x" * 256,
            "ca.crt\n",
            "-ca",
        ],
    ),
    "timewindow": (
        DOCKER,
        [
            {"starttime": "22:00:00", "endtime": "04:00:00"},
            {"starttime": "23:59:59", "endtime": "00:00:00"},
            {"starttime": "24:00:00", "endtime": "01:00:00"},
            {"starttime": "12:60:00", "endtime": "13:00:00"},
            {"starttime": "2026-12-01 00:00:00", "endtime": "2026-12-01 00:00:00"},
            {"starttime": "2026-12-01 00:00:01", "endtime": "2026-12-01 00:00:00"},
            {"starttime": "2026-12-01T00:00:00", "endtime": "2026-12-02T00:00:00"},
            {"starttime": "22:00:00\n", "endtime": "04:00:00"},
            {"starttime": "", "endtime": ""},
            {},
        ],
    ),
}


def _verdicts(field: str, sample: str, value: Any, os_crd: Any, validators: Any) -> tuple:
    doc = copy.deepcopy(load(sample))
    doc["spec"][field] = value
    where = f"spec.{field}"
    crd = any(e.field.startswith(where) for e in os_crd.errors(doc))
    models = any(f.startswith(where) for f in model_fields(doc, validators))
    return crd, models


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f, (_, values) in CORPUS.items() for v in values],
    ids=[f"{f}-{i}" for f, (_, values) in CORPUS.items() for i in range(len(values))],
)
def test_crd_and_models_agree_on_each_value(
    field: str, value: Any, os_crd: Any, model_validators: Any
) -> None:
    sample = CORPUS[field][0]
    crd, models = _verdicts(field, sample, value, os_crd, model_validators)
    assert crd == models, f"{field}={value!r}: CRD refuses={crd}, models refuse={models}"


def test_calendar_dates_are_checked_by_the_models_only(os_crd: Any, model_validators: Any) -> None:
    """A pattern cannot know month lengths: 2026-02-30 passes the CRD, not the models (W2)."""
    window = {"starttime": "2026-02-30 00:00:00", "endtime": "2026-03-01 00:00:00"}
    crd, models = _verdicts("timewindow", DOCKER, window, os_crd, model_validators)
    assert (crd, models) == (False, True)
