"""snapbuild: deterministic read-model snapshots of a music catalog, versioned with git."""

from __future__ import annotations

from .errors import (
    InsufficientSpaceError,
    PushError,
    RepoError,
    RepoLockedError,
    SnapbuildError,
    SourceBusyError,
    SourceError,
    TargetError,
    UsageError,
    VerifyError,
)

__all__ = [
    "InsufficientSpaceError",
    "PushError",
    "RepoError",
    "RepoLockedError",
    "SnapbuildError",
    "SourceBusyError",
    "SourceError",
    "TargetError",
    "UsageError",
    "VerifyError",
]
