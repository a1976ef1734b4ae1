"""kubeos plugin providing image type `docker` (U2: pulled by the docker engine).

pull -> digest == checksum (D4, before anything else is written) -> `docker create` from
exactly that digest + `docker export` -> the flat tree applied by `kubeos.rootfs`
(hostile-safe, sized to the partition) -> `mke2fs -d` image in the node's scratch space.
The container, the pulled image and every temp file are removed whatever happens, unless
the image was already on the node before.
"""

from __future__ import annotations

import contextlib
import logging

from kubeos.contracts import FetchedImage, NodeContext, Partition, Provides
from kubeos.errors import ImageError
from kubeos.hooks import hookimpl
from kubeos.models.os import OSSpec
from kubeos.rootfs.build import partition_image, workspace
from kubeos.rootfs.extract import RootfsExtractor
from kubeos.rootfs.reference import expected_digest, image_ref, refuse_pinned_mismatch
from kubeos_image_docker.engine import DockerEngine

log = logging.getLogger(__name__)
IMAGE_TYPE = "docker"
#: The marker file every docker container gets; it was never part of the image.
DOCKER_MARKER = ".dockerenv"


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(image_types=(IMAGE_TYPE,))


@hookimpl
def kubeos_fetch_image(spec: OSSpec, node: NodeContext, target: Partition) -> FetchedImage:
    ref = image_ref(spec)
    want = expected_digest(spec)
    refuse_pinned_mismatch(ref, want)
    engine = DockerEngine.for_node(node)
    wanted = str(ref)
    had_image = engine.has_image(wanted)
    try:
        got = engine.pull(wanted, ref.name)
        if got != want:
            raise ImageError(
                f"spec.checksum: image {wanted} has digest {got}, expected {want};"
                " nothing was written [D4]"
            )
        with workspace(node, "kubeos-docker-") as work:
            archive = work / "rootfs.tar"
            # From the digest, not the tag: the tag may have moved since the pull.
            engine.export_rootfs(f"{ref.name}@{want}", archive)

            def fill(extractor: RootfsExtractor) -> None:
                with archive.open("rb") as flat:
                    extractor.apply_layer(flat, "docker export", whiteouts=False)
                marker = extractor.root / DOCKER_MARKER
                if marker.is_file() and not marker.is_symlink():
                    with contextlib.suppress(FileNotFoundError):
                        marker.unlink()
                archive.unlink()  # the tree is all that is needed now: free the space

            return partition_image(node, target, want, work, fill)
    finally:
        if not had_image:
            engine.remove_image(wanted)
