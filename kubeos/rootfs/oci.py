"""Read an OCI image-layout archive (what `ctr images export` writes) down to its layers.

The chain of trust is kept unbroken: the archive's index must list the digest that was
checked against `checksum` (D4), and every blob read from the archive (index, manifest,
layers) is hashed and compared with the digest that named it. A layer is hashed while it
is being extracted; a mismatch fails the upgrade and the scratch tree is thrown away.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import platform
import re
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kubeos.errors import ImageError

log = logging.getLogger(__name__)

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
MAX_JSON_BYTES = 4 << 20
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
}


def node_platform() -> tuple[str, str]:
    """(os, architecture) in OCI terms for this machine (G1: x86_64 and arm64)."""
    machine = platform.machine().lower()
    return "linux", _GOARCH.get(machine, machine)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, raw: Any, where: str) -> Descriptor:
        if not isinstance(raw, dict):
            raise ImageError(f"{where}: descriptor is not an object")
        digest, size = raw.get("digest"), raw.get("size")
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise ImageError(f"{where}: digest {digest!r} is not sha256:<64 hex>")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ImageError(f"{where}: size {size!r} is not a byte count")
        plat = raw.get("platform")
        media = str(raw.get("mediaType", ""))
        return cls(media, digest, size, plat if isinstance(plat, dict) else {})


class _Verifying(io.RawIOBase):
    """Passes bytes through while hashing them; `finish()` checks digest and size."""

    def __init__(self, src: IO[bytes], desc: Descriptor) -> None:
        self._src, self._desc = src, desc
        self._hash = hashlib.sha256()
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._src.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._hash.update(data)
        self._count += n
        if self._count > self._desc.size:
            raise ImageError(f"blob {self._desc.digest} is longer than its {self._desc.size} bytes")
        return n

    def finish(self) -> None:
        while self.readinto(bytearray(1 << 20)):
            pass
        got = f"sha256:{self._hash.hexdigest()}"
        if self._count != self._desc.size or got != self._desc.digest:
            raise ImageError(
                f"blob {self._desc.digest} in the exported image is corrupt"
                f" ({self._count} bytes, {got})"
            )


class OCIArchive:
    """An uncompressed OCI image-layout tar on local disk, opened for random access."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by close()/__exit__
        except (tarfile.TarError, OSError) as exc:
            raise ImageError(f"{path.name}: not an OCI image archive: {exc}") from None

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> OCIArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- blobs ----------------------------------------------------------------------
    def _member(self, name: str) -> tarfile.TarInfo:
        try:
            member = self._tar.getmember(name)
        except KeyError:
            raise ImageError(f"{self.path.name}: {name} is missing from the archive") from None
        if not member.isreg():
            raise ImageError(f"{self.path.name}: {name} is not a regular file")
        return member

    def _json(self, name: str, limit: int = MAX_JSON_BYTES) -> Any:
        member = self._member(name)
        if member.size > limit:
            raise ImageError(f"{self.path.name}: {name} is larger than {limit} bytes")
        f = self._tar.extractfile(member)
        assert f is not None
        try:
            return json.loads(f.read())
        except ValueError as exc:
            raise ImageError(f"{self.path.name}: {name} is not JSON: {exc}") from None

    def _blob_json(self, desc: Descriptor) -> dict[str, Any]:
        if desc.size > MAX_JSON_BYTES:
            raise ImageError(f"{desc.digest}: {desc.size} bytes is too large for a manifest")
        with self.open_blob(desc) as f:
            data = f.read()
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise ImageError(f"{desc.digest}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ImageError(f"{desc.digest}: not a JSON object")
        return doc

    @contextmanager
    def open_blob(self, desc: Descriptor) -> Iterator[IO[bytes]]:
        """A reader of the blob's bytes; leaving the block checks its digest and size."""
        hexdigest = desc.digest.split(":", 1)[1]
        member = self._member(f"blobs/sha256/{hexdigest}")
        src = self._tar.extractfile(member)
        assert src is not None
        raw = _Verifying(src, desc)
        yield io.BufferedReader(raw, 1 << 20)
        raw.finish()

    # -- walking the image ----------------------------------------------------------
    def manifest(self, image_digest: str, plat: tuple[str, str] | None = None) -> dict[str, Any]:
        """The image manifest of `image_digest` (picking this node's platform from an index)."""
        index = self._json("index.json")
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list):
            raise ImageError(f"{self.path.name}: index.json lists no manifests")
        descs = [Descriptor.parse(e, "index.json") for e in entries]
        top = next((d for d in descs if d.digest == image_digest), None)
        if top is None:
            found = ", ".join(d.digest for d in descs) or "none"
            raise ImageError(
                f"the exported image is not {image_digest} (the verified digest); found {found}"
            )
        want_os, want_arch = plat or node_platform()
        desc = top
        for _depth in range(4):  # an index may (rarely) nest another index
            doc = self._blob_json(desc)
            media = desc.media_type or str(doc.get("mediaType", ""))
            if media in MANIFEST_TYPES or (not media and "layers" in doc):
                return doc
            if media not in INDEX_TYPES and "manifests" not in doc:
                raise ImageError(f"{desc.digest}: unsupported media type {media!r}")
            children = [Descriptor.parse(m, desc.digest) for m in doc.get("manifests") or []]
            match = [
                c
                for c in children
                if c.platform.get("os") == want_os and c.platform.get("architecture") == want_arch
            ]
            if not match:
                offered = sorted(
                    f"{c.platform.get('os')}/{c.platform.get('architecture')}" for c in children
                )
                raise ImageError(
                    f"image {image_digest} has no {want_os}/{want_arch} manifest"
                    f" (offers {', '.join(offered) or 'none'})"
                )
            desc = match[0]
        raise ImageError(f"image {image_digest}: indexes nested too deep")

    def layers(self, image_digest: str, plat: tuple[str, str] | None = None) -> list[Descriptor]:
        """The layer descriptors of the image, lowest first."""
        manifest = self.manifest(image_digest, plat)
        raw = manifest.get("layers")
        if not isinstance(raw, list) or not raw:
            raise ImageError(f"image {image_digest}: the manifest has no layers")
        return [Descriptor.parse(layer, f"{image_digest} layers") for layer in raw]
