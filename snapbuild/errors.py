"""The one error hierarchy of snapbuild; the CLI turns it into exit codes in one place.

Every error carries the data a caller needs to act on it (the table, column
and row of a bad source value; the path of a file or repository) besides a
one-line message. Messages speak of the library's arguments, never of
command-line flags: the CLI adds those hints where it renders the error.
"""

from __future__ import annotations


class SnapbuildError(Exception):
    """Base of every error snapbuild raises on purpose; ``str(error)`` is one readable line."""


class UsageError(SnapbuildError):
    """The caller asked for something that cannot work (a bad argument or option value).

    Args:
        message: one line saying what is wrong.
        argument: the argument concerned (``"author"``, ``"generated_at"``), if any.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


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
    """The source stayed locked by a writer longer than the busy timeout.

    Args:
        message: one line saying what is wrong.
        timeout: the busy timeout that ran out, in seconds.
    """

    def __init__(self, message: str, *, timeout: float | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout


class _PathError(SnapbuildError):
    """An error about one file, directory or repository, named by ``path``."""

    def __init__(self, message: str, *, path: object | None = None) -> None:
        super().__init__(message)
        self.path = path


class TargetError(_PathError):
    """The target directory cannot be written (e.g. the path is a file)."""


class VerifyError(_PathError):
    """A snapshot does not match its manifest or fails SQLite's checks."""


class ManifestError(VerifyError):
    """A ``manifest.json`` is missing, unreadable, or not a valid manifest.

    Args:
        message: one line saying what is wrong.
        path: the manifest file, if it came from one.
        field: the manifest field concerned, if any.
    """

    def __init__(self, message: str, *, path: object | None = None, field: str | None = None) -> None:
        super().__init__(message, path=path)
        self.field = field


class DatabaseError(_PathError):
    """A file that should be a snapshot database is missing or is not a readable SQLite database."""


class RepoError(_PathError):
    """The snapshot repository cannot be used (not a repository, bad revision, ...)."""


class NoRepositoryError(RepoError):
    """There is no git repository at the path (nothing there, or something that is not a repository)."""


class RepoLockedError(RepoError):
    """Another writer held the repository lock longer than the lock timeout.

    Args:
        message: one line saying what is wrong.
        path: the repository's git directory.
        timeout: the lock timeout that ran out, in seconds.
    """

    def __init__(self, message: str, *, path: object | None = None, timeout: float | None = None) -> None:
        super().__init__(message, path=path)
        self.timeout = timeout


class InsufficientSpaceError(RepoError):
    """The repository's disk has too little free space for the new snapshot.

    Args:
        message: one line saying what is wrong.
        path: the repository's git directory.
        free: bytes free on its disk.
        needed: bytes the commit needs.
    """

    def __init__(
        self, message: str, *, path: object | None = None, free: int | None = None, needed: int | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.free = free
        self.needed = needed


class PushError(RepoError):
    """Pushing the snapshots to a remote failed.

    Args:
        message: one line saying what is wrong.
        path: the repository's git directory.
        remote: the remote the push went to, if any.
    """

    def __init__(self, message: str, *, path: object | None = None, remote: str | None = None) -> None:
        super().__init__(message, path=path)
        self.remote = remote


class NotifyError(SnapbuildError):
    """One or more receivers were not told about a new snapshot; the snapshot itself is committed.

    Args:
        message: one line naming each receiver not reached and why.
        snapshot_id: the snapshot that was to be announced.
        urls: the receivers not reached.
    """

    def __init__(self, message: str, *, snapshot_id: str | None = None, urls: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.snapshot_id = snapshot_id
        self.urls = urls


class SignatureError(VerifyError):
    """A snapshot commit is unsigned, signed by a key the allowed signers do not admit, or its signature does not match.

    Args:
        message: one line naming the revision and the reason.
        path: the repository.
        commit: the commit's hex id.
        status: ``"unsigned"``, ``"unknown-key"`` or ``"bad"``.
        key: the signing key's fingerprint (``SHA256:...``), when the commit names one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: object | None = None,
        commit: str | None = None,
        status: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message, path=path)
        self.commit = commit
        self.status = status
        self.key = key


class SigningKeyError(UsageError):
    """The signing key cannot sign: unreadable, of a kind git cannot verify, or needs an agent that does not hold it.

    Args:
        message: one line, starting with ``signing key PATH``.
        path: the key file.
    """

    def __init__(self, message: str, *, path: object | None = None) -> None:
        super().__init__(message, argument="signing key")
        self.path = path
