"""The repository on disk: open it, create it, configure it, and hold its writer lock.

One writer at a time: every writer holds an OS-level lock (``filelock``) on
``snapbuild.lock`` inside the repository. The OS drops it when its process
dies, so no lock file outlives a crash. Holding it also proves that any
``*.lock`` file left by git's own lock protocol (``refs/heads/main.lock``,
``packed-refs.lock``) belongs to a dead snapbuild writer, so it is removed,
with the temporary objects and the scratch directory such a writer left.
Plain git writers outside snapbuild are not expected on this repository.
None of these scratch files is ever followed through a symbolic link: the
lock file is opened with ``O_NOFOLLOW`` (see :mod:`snapbuild.fsutil`), a
link among the leftovers is removed as a link, and the scratch directory is
created anew each time.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from dulwich.errors import NotGitRepository
from dulwich.repo import Repo
from filelock import Timeout

from ..errors import NoRepositoryError, RepoError, RepoLockedError
from ..fsutil import is_link, lock_problem, remove_quietly, remove_tree, take_lock
from .objects import TMP_OBJECT_PREFIX
from .revisions import HEADS_PREFIX

#: The one branch: HEAD of a repository this module creates names it.
BRANCH = b"main"
BRANCH_REF = HEADS_PREFIX + BRANCH
# A plain byte count: dulwich cannot parse unit suffixes ("1g" crashes Repo()) and
# refuses loose objects above it; git makes no deltas above it. 4 GiB - 1 is the
# largest value every git build accepts (Windows' unsigned long is 32 bits).
BIG_FILE_THRESHOLD = 4294967295
LOCK_NAME = "snapbuild.lock"
#: A directory the lock holder may use for work in progress; the next lock holder removes a leftover one.
STAGING_NAME = "snapbuild-staging"

_STALE_REF_LOCKS = ("HEAD.lock", "packed-refs.lock", "config.lock")


def open_repo(repo_path: str | os.PathLike[str]) -> Repo:
    """Open a bare repository or a clone's work tree.

    Raises:
        NoRepositoryError: the path is not a git repository.
    """
    path = Path(repo_path)
    try:
        return Repo(str(path))
    except (NotGitRepository, FileNotFoundError, NotADirectoryError) as error:
        raise NoRepositoryError(f"{path} is not a git repository", path=path) from error


def enclosing_work_tree(start: Path, *, holding: Collection[Collection[str]]) -> Path | None:
    """The top of the git work tree around ``start`` if its HEAD commit holds what ``holding`` asks, else None.

    ``holding`` lists alternatives: HEAD's tree must hold at least one name
    of each. Like git, the nearest directory at or above ``start`` with a
    ``.git`` decides; a work tree whose HEAD lacks them (another project's
    checkout), or has no commit yet, gives None.
    """
    for directory in (start, *start.parents):
        if not (directory / ".git").exists():
            continue
        try:
            with reading(directory) as repo:
                tree = repo[repo[repo.head()].tree]
                wanted = all(
                    any(name.encode("utf-8") in tree for name in names) for names in holding  # type: ignore[operator]
                )
        except (RepoError, KeyError, AttributeError, OSError):
            return None
        return directory if wanted else None
    return None


@contextmanager
def reading(repo_path: str | os.PathLike[str]) -> Iterator[Repo]:
    """Open a repository for the ``with`` block and close it afterwards.

    Raises:
        RepoError: the path is not a git repository.
    """
    repo = open_repo(repo_path)
    try:
        yield repo
    finally:
        repo.close()


def git_dir_of(repo_path: str | os.PathLike[str]) -> Path:
    """The git directory of a bare repository or a clone.

    Raises:
        RepoError: the path is not a git repository.
    """
    with reading(repo_path) as repo:
        return Path(repo.controldir())


def ensure_repo(repo_path: str | os.PathLike[str]) -> Path:
    """Return the git directory at ``repo_path``, creating a bare repository there if absent.

    Raises:
        RepoError: the path exists but is neither a git repository nor an empty directory.
    """
    return open_or_create(repo_path)[0]


def open_or_create(repo_path: str | os.PathLike[str]) -> tuple[Path, bool]:
    """Return the git directory at ``repo_path`` and whether this call created it (a bare repository).

    A new repository is initialised in a sibling temporary directory and renamed into
    place, so a crash never leaves a half-made one and two first writers cannot both
    create it. HEAD names ``refs/heads/main``; the user's git config is never read.

    Raises:
        RepoError: the path exists but is neither a git repository nor an empty directory.
    """
    path = Path(repo_path)
    if path.is_dir() and any(path.iterdir()):
        return git_dir_of(path), False
    if path.exists() and not path.is_dir():
        raise NoRepositoryError(f"{path} is not a git repository", path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.init-", dir=path.parent))
    try:
        repo = Repo.init_bare(str(staging), default_branch=BRANCH)
        try:
            configure(repo)
        finally:
            repo.close()
        created = True
        try:
            if path.is_dir():
                path.rmdir()  # an empty directory: take its place
            os.replace(staging, path)
        except OSError:
            if not (path.is_dir() and any(path.iterdir())):
                raise
            created = False  # another first writer won the race: use its repository
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return open_or_create(path)[0], created


def configure(repo: Repo) -> bool:
    """Set the repository config snapbuild relies on; return True if it changed."""
    config = repo.get_config()
    wanted = {
        (b"core",): {b"bigFileThreshold": str(BIG_FILE_THRESHOLD).encode("ascii")},
        # Loose objects are removed by `snapbuild gc` under the lock, never by an
        # automatic gc racing a writer.
        (b"gc",): {b"auto": b"0"},
        # With a bitmap, git's upload-pack sends a packed database whole instead of
        # a delta against the consumer's copy (measured: 28% vs 2% of the database).
        (b"repack",): {b"writeBitmaps": b"false"},
        (b"pack",): {b"useBitmaps": b"false"},
    }
    changed = False
    for section, values in wanted.items():
        for name, value in values.items():
            try:
                current = config.get(section, name)
            except KeyError:
                current = None
            if current != value:
                config.set(section, name, value)
                changed = True
    if changed:
        config.write_to_path()
    return changed


@contextmanager
def repo_lock(git_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the repository's writer lock, then clear what a killed writer left behind.

    Raises:
        RepoError: the lock file is a symbolic link, or the repository cannot be written.
        RepoLockedError: another writer held the lock for ``timeout`` seconds.
    """
    path = git_dir / LOCK_NAME
    try:
        lock = take_lock(path, timeout)
    except Timeout as error:
        raise RepoLockedError(
            f"repository {git_dir} is locked by another snapbuild writer (waited {timeout:g} s)",
            path=git_dir,
            timeout=timeout,
        ) from error
    except OSError as error:
        raise RepoError(lock_problem(error, path, "the repository"), path=path) from None
    try:
        _clear_leftovers(git_dir)
        yield
    finally:
        lock.release()


def _clear_leftovers(git_dir: Path) -> None:
    """Remove what a killed writer left: git lock files, temporary objects, staging.

    Safe only under the writer lock: every writer takes it, so nobody is using them.
    """
    stale: list[Path] = [git_dir / name for name in _STALE_REF_LOCKS]
    stale += list((git_dir / "refs").rglob("*.lock"))
    objects = git_dir / "objects"
    stale += list(objects.glob(f"{TMP_OBJECT_PREFIX}*"))
    stale += list(objects.glob("[0-9a-f][0-9a-f]/*.lock"))
    for path in stale:
        if is_link(path):
            remove_quietly(path)  # the link itself: a chmod would change what it points to
            continue
        try:
            path.chmod(stat.S_IWRITE | stat.S_IREAD)
            path.unlink()
        except FileNotFoundError:
            pass
    remove_tree(git_dir / STAGING_NAME)


@contextmanager
def staging_dir(git_dir: Path) -> Iterator[Path]:
    """A new, empty scratch directory inside the repository for the ``with`` block (hold the writer lock).

    Raises:
        RepoError: it cannot be created (e.g. something appeared at its name since the lock was taken).
    """
    path = git_dir / STAGING_NAME
    try:
        path.mkdir()  # exclusive: an existing name, a link included, is refused
    except OSError as error:
        raise RepoError(f"cannot create the scratch directory {path}: {error.strerror or error}", path=path) from None
    try:
        yield path
    finally:
        remove_tree(path)


def repo_size(git_dir: Path) -> int:
    """Bytes the repository occupies (files only; the staging directory excluded)."""
    total = 0
    for root, dirs, files in os.walk(git_dir):
        if Path(root) == git_dir:
            dirs[:] = [d for d in dirs if d != STAGING_NAME]
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total
