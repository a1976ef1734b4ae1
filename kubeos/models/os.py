"""The OS custom resource: parsing and every rule that can be checked without a node.

Rule ids refer to `shared/spec/os-cr.md` and `settings.md`. All problems of one object
are collected and reported together, each naming its field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kubeos import API_VERSION
from kubeos.errors import Problem, ValidationFailed
from kubeos.models.settings import ModelValidator, SysConfigs, parse_sysconfigs
from kubeos.models.timewindow import TimeWindow, parse_timewindow

IMAGE_TYPES = ("docker", "containerd", "disk")
OPS_TYPES = ("upgrade", "config", "rollback")
EXECUTION_MODES = ("serial", "parallel")
DEFAULT_TIME_INTERVAL = 15  # I1
ALL_LABEL = "all-label"
NO_LABEL = "no-label"

# Matched with fullmatch: `$` alone would accept a trailing newline ("ca.crt\n").
_HEX64 = re.compile(r"^(sha256:)?[0-9a-fA-F]{64}$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_CERT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,254}$")
# repository/name[:tag] or repository/name@sha256:<64 hex>; the registry may carry a port.
_HOSTPART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_REG = rf"(?:{_HOSTPART}(?:\.{_HOSTPART})*(?::[0-9]{{1,5}})?)"
_COMP = r"(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)"
_IMAGE_REF = re.compile(
    rf"^(?P<name>{_REG}(?:/{_COMP})+)"
    rf"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})|@(?P<digest>sha256:[0-9a-f]{{64}}))?$"
)


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}" if self.tag else self.name


def parse_image_ref(text: str) -> ImageRef | None:
    """The three accepted forms of `containerimage`, or None for anything else."""
    m = _IMAGE_REF.fullmatch(text)
    if not m or len(text) > 512:
        return None
    return ImageRef(m["name"], m["tag"], m["digest"])


def normalize_digest(checksum: str) -> str:
    """`sha256:<hex>` in lower case, whichever way the admin wrote it."""
    c = checksum.strip().lower()
    return c if c.startswith("sha256:") else f"sha256:{c}"


@dataclass(frozen=True)
class OSSpec:
    opstype: str
    osversion: str
    maxunavailable: int
    imagetype: str = ""
    containerimage: str = ""
    imageurl: str = ""
    checksum: str = ""
    flagSafe: bool = False
    mtls: bool = False
    cacert: str = ""
    clientcert: str = ""
    clientkey: str = ""
    evictpodforce: bool = False
    sysconfigs: SysConfigs | None = None
    upgradeconfigs: SysConfigs | None = None
    #: None = unset (N2); "" = explicitly empty (N3); "all-label" (N4); else a label value.
    nodeselector: str | None = None
    timewindow: TimeWindow | None = None
    timeinterval: int = DEFAULT_TIME_INTERVAL
    executionmode: str = "parallel"

    @property
    def image_ref(self) -> ImageRef | None:
        return parse_image_ref(self.containerimage) if self.containerimage else None


@dataclass(frozen=True)
class OS:
    name: str
    namespace: str
    spec: OSSpec
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _bool(spec: Mapping[str, Any], name: str, problems: list[Problem]) -> bool:
    v = spec.get(name, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        problems.append(Problem(f"spec.{name}", "T", f"must be true or false (got {v!r})"))
        return False
    return v


def _str(spec: Mapping[str, Any], name: str, problems: list[Problem], rule: str = "T") -> str:
    v = spec.get(name, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        problems.append(Problem(f"spec.{name}", rule, f"must be a string (got {v!r})"))
        return ""
    return v


def validate_spec(
    spec: Any, validators: Mapping[str, ModelValidator] | None = None
) -> tuple[OSSpec | None, list[Problem]]:
    """Parse `spec`; return the spec (None if unusable) and every problem found."""
    if not isinstance(spec, Mapping):
        return None, [Problem("spec", "T", "must be a mapping")]
    p: list[Problem] = []
    for required in ("imagetype", "opstype", "osversion", "maxunavailable"):
        if required not in spec:
            p.append(Problem(f"spec.{required}", "R", "is required"))

    opstype = _str(spec, "opstype", p)
    if "opstype" in spec and opstype not in OPS_TYPES:
        p.append(
            Problem("spec.opstype", "O", f"must be one of {', '.join(OPS_TYPES)} (got {opstype!r})")
        )
    imagetype = _str(spec, "imagetype", p)
    if opstype == "upgrade" and imagetype not in IMAGE_TYPES:
        p.append(
            Problem(
                "spec.imagetype",
                "U2",
                f"must be one of {', '.join(IMAGE_TYPES)} for upgrade (got {imagetype!r})",
            )
        )
    elif imagetype and imagetype not in IMAGE_TYPES:
        p.append(Problem("spec.imagetype", "U2", f"must be '' or one of {', '.join(IMAGE_TYPES)}"))
    osversion = _str(spec, "osversion", p)
    if "osversion" in spec and not osversion.strip():
        p.append(Problem("spec.osversion", "C1", "must not be empty (e.g. 'KubeOS 1.0.0')"))

    maxun = spec.get("maxunavailable")
    if "maxunavailable" in spec and (
        isinstance(maxun, bool) or not isinstance(maxun, int) or maxun <= 0
    ):
        p.append(Problem("spec.maxunavailable", "M", f"must be an integer > 0 (got {maxun!r})"))
        maxun = 1
    if not isinstance(maxun, int):
        maxun = 1

    containerimage = _str(spec, "containerimage", p)
    imageurl = _str(spec, "imageurl", p)
    checksum = _str(spec, "checksum", p)
    flag_safe = _bool(spec, "flagSafe", p)
    mtls = _bool(spec, "mtls", p)
    cacert = _str(spec, "cacert", p)
    clientcert = _str(spec, "clientcert", p)
    clientkey = _str(spec, "clientkey", p)
    evict = _bool(spec, "evictpodforce", p)

    if opstype == "upgrade":
        if imagetype in ("docker", "containerd"):
            if not containerimage:
                p.append(
                    Problem("spec.containerimage", "U2", f"is required for imagetype {imagetype}")
                )
            elif parse_image_ref(containerimage) is None:
                p.append(
                    Problem(
                        "spec.containerimage",
                        "U2",
                        f"{containerimage!r} is not repository/name, repository/name:tag"
                        " or repository/name@sha256:<64 hex>",
                    )
                )
        if imagetype == "disk":
            p += _check_url(imageurl, flag_safe, mtls, cacert, clientcert, clientkey)
        if not checksum:
            p.append(
                Problem("spec.checksum", "D4", "is required for upgrade (SHA-256, 64 hex digits)")
            )
        elif not _HEX64.fullmatch(checksum):
            p.append(
                Problem(
                    "spec.checksum", "D4", "must be 64 hex digits, optionally prefixed 'sha256:'"
                )
            )

    for name, value in (("cacert", cacert), ("clientcert", clientcert), ("clientkey", clientkey)):
        if value and not _CERT_NAME.fullmatch(value):
            p.append(
                Problem(
                    f"spec.{name}",
                    "D3",
                    f"must be a file name inside /etc/KubeOS/certs (got {value!r})",
                )
            )

    validators_or_none = validators
    sysconfigs, sp = parse_sysconfigs(spec.get("sysconfigs"), "spec.sysconfigs", validators_or_none)
    p += sp
    upgradeconfigs, up = parse_sysconfigs(
        spec.get("upgradeconfigs"), "spec.upgradeconfigs", validators_or_none
    )
    p += up
    if opstype == "config" and spec.get("sysconfigs") is None:
        p.append(Problem("spec.sysconfigs", "C1", "is required for opstype config"))

    nodeselector = spec.get("nodeselector")
    if nodeselector is not None and (
        not isinstance(nodeselector, str) or not _LABEL_VALUE.fullmatch(nodeselector)
    ):
        p.append(
            Problem(
                "spec.nodeselector",
                "N1",
                "must be a label value (<= 63 chars: letters, digits, '-', '_', '.'),"
                f" got {nodeselector!r}",
            )
        )
        nodeselector = None

    window, wp = parse_timewindow(spec.get("timewindow"))
    p += wp
    interval = spec.get("timeinterval", DEFAULT_TIME_INTERVAL)
    if interval is None:
        interval = DEFAULT_TIME_INTERVAL
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
        p.append(
            Problem(
                "spec.timeinterval", "I1", f"must be an integer >= 0 seconds (got {interval!r})"
            )
        )
        interval = DEFAULT_TIME_INTERVAL
    mode = spec.get("executionmode") or "parallel"
    if mode not in EXECUTION_MODES:
        p.append(Problem("spec.executionmode", "E", f"must be serial or parallel (got {mode!r})"))
        mode = "parallel"

    if p:
        return None, p
    return (
        OSSpec(
            opstype=opstype,
            osversion=osversion,
            maxunavailable=maxun,
            imagetype=imagetype,
            containerimage=containerimage,
            imageurl=imageurl,
            checksum=checksum,
            flagSafe=flag_safe,
            mtls=mtls,
            cacert=cacert,
            clientcert=clientcert,
            clientkey=clientkey,
            evictpodforce=evict,
            sysconfigs=sysconfigs if spec.get("sysconfigs") is not None else None,
            upgradeconfigs=upgradeconfigs if spec.get("upgradeconfigs") is not None else None,
            nodeselector=nodeselector,
            timewindow=window,
            timeinterval=interval,
            executionmode=mode,
        ),
        [],
    )


def _check_url(
    url: str, flag_safe: bool, mtls: bool, cacert: str, clientcert: str, clientkey: str
) -> list[Problem]:
    p: list[Problem] = []
    if not url:
        return [Problem("spec.imageurl", "D1", "is required for imagetype disk")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return [
            Problem("spec.imageurl", "D1", f"must start with http:// or https:// (got {url!r})")
        ]
    if not parts.hostname:
        return [Problem("spec.imageurl", "D1", f"has no host (got {url!r})")]
    if any(ch.isspace() for ch in url):
        return [Problem("spec.imageurl", "D1", "must not contain white space")]
    if parts.scheme == "http" and not flag_safe:
        p.append(
            Problem(
                "spec.imageurl", "D2", "http address is unsafe: use https or set flagSafe: true"
            )
        )
    if parts.scheme == "https":
        if not cacert:
            p.append(Problem("spec.cacert", "D3", "is required when imageurl is https"))
        if mtls:
            for name, value in (("clientcert", clientcert), ("clientkey", clientkey)):
                if not value:
                    p.append(Problem(f"spec.{name}", "D3", "is required when mtls is true"))
    return p


def parse_os(doc: Any, validators: Mapping[str, ModelValidator] | None = None) -> OS:
    """Parse a whole OS object; raise ValidationFailed listing every problem."""
    problems: list[Problem] = []
    if not isinstance(doc, Mapping):
        raise ValidationFailed([Problem("", "T", "an OS object must be a mapping")], "OS")
    if doc.get("apiVersion") != API_VERSION:
        problems.append(Problem("apiVersion", "T", f"must be {API_VERSION}"))
    if doc.get("kind") != "OS":
        problems.append(Problem("kind", "T", "must be OS"))
    meta = doc.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        problems.append(Problem("metadata.name", "T", "is required"))
        name = ""
    namespace = (meta.get("namespace") if isinstance(meta, Mapping) else None) or "default"
    spec, sp = validate_spec(doc.get("spec"), validators)
    problems += sp
    title = f"OS {namespace}/{name}" if name else "OS"
    if problems or spec is None:
        raise ValidationFailed(problems, title)
    return OS(name=name, namespace=str(namespace), spec=spec, raw=doc)
