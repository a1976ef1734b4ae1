"""Small builders for the disk tests: an OS spec for an image served by an ImageServer."""

from __future__ import annotations

from typing import Any

from kubeos.models.os import OSSpec, validate_spec


def upgrade_spec(url: str, checksum: str, version: str, **fields: Any) -> OSSpec:
    """A validated upgrade spec (imagetype disk) as the admin would write it."""
    raw: dict[str, Any] = {
        "imagetype": "disk",
        "opstype": "upgrade",
        "osversion": version,
        "maxunavailable": 1,
        "imageurl": url,
        "checksum": checksum,
        "flagSafe": False,
        "mtls": False,
    }
    raw.update(fields)
    spec, problems = validate_spec(raw)
    assert spec is not None, problems
    return spec
