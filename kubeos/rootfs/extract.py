"""Apply image layers (tar streams) onto a directory, treating every entry as hostile.

Why not `tarfile.extractall`, not even with `filter="data"`: an OS root needs what the
data filter strips (setuid bits, owners, /dev/console), and the filter knows nothing about
OCI layers (whiteouts, opaque directories, several layers over one tree, a size budget).
The rules here:

- Member names are archive paths: absolute names and `..` components are refused.
- Parent directories are resolved *inside* the root: a symlink met on the way (from this
  or an earlier layer) is followed as if the root were `/` (absolute targets restart at
  the root, `..` stops at it), so `etc -> /` or `x -> ../../..` can never lead a later
  entry out. The last component is never followed: an existing symlink there is replaced.
- Symlinks are stored as they are: they only mean something once the tree is the root.
- Hard links must name an existing non-directory inside the root (resolved the same way).
- Device nodes: only the few character devices an early root needs, only in /dev; other
  devices are skipped with a warning (so is a mknod the kernel refuses).
- Whiteouts (`.wh.<name>`) remove `<name>` of lower layers; `.wh..wh..opq` empties its
  directory of lower-layer entries; other `.wh..wh.*` (aufs bookkeeping) are skipped.
  Neither is ever written out.
- A budget on data (4 KiB blocks of regular files alive in the tree) and on entries:
  an image that would not fit the partition stops early instead of filling the scratch disk.

The target must be a fresh private directory (mode 0700 parent) that nothing else writes
to while layers are applied; the checks are path based and rely on that.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kubeos.errors import ImageError

log = logging.getLogger(__name__)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
BLOCK = 4096
MAX_SYMLINK_HOPS = 40
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
#: (major, minor) of the character devices a root filesystem may carry in /dev.
ALLOWED_CHAR_DEVICES = {
    (1, 3): "null",
    (1, 5): "zero",
    (1, 7): "full",
    (1, 8): "random",
    (1, 9): "urandom",
    (5, 0): "tty",
    (5, 1): "console",
    (5, 2): "ptmx",
}
XATTR_PREFIX = "SCHILY.xattr."
XATTR_NAMESPACES = ("security.", "trusted.", "user.")


class UnsafeEntry(ImageError):
    """A layer entry that would escape the root or is malformed: the image is refused."""


class _Missing(UnsafeEntry):
    """A path an entry refers to is not in the tree."""


class TooLarge(ImageError):
    """The image does not fit its budget (the target partition)."""


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


@dataclass
class Usage:
    bytes: int = 0
    entries: int = 0
    skipped: list[str] = field(default_factory=list)


class RootfsExtractor:
    """Applies layers, lowest first, onto `root`; one instance per root filesystem."""

    def __init__(self, root: Path, max_bytes: int, max_entries: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.max_entries = max_entries if max_entries is not None else max(max_bytes // 2048, 64)
        self.usage = Usage()
        self._as_root = os.geteuid() == 0
        self._layer_paths: set[str] = set()
        self._dir_attrs: list[tuple[Path, tarfile.TarInfo]] = []
        self.root.mkdir(mode=0o755, exist_ok=True)
        os.chmod(self.root, 0o755)  # noqa: S103 - an OS root directory is 0755
        self.root = Path(os.path.realpath(self.root))

    # -- public --------------------------------------------------------------------------
    def apply_layer(self, stream: IO[bytes], name: str, whiteouts: bool = True) -> None:
        """Apply one layer tar (plain, gzip, bzip2 or xz) read from `stream`.

        `whiteouts=False` is for a flat filesystem export, where a `.wh.` name cannot be
        legitimate: such entries are skipped instead of deleting anything.
        """
        buffered: IO[bytes] = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
        if buffered.peek(4)[:4] == ZSTD_MAGIC:  # type: ignore[attr-defined]
            raise ImageError(f"layer {name}: zstd-compressed layers are not supported")
        self._layer_paths = set()
        self._dir_attrs = []
        try:
            with tarfile.open(fileobj=buffered, mode="r|*") as tar:
                for member in tar:
                    self._apply_member(tar, member, name, whiteouts)
        except tarfile.TarError as exc:
            raise ImageError(f"layer {name}: not a readable tar archive: {exc}") from None
        except OSError as exc:  # our own refusals (ImageError) pass through untouched
            raise ImageError(f"layer {name}: {exc}") from None
        # Directory times last: writing into a directory changes its mtime.
        for path, member in reversed(self._dir_attrs):
            # A later entry may have swapped the directory, or one above it, for a symlink.
            if os.path.realpath(path) == str(path) and path.is_dir():
                self._set_attrs(path, member)
        log.info(
            "applied layer %s: rootfs now %d bytes in %d entries",
            name,
            self.usage.bytes,
            self.usage.entries,
        )

    # -- one entry -----------------------------------------------------------------------
    def _apply_member(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, layer: str, whiteouts: bool
    ) -> None:
        parts = self._parts(member.name, layer)
        self.usage.entries += 1
        if self.usage.entries > self.max_entries:
            raise TooLarge(
                f"layer {layer}: more than {self.max_entries} entries: the image does not fit"
                " the target partition"
            )
        if not parts:  # the archive's "./": attributes of the root directory itself
            if member.isdir():
                self._dir_attrs.append((self.root, member))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT):
            if not whiteouts:
                self._skip(member.name, "whiteout name in a flat export")
                return
            self._whiteout(parts, layer)
            return
        parent = self._resolve_dir(parts[:-1], create=True, layer=layer)
        dest = parent / base
        rel = self._rel(dest)
        self._layer_paths.add(rel)
        if member.isdir():
            self._make_dir(dest)
            self._dir_attrs.append((dest, member))
            return
        if member.isreg():
            self._remove(dest)
            self._charge(member.size, layer, member.name)
            src = tar.extractfile(member)
            assert src is not None
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        elif member.issym():
            self._remove(dest)
            os.symlink(member.linkname, dest)
        elif member.islnk():
            source = self._link_source(member, layer)
            self._remove(dest)
            os.link(source, dest, follow_symlinks=False)
            return  # a hard link shares its inode: owner, mode and times are the source's
        elif member.ischr() or member.isblk():
            if not self._make_device(member, dest, rel):
                self._layer_paths.discard(rel)
                return
        elif member.isfifo():
            self._remove(dest)
            os.mkfifo(dest, 0o600)
        else:
            self._layer_paths.discard(rel)
            self._skip(member.name, f"unsupported tar entry type {member.type!r}")
            return
        self._set_attrs(dest, member)

    def _parts(self, name: str, layer: str) -> tuple[str, ...]:
        if name.startswith("/"):
            raise UnsafeEntry(f"layer {layer}: entry {name!r} has an absolute path")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            raise UnsafeEntry(f"layer {layer}: entry {name!r} contains '..'")
        return parts

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _skip(self, name: str, why: str) -> None:
        log.warning("skipped %s: %s", name, why)
        self.usage.skipped.append(f"{name}: {why}")

    # -- path resolution inside the root ---------------------------------------------
    def _resolve_dir(self, parts: tuple[str, ...], create: bool, layer: str) -> Path:
        """The real directory for archive path `parts`, symlinks followed inside the root."""
        resolved: list[str] = []
        pending = list(parts)
        hops = 0
        while pending:
            comp = pending.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                if resolved:
                    resolved.pop()
                continue
            here = self.root.joinpath(*resolved, comp)
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                if not create:
                    raise _Missing(
                        f"layer {layer}: {'/'.join(parts)!r} does not exist in the image"
                    ) from None
                os.mkdir(here, 0o755)
                self._layer_paths.add(self._rel(here))
                resolved.append(comp)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise UnsafeEntry(f"layer {layer}: too many symlinks under {'/'.join(parts)!r}")
                target = os.readlink(here)
                if target.startswith("/"):
                    resolved = []
                pending = target.split("/") + pending
            elif stat.S_ISDIR(st.st_mode):
                resolved.append(comp)
            else:
                raise UnsafeEntry(
                    f"layer {layer}: {'/'.join(parts)!r} goes through a non-directory"
                )
        return self.root.joinpath(*resolved)

    def _link_source(self, member: tarfile.TarInfo, layer: str) -> Path:
        parts = self._parts(member.linkname, layer)
        if not parts:
            raise UnsafeEntry(f"layer {layer}: hard link {member.name!r} to the root directory")
        try:
            source = self._resolve_dir(parts[:-1], create=False, layer=layer) / parts[-1]
            st = os.lstat(source)
        except (_Missing, FileNotFoundError):
            raise UnsafeEntry(
                f"layer {layer}: hard link {member.name!r} -> {member.linkname!r}:"
                " target is not in the image"
            ) from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeEntry(f"layer {layer}: hard link {member.name!r} to a directory")
        return source

    # -- changing the tree -----------------------------------------------------------
    def _charge(self, size: int, layer: str, name: str) -> None:
        self.usage.bytes += _blocks(size)
        if self.usage.bytes > self.max_bytes:
            raise TooLarge(
                f"layer {layer}: at {name!r} the root filesystem exceeds {self.max_bytes} bytes"
                " (the target partition size)"
            )

    def _refund(self, st: os.stat_result) -> None:
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            self.usage.bytes -= _blocks(st.st_size)

    def _remove(self, path: Path) -> None:
        """Remove whatever `path` is (never following it); refund its budget."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            for top, _dirs, files in os.walk(path):
                for f in files:
                    self._refund(os.lstat(os.path.join(top, f)))
            shutil.rmtree(path)
        else:
            self._refund(st)
            os.unlink(path)

    def _make_dir(self, path: Path) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            return
        if not stat.S_ISDIR(st.st_mode):
            self._remove(path)
            os.mkdir(path, 0o755)

    def _make_device(self, member: tarfile.TarInfo, dest: Path, rel: str) -> bool:
        name = ALLOWED_CHAR_DEVICES.get((member.devmajor, member.devminor))
        if not (member.ischr() and name and rel.startswith("dev/") and rel.count("/") == 1):
            kind = "char" if member.ischr() else "block"
            self._skip(
                member.name,
                f"{kind} device {member.devmajor}:{member.devminor} is not one a root"
                " filesystem needs in /dev",
            )
            return False
        self._remove(dest)
        try:
            os.mknod(dest, stat.S_IFCHR | 0o600, os.makedev(member.devmajor, member.devminor))
        except PermissionError:
            self._skip(member.name, "mknod not permitted here")
            return False
        return True

    def _whiteout(self, parts: tuple[str, ...], layer: str) -> None:
        """OCI whiteouts act on lower layers only, never on this layer's own entries."""
        base = parts[-1]
        try:
            parent = self._resolve_dir(parts[:-1], create=False, layer=layer)
        except _Missing:
            log.debug("whiteout %s: nothing below it", "/".join(parts))
            return
        if base == OPAQUE:
            for child in os.listdir(parent):
                path = parent / child
                if self._rel(path) not in self._layer_paths:
                    self._remove(path)
            return
        if base.startswith(WHITEOUT + WHITEOUT):
            log.debug("ignored aufs metadata %s", "/".join(parts))
            return
        hidden = base[len(WHITEOUT) :]
        if hidden in ("", ".", ".."):
            raise UnsafeEntry(f"layer {layer}: malformed whiteout {'/'.join(parts)!r}")
        path = parent / hidden
        if self._rel(path) in self._layer_paths:
            log.debug("whiteout %s names an entry of its own layer: kept", "/".join(parts))
            return
        self._remove(path)

    def _set_attrs(self, path: Path, member: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears setuid), then xattrs (chown clears caps), then times."""
        if self._as_root:
            os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not member.issym():
            os.chmod(path, stat.S_IMODE(member.mode))
            self._set_xattrs(path, member)
        try:
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        except OverflowError:
            log.debug("mtime of %s out of range: left as extracted", member.name)

    def _set_xattrs(self, path: Path, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(XATTR_PREFIX):
                continue
            attr = key[len(XATTR_PREFIX) :]
            if not attr.startswith(XATTR_NAMESPACES):
                continue
            try:
                os.setxattr(path, attr, value.encode("utf-8", "surrogateescape"))
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EINVAL, errno.EACCES):
                    raise
                log.warning("xattr %s of %s not kept: %s", attr, member.name, exc.strerror)
