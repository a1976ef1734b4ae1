"""Error types shared by the core and the plugins.

Every error a user can cause names the field and the rule it broke, so an admin can fix
the CR without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One broken rule: `field` is a dotted path into the object (e.g. `spec.timewindow`)."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.rule}]"


class KubeosError(Exception):
    """Base class: anything the product refuses or fails to do, with a readable reason."""


class ValidationFailed(KubeosError):
    """An object broke one or more rules; all problems of the object are reported together."""

    def __init__(self, problems: list[Problem], what: str = "object") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{what} is invalid ({len(self.problems)} problem(s)):\n{lines}")


class PluginConflict(KubeosError):
    """Two plugins claim the same image type or settings model."""


class NotProvided(KubeosError):
    """No installed plugin provides the image type or settings model asked for."""


class SettingError(KubeosError):
    """Applying one setting failed; carries the model and key so the status can name them."""

    def __init__(self, model: str, key: str, reason: str, applied: list | None = None) -> None:
        self.model, self.key, self.reason = model, key, reason
        #: Changes of the same block made before this key failed (C5: they stay applied).
        self.applied = list(applied or [])
        super().__init__(f"{model}: key {key!r}: {reason}")


class ImageError(KubeosError):
    """The image could not be fetched, was refused, or failed verification."""


class InstallError(KubeosError):
    """Writing or verifying the new root partition, or switching the boot entry, failed."""
