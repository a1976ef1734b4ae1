"""The one way kubeos runs an external command: argument lists, a timeout, stderr kept.

Never a shell: every argument is passed as-is, so CR fields cannot inject commands.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubeos.errors import KubeosError

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 300.0


class CommandError(KubeosError):
    """A command failed, timed out or is missing; the message carries its stderr tail."""

    def __init__(self, argv: Sequence[str], reason: str, stderr: str = "") -> None:
        self.argv = list(argv)
        self.stderr = stderr
        tail = stderr.strip()[-2000:]
        super().__init__(f"{argv[0]} {reason}" + (f": {tail}" if tail else ""))


def which(*names: str) -> str | None:
    """The first of `names` on PATH (grub2-editenv on openEuler, grub-editenv on Debian)."""
    for n in names:
        found = shutil.which(n)
        if found:
            return found
    return None


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv`; raise CommandError on a non-zero exit (if `check`), timeout or missing tool."""
    args = [str(a) for a in argv]
    log.debug("run: %s", args)
    try:
        proc = subprocess.run(
            args,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        raise CommandError(args, "is not installed (not found on PATH)") from None
    except subprocess.TimeoutExpired as exc:
        stderr = (exc.stderr or b"").decode(errors="replace")
        raise CommandError(args, f"timed out after {timeout:g}s", stderr) from None
    if check and proc.returncode != 0:
        raise CommandError(
            args, f"exited with status {proc.returncode}", proc.stderr.decode(errors="replace")
        )
    return proc
