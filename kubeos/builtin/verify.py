"""D4: the fetched image must match the checksum the admin wrote in the OS."""

from __future__ import annotations

from kubeos.contracts import FetchedImage, NodeContext
from kubeos.errors import ImageError
from kubeos.hooks import hookimpl
from kubeos.models.os import OSSpec, normalize_digest


@hookimpl
def kubeos_verify_image(spec: OSSpec, image: FetchedImage, node: NodeContext) -> None:
    want = normalize_digest(spec.checksum)
    got = normalize_digest(image.digest) if image.digest else "(nothing measured)"
    if got != want:
        raise ImageError(f"spec.checksum: image digest {got} does not match {want} [D4]")
