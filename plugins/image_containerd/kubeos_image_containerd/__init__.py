"""kubeos plugin providing image type `containerd` (U2: crictl first, ctr fallback).

pull -> digest == checksum (D4, before anything else is written) -> `ctr images export`
-> layers applied by `kubeos.rootfs` (digest-checked, hostile-safe) -> `mke2fs -d` image in
the node's scratch space. The pulled image and every temp file are removed whatever
happens, unless the image was already on the node before.
"""

from __future__ import annotations

import logging

from kubeos.contracts import FetchedImage, NodeContext, Partition, Provides
from kubeos.errors import ImageError
from kubeos.hooks import hookimpl
from kubeos.models.os import OSSpec
from kubeos.rootfs.build import partition_image, workspace
from kubeos.rootfs.extract import RootfsExtractor
from kubeos.rootfs.oci import OCIArchive
from kubeos.rootfs.reference import expected_digest, image_ref, qualified, refuse_pinned_mismatch
from kubeos_image_containerd.runtime import Containerd

log = logging.getLogger(__name__)
IMAGE_TYPE = "containerd"


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(image_types=(IMAGE_TYPE,))


@hookimpl
def kubeos_fetch_image(spec: OSSpec, node: NodeContext, target: Partition) -> FetchedImage:
    ref = image_ref(spec)
    want = expected_digest(spec)
    refuse_pinned_mismatch(ref, want)
    name = qualified(ref)
    runtime = Containerd.for_node(node)
    had_image = runtime.digest(name) is not None
    try:
        runtime.pull(name)
        got = runtime.digest(name)
        if got is None:
            raise ImageError(
                f"containerd at {runtime.address} does not list {name} after the pull"
                f" (does {runtime.crictl or 'ctr'} talk to another runtime or namespace?)"
            )
        if got != want:
            raise ImageError(
                f"spec.checksum: image {name} has digest {got}, expected {want};"
                " nothing was written [D4]"
            )
        with workspace(node, "kubeos-containerd-") as work:
            archive = work / "image.tar"
            runtime.export(name, archive)

            def fill(extractor: RootfsExtractor) -> None:
                with OCIArchive(archive) as oci:
                    layers = oci.layers(want)
                    for n, desc in enumerate(layers, 1):
                        with oci.open_blob(desc) as blob:
                            extractor.apply_layer(blob, desc.digest)
                        node.report("extract", n, len(layers))
                archive.unlink()  # the tree is all that is needed now: free the space

            return partition_image(node, target, want, work, fill)
    finally:
        if not had_image:
            runtime.remove(name)
