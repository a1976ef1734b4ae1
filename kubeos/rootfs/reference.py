"""The `containerimage` field: the accepted forms, and refusing a digest mismatch early.

`kubeos.models.os.parse_image_ref` owns the grammar; this module turns its result into
the fully qualified name a runtime expects and checks what can be checked before pulling.
"""

from __future__ import annotations

from kubeos.errors import ImageError
from kubeos.models.os import ImageRef, OSSpec, normalize_digest, parse_image_ref

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"


def image_ref(spec: OSSpec) -> ImageRef:
    """The parsed `containerimage`, or ImageError naming the field (U2)."""
    text = spec.containerimage
    # parse_image_ref's `$` also matches before a final newline: refuse any white space here.
    ref = parse_image_ref(text) if text and not any(c.isspace() for c in text) else None
    if ref is None:
        raise ImageError(
            f"spec.containerimage: {spec.containerimage!r} is not repository/name,"
            " repository/name:tag or repository/name@sha256:<64 hex> [U2]"
        )
    return ref


def expected_digest(spec: OSSpec) -> str:
    """`checksum` as `sha256:<hex>`; ImageError when it is missing (D4)."""
    if not spec.checksum.strip():
        raise ImageError("spec.checksum: is required to verify a container image [D4]")
    return normalize_digest(spec.checksum)


def refuse_pinned_mismatch(ref: ImageRef, want: str) -> None:
    """A reference pinned to one digest can never match another checksum: refuse before pulling."""
    if ref.digest and normalize_digest(ref.digest) != want:
        raise ImageError(
            f"spec.checksum: {want} differs from the digest pinned in spec.containerimage"
            f" ({ref.digest}); the image would be refused after pulling [D4]"
        )


def _has_registry(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost"


def qualified_name(ref: ImageRef) -> str:
    """The repository with its registry, as containerd stores it (`kubeos/os` -> docker.io/...)."""
    first = ref.name.split("/", 1)[0]
    return ref.name if _has_registry(first) else f"{DEFAULT_REGISTRY}/{ref.name}"


def qualified(ref: ImageRef) -> str:
    """The fully qualified reference (`ctr` does not default the registry or the tag)."""
    name = qualified_name(ref)
    if ref.digest:
        return f"{name}@{ref.digest}"
    return f"{name}:{ref.tag or DEFAULT_TAG}"


def same_repository(a: str, b: str) -> bool:
    """Whether two repository names are the same once qualified (`kubeos/os` == docker.io/...)."""

    def canon(name: str) -> str:
        first = name.split("/", 1)[0]
        full = name if _has_registry(first) and "/" in name else f"{DEFAULT_REGISTRY}/{name}"
        if full.startswith(f"{DEFAULT_REGISTRY}/") and full.count("/") == 1:
            full = f"{DEFAULT_REGISTRY}/library/{full.split('/', 1)[1]}"
        return full

    return canon(a) == canon(b)
