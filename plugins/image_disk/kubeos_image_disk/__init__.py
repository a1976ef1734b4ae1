"""kubeos plugin providing image type `disk`."""

from __future__ import annotations

from kubeos.contracts import FetchedImage, NodeContext, Partition, Provides
from kubeos.hooks import hookimpl
from kubeos.models.os import OSSpec

IMAGE_TYPE = "disk"


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(image_types=(IMAGE_TYPE,))


@hookimpl
def kubeos_fetch_image(spec: OSSpec, node: NodeContext, target: Partition) -> FetchedImage:
    raise NotImplementedError(f"image type {IMAGE_TYPE!r}: fetching is not built yet")
