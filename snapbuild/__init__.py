"""snapbuild: deterministic read-model snapshots of a music catalog, versioned with git.

The public names below are imported on first use, so that a command that
needs none of them (``snapbuild textconv``, which git starts once per file it
compares) does not pay for loading SQLite-utils and dulwich.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name -> the module that defines it.
_EXPORTS = {
    "ExportResult": "export",
    "export_snapshot": "export",
    "run_export": "export",
    "SnapshotManifest": "manifest",
    "verify_snapshot": "verify",
    **{
        name: "errors"
        for name in (
            "DatabaseError",
            "InsufficientSpaceError",
            "ManifestError",
            "NoRepositoryError",
            "NotifyError",
            "PushError",
            "RepoError",
            "RepoLockedError",
            "SignatureError",
            "SigningKeyError",
            "SnapbuildError",
            "SourceBusyError",
            "SourceError",
            "TargetError",
            "UsageError",
            "VerifyError",
        )
    },
}

__all__ = [
    "DatabaseError",
    "ExportResult",
    "InsufficientSpaceError",
    "ManifestError",
    "NoRepositoryError",
    "NotifyError",
    "PushError",
    "RepoError",
    "RepoLockedError",
    "SignatureError",
    "SigningKeyError",
    "SnapbuildError",
    "SnapshotManifest",
    "SourceBusyError",
    "SourceError",
    "TargetError",
    "UsageError",
    "VerifyError",
    "export_snapshot",
    "run_export",
    "verify_snapshot",
]

if TYPE_CHECKING:
    from .errors import (
        DatabaseError,
        InsufficientSpaceError,
        ManifestError,
        NoRepositoryError,
        NotifyError,
        PushError,
        RepoError,
        RepoLockedError,
        SignatureError,
        SigningKeyError,
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'snapbuild' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
