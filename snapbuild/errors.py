"""The one error hierarchy of snapbuild; the CLI maps it to exit codes in one place."""

from __future__ import annotations


class SnapbuildError(Exception):
    """Base of every error snapbuild raises on purpose.

    ``exit_code`` is what the CLI exits with: 1 for operational errors,
    2 for usage errors. ``str(error)`` is one readable line.
    """

    exit_code = 1


class UsageError(SnapbuildError):
    """The caller asked for something that cannot work (bad flag or argument)."""

    exit_code = 2


class SourceError(SnapbuildError):
    """The authoritative catalog cannot be read or fails validation.

    Args:
        message: one line saying what is wrong.
        table: the source table concerned, if any.
        column: the column concerned, if any.
        row: the row's key (e.g. its ``id``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        column: str | None = None,
        row: object | None = None,
    ) -> None:
        super().__init__(message)
        self.table = table
        self.column = column
        self.row = row


class SourceBusyError(SourceError):
    """The source stayed locked by a writer longer than the busy timeout."""


class TargetError(SnapbuildError):
    """The target directory cannot be written (e.g. the path is a file)."""

    def __init__(self, message: str, *, path: object | None = None) -> None:
        super().__init__(message)
        self.path = path


class VerifyError(SnapbuildError):
    """A snapshot does not match its manifest or fails SQLite's checks."""

    def __init__(self, message: str, *, path: object | None = None) -> None:
        super().__init__(message)
        self.path = path


class RepoError(SnapbuildError):
    """The snapshot repository cannot be used (not a repository, bad revision, ...)."""

    def __init__(self, message: str, *, path: object | None = None) -> None:
        super().__init__(message)
        self.path = path


class RepoLockedError(RepoError):
    """Another writer held the repository lock longer than the lock timeout."""


class InsufficientSpaceError(RepoError):
    """The repository's disk has too little free space for the new snapshot."""


class PushError(RepoError):
    """Pushing the snapshots to a remote failed."""
