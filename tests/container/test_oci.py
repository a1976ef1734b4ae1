"""Reading an OCI image-layout archive: digest chain, platform choice, corrupt blobs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from kubeos.errors import ImageError
from kubeos.rootfs.extract import RootfsExtractor
from kubeos.rootfs.oci import OCIArchive, node_platform
from tests.container.ociimage import MANIFEST, OCIImage, build_image
from tests.container.tarcraft import layer_bytes, reg

INDEX = "application/vnd.oci.image.index.v1+json"


def image() -> OCIImage:
    return build_image([[reg("etc/os-release", b"PRETTY_NAME=one\n")], [reg("etc/two", b"2")]])


def rewrite(src: Path, dst: Path, change: dict[str, bytes]) -> Path:
    """Copy an archive, replacing some members' contents."""
    with tarfile.open(src) as old, tarfile.open(dst, "w") as new:
        for member in old.getmembers():
            data = change.get(member.name)
            if data is None:
                f = old.extractfile(member)
                data = f.read() if f else b""
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return dst


def test_layers_in_order_and_verified(tmp_path: Path) -> None:
    img = image()
    archive = img.layout_tar(tmp_path / "img.tar", "reg.io/a/b:1")
    root = tmp_path / "rootfs"
    ex = RootfsExtractor(root, 1 << 20)
    with OCIArchive(archive) as oci:
        layers = oci.layers(img.manifest_digest)
        assert len(layers) == 2
        for desc in layers:
            with oci.open_blob(desc) as blob:
                ex.apply_layer(blob, desc.digest)
    assert (root / "etc/os-release").read_bytes() == b"PRETTY_NAME=one\n"
    assert (root / "etc/two").read_bytes() == b"2"


def test_archive_of_another_image_is_refused(tmp_path: Path) -> None:
    archive = image().layout_tar(tmp_path / "img.tar", "reg.io/a/b:1")
    with OCIArchive(archive) as oci, pytest.raises(ImageError, match="verified digest"):
        oci.layers("sha256:" + "0" * 64)


def test_corrupt_layer_is_detected(tmp_path: Path) -> None:
    img = image()
    archive = img.layout_tar(tmp_path / "img.tar", "reg.io/a/b:1")
    with OCIArchive(archive) as oci:
        first = oci.layers(img.manifest_digest)[0]
    name = f"blobs/sha256/{first.digest.split(':')[1]}"
    # A well-formed layer with other content: only the digest (and size) tell.
    evil = gzip.compress(layer_bytes([reg("etc/os-release", b"PRETTY_NAME=EVIL\n")]), mtime=0)
    tampered = rewrite(archive, tmp_path / "bad.tar", {name: evil})
    ex = RootfsExtractor(tmp_path / "rootfs", 1 << 20)
    with (
        OCIArchive(tampered) as oci,
        pytest.raises(ImageError, match=r"corrupt|longer than"),
        oci.open_blob(first) as blob,
    ):
        ex.apply_layer(blob, first.digest)


def test_platform_is_chosen_from_an_index(tmp_path: Path) -> None:
    img = image()
    os_name, arch = node_platform()
    other = "s390x" if arch != "s390x" else "riscv64"

    def with_index(platforms: list[str]) -> tuple[Path, str]:
        entries = [
            {
                "mediaType": MANIFEST,
                "digest": img.manifest_digest if a == arch else "sha256:" + "1" * 64,
                "size": img.manifest_size,
                "platform": {"os": os_name, "architecture": a},
            }
            for a in platforms
        ]
        index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
        digest = f"sha256:{hashlib.sha256(index).hexdigest()}"
        blobs = dict(img.blobs)
        blobs[digest] = index
        layout = OCIImage(blobs, digest, len(index))
        path = layout.layout_tar(tmp_path / f"idx-{len(platforms)}.tar", "reg.io/a/b:1")
        # the top-level entry is an index: fix its media type
        doc = {
            "schemaVersion": 2,
            "manifests": [{"mediaType": INDEX, "digest": digest, "size": len(index)}],
        }
        return rewrite(
            path, tmp_path / f"fixed-{len(platforms)}.tar", {"index.json": json.dumps(doc).encode()}
        ), digest

    archive, digest = with_index([other, arch])
    with OCIArchive(archive) as oci:
        assert len(oci.layers(digest)) == 2
    archive, digest = with_index([other])
    with OCIArchive(archive) as oci, pytest.raises(ImageError, match=f"no {os_name}/{arch}"):
        oci.layers(digest)
