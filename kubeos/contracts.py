"""The values passed through hooks: what plugins receive and return.

Kept apart from `hooks.py` so that a plugin can import these types without pulling in
the plugin manager, and so the hook module stays a flat list of contracts.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: Progress callback: (phase, bytes done, bytes total or None when unknown).
Progress = Callable[[str, int, int | None], None]
#: Where the node keeps spool and scratch files unless NodeContext.work_dir says otherwise.
DEFAULT_SCRATCH = "/persist/kubeos/tmp"


@dataclass(frozen=True)
class Provides:
    """What one plugin owns. The host refuses two plugins owning the same name."""

    image_types: tuple[str, ...] = ()
    setting_models: tuple[str, ...] = ()


@dataclass
class NodeContext:
    """Where the node's files and devices are.

    The agent runs in a DaemonSet with the host mounted somewhere (`host_root`); tests
    and the local demo point everything at a temporary tree and a disk-image file.
    """

    host_root: Path = Path("/")
    proc_sys: Path = Path("/proc/sys")
    #: Block device or disk-image file holding the A/B layout; None means discover it.
    disk: Path | None = None
    #: Spool and scratch space (must survive nothing: cleaned after each operation).
    work_dir: Path | None = None
    #: B3: the partition ("A" or "B") that counts as current for this operation, pinned
    #: when the operation was dispatched. None means "the one the node booted from".
    pinned_current: str | None = None
    node_name: str = ""
    #: Node paths (absolute, resolved under host_root with host_path()).
    #: KubeOS boots UEFI grub from the boot partition; grub.cfg has menu entries "A" and "B"
    #: and `set default=${saved_entry}`, so the grubenv's saved_entry picks the root.
    grub_dir: str = "/boot/efi/EFI/openEuler"
    cmdline_path: str = "/proc/cmdline"
    os_release_path: str = "/etc/os-release"
    #: Called while long steps run (download, write, verify); None = silent.
    progress: Progress | None = None
    #: Free-form extras a plugin may need (e.g. a runtime socket); never secrets.
    extras: dict[str, str] = field(default_factory=dict)
    #: Phases whose progress callback already failed (logged once each, see report()).
    _progress_failed: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def host_path(self, path: str | os.PathLike[str]) -> Path:
        """Map an absolute node path under the host root, refusing `..` escapes."""
        p = Path(path)
        if not p.is_absolute():
            raise ValueError(f"path {str(p)!r} must be absolute")
        parts = p.parts[1:]
        if ".." in parts:
            raise ValueError(f"path {str(p)!r} must not contain '..'")
        return self.host_root.joinpath(*parts)

    @property
    def certs_dir(self) -> Path:
        """D3: certificates named by the OS CR live here on the node."""
        return self.host_path("/etc/KubeOS/certs")

    @property
    def grub_cfg(self) -> Path:
        return self.host_path(f"{self.grub_dir}/grub.cfg")

    @property
    def grubenv(self) -> Path:
        return self.host_path(f"{self.grub_dir}/grubenv")

    def report(self, phase: str, done: int, total: int | None = None) -> None:
        """Tell the progress callback; never raises (G2).

        It runs inside block-I/O loops: a failed status write (API server away) must not
        abort, and so wipe, an upgrade that is writing fine. Logged once per phase.
        """
        if self.progress is None:
            return
        try:
            self.progress(phase, done, total)
        except Exception as exc:  # any callback failure is only a lost report
            if phase not in self._progress_failed:
                self._progress_failed.add(phase)
                log.warning("progress report %r failed (the work goes on): %s", phase, exc)

    def scratch(self) -> Path:
        """A directory for spool files, private to root (0700): images hold /etc/shadow.

        Created on demand; the default location is tightened to 0700 if an older agent
        created it looser. A `work_dir` chosen by the admin is created 0700 but otherwise
        left as it is (it might be shared), so everything put in it is private by itself.
        """
        d = self.work_dir or self.host_path(DEFAULT_SCRATCH)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.work_dir is None:
            st = d.stat()
            if stat.S_IMODE(st.st_mode) & 0o077:
                d.chmod(0o700)
        return d


@dataclass(frozen=True)
class Partition:
    """A root partition, addressed as a byte range of a file or block device.

    On a real node `path` is the partition device and `offset` 0; on a disk-image file
    `path` is the image and `offset` comes from the partition table.
    """

    label: str  # "A" or "B"
    number: int  # 2 for A, 3 for B on a KubeOS disk
    path: Path
    offset: int
    size: int
    device: str = ""  # the name the kernel/grub knows it by, e.g. /dev/vda3


@dataclass
class FetchedImage:
    """A root-filesystem image ready to be installed.

    `digest` is what was measured while acquiring it ("sha256:<hex>" of the file for a
    disk image, the registry digest for a container image) and is compared with the
    OS's `checksum` by the verification hook.
    """

    path: Path
    size: int
    digest: str
    #: The bytes already sit at the start of the target partition (streamed there).
    on_target: bool = False
    #: sha256 hex of exactly `size` bytes as written, for read-back verification.
    sha256: str = ""
    #: Temporary files to remove once the operation ends, success or not.
    temp_paths: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """One setting the node applied, for the CLI output and the status report."""

    model: str
    key: str
    action: str  # "set", "added", "updated", "deleted", "unchanged", "skipped"
    old: str | None = None
    new: str | None = None
    note: str = ""

    def __str__(self) -> str:
        tail = f" ({self.note})" if self.note else ""
        if self.action in ("set", "added", "updated"):
            return f"{self.model}: {self.key}: {self.old!r} -> {self.new!r} [{self.action}]{tail}"
        return f"{self.model}: {self.key}: {self.action}{tail}"
