"""snapbuild: deterministic read-model snapshots of a music catalog, versioned with git."""

from __future__ import annotations

from .errors import (
    DatabaseError,
    InsufficientSpaceError,
    ManifestError,
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
from .export import ExportResult, export_snapshot, run_export
from .manifest import SnapshotManifest
from .verify import verify_snapshot

__all__ = [
    "ExportResult",
    "SnapshotManifest",
    "export_snapshot",
    "run_export",
    "verify_snapshot",
    "DatabaseError",
    "InsufficientSpaceError",
    "ManifestError",
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
