"""Build a small OCI image by hand: layers, config, manifest, and an image-layout tar.

The manifest digest computed here is what a registry serves for the image, so tests can
write it into `checksum` before anything is pushed or pulled.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kubeos.rootfs.oci import node_platform
from tests.container.tarcraft import Member, layer_bytes

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class OCIImage:
    blobs: dict[str, bytes]
    manifest_digest: str
    manifest_size: int

    def layout_tar(self, path: Path, name: str) -> Path:
        """An OCI image layout as `ctr images import` reads it, named `name`."""
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": MANIFEST,
                    "digest": self.manifest_digest,
                    "size": self.manifest_size,
                    "annotations": {"io.containerd.image.name": name},
                }
            ],
        }
        files = {
            "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
            "index.json": json.dumps(index).encode(),
        }
        for digest, data in self.blobs.items():
            files[f"blobs/sha256/{digest.split(':')[1]}"] = data
        with tarfile.open(path, "w") as tar:
            for fname, data in files.items():
                info = tarfile.TarInfo(fname)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path


def build_image(layers: Iterable[list[Member]]) -> OCIImage:
    blobs: dict[str, bytes] = {}
    descs, diff_ids = [], []
    for members in layers:
        raw = layer_bytes(members)
        gz = gzip.compress(raw, mtime=0)
        blobs[_digest(gz)] = gz
        descs.append({"mediaType": LAYER, "digest": _digest(gz), "size": len(gz)})
        diff_ids.append(_digest(raw))
    os_name, arch = node_platform()
    config = json.dumps(
        {
            "architecture": arch,
            "os": os_name,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    blobs[_digest(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": descs,
        }
    ).encode()
    blobs[_digest(manifest)] = manifest
    return OCIImage(blobs, _digest(manifest), len(manifest))
