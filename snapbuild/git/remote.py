"""Send ``main`` and the tags to a remote, and repack the repository: the git CLI when given, else dulwich.

The git CLI computes deltas (against what the remote has when pushing,
between objects when repacking); dulwich, the fallback, sends and packs
whole objects.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import PushError, RepoError
from ..defaults import DEFAULT_LOCK_TIMEOUT
from .store import BRANCH_REF, configure, git_dir_of, reading, repo_lock, repo_size


@dataclass(frozen=True)
class GcResult:
    """Repository size before and after a repack, and which tool repacked."""

    size_before: int
    size_after: int
    tool: str


@dataclass(frozen=True)
class PushResult:
    """Where the refs went and which transport client sent them."""

    remote: str
    tool: str
    output: str = ""


def display_remote(remote: str) -> str:
    """A remote as messages show it: a URL without its password, query or fragment (they may hold credentials)."""
    if "://" not in remote:
        return remote  # a path, or scp-like user@host:path (no password there)
    scheme, _, rest = remote.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    path = re.split(r"[?#]", path, maxsplit=1)[0]
    return f"{scheme}://{user + '@' if at and user else ''}{hostport}{slash}{path}"


def _without_credentials(text: str) -> str:
    """``text`` (git's or dulwich's words) with every URL in it as :func:`display_remote` shows it."""
    return _URL.sub(lambda match: display_remote(match.group(0)), text)


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def _run_git(git: str, git_dir: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [git, "--git-dir", str(git_dir), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=dict(env) if env is not None else None,
        check=False,
    )


def _run_git_streaming(
    git: str, git_dir: Path, *args: str, env: Mapping[str, str] | None, progress: Callable[[str], None]
) -> tuple[int, str]:
    """Run git, handing its stderr to ``progress`` as it comes; return the exit code and the whole stderr."""
    proc = subprocess.Popen(
        [git, "--git-dir", str(git_dir), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
    )
    assert proc.stderr is not None
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    seen: list[str] = []
    with proc.stderr:
        while chunk := proc.stderr.read1(4096):
            text = decoder.decode(chunk)
            seen.append(text)
            progress(text)
    return proc.wait(), "".join(seen)


class _Forward(io.RawIOBase):
    """A byte stream that hands what dulwich writes to a text callback and keeps it."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self._progress = progress
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.seen: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        text = self._decoder.decode(bytes(data))
        self.seen.append(text)
        if self._progress is not None:
            self._progress(text)
        return len(data)


def gc(
    repo_path: str | os.PathLike[str],
    *,
    git: str | None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    progress: Callable[[str], None] | None = None,
    git_progress_to_stderr: bool = False,
) -> GcResult:
    """Repack the repository: with the git CLI (deltas) when ``git`` is given, else dulwich.

    Unreachable objects (left by crashed writers) are pruned at once: the writer
    lock is held, so no snapbuild writer has unreferenced objects in flight.
    dulwich computes no deltas and materialises each object while packing.

    Args:
        progress: receives dulwich's progress messages, one per call.
        git_progress_to_stderr: let the git CLI write to this process's stderr
            (git draws its own progress there when it is a terminal, and
            cannot be made to draw it into a pipe); otherwise git runs quietly
            and its last error line goes into the error.

    Raises:
        RepoError: not a repository, or the repack failed.
        RepoLockedError: a writer held the lock past ``lock_timeout``.
    """
    git_dir = git_dir_of(repo_path)
    with repo_lock(git_dir, lock_timeout):
        with reading(git_dir) as repo:
            configure(repo)
        before = repo_size(git_dir)
        if git and git_progress_to_stderr:
            code = subprocess.run(
                [git, "--git-dir", str(git_dir), "-c", "repack.writeBitmaps=false", "gc", "--prune=now"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False,
            ).returncode
            if code != 0:
                raise RepoError(f"git gc failed with exit code {code} (its messages are above)", path=git_dir)
            tool = "git"
        elif git:
            proc = _run_git(git, git_dir, "-c", "repack.writeBitmaps=false", "gc", "--prune=now", "--quiet")
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
                raise RepoError(f"git gc failed: {last}", path=git_dir)
            tool = "git"
        else:
            from dulwich import porcelain

            with reading(git_dir) as repo:
                porcelain.gc(repo, prune=True, grace_period=0, progress=progress)
            tool = "dulwich"
        return GcResult(before, repo_size(git_dir), tool)


def push(
    repo_path: str | os.PathLike[str],
    remote: str,
    *,
    git: str | None,
    env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PushResult:
    """Push ``main`` and every tag to ``remote`` (a path, ``file://``, ssh or http(s) URL).

    The git CLI, when ``git`` is given, sends deltas against what the remote
    has; dulwich's client (the fallback) sends whole objects. Never forces:
    a remote whose ``main`` diverged refuses the push.

    Args:
        env: the transport's environment (ssh agent, proxies). When omitted the
            git CLI inherits this process's, and dulwich's client gets none.
        progress: receives the push's progress output as it comes (git's
            ``--progress`` lines, ending in CR or LF, drawn for a terminal;
            what dulwich's client relays); without it git runs ``--quiet``.

    Raises:
        RepoError: not a repository.
        PushError: nothing to push, or the remote refused or could not be reached.
    """
    with reading(repo_path) as repo:
        git_dir = Path(repo.controldir())
        if BRANCH_REF not in repo.refs:
            raise PushError("nothing to push: the repository has no snapshots yet", path=git_dir, remote=remote)
    if git:
        refspecs = (f"{BRANCH_REF.decode()}:{BRANCH_REF.decode()}", "refs/tags/*:refs/tags/*")
        if progress is not None:
            code, stderr = _run_git_streaming(git, git_dir, "push", "--progress", remote, *refspecs,
                                              env=env, progress=progress)
        else:
            proc = _run_git(git, git_dir, "push", "--quiet", remote, *refspecs, env=env)
            code, stderr = proc.returncode, proc.stderr
        if code != 0:
            lines = [line for line in re.split(r"[\r\n]+", stderr.strip()) if line.strip()]
            detail = next((line for line in lines if "rejected" in line or "fatal" in line), lines[-1] if lines else "")
            raise PushError(f"push to {display_remote(remote)} failed: {_without_credentials(detail.strip())}", path=git_dir, remote=remote)
        return PushResult(remote, "git", stderr)
    from dulwich import porcelain

    err = _Forward(progress)
    try:
        result = porcelain.push(
            str(git_dir),
            remote,
            refspecs=[BRANCH_REF + b":" + BRANCH_REF],
            tags=True,
            outstream=io.BytesIO(),
            errstream=err,
            env=dict(env) if env is not None else {},
        )
    except Exception as error:  # noqa: BLE001 - dulwich raises many unrelated types on network failures
        raise PushError(f"push to {display_remote(remote)} failed: {_without_credentials(str(error))}", path=git_dir, remote=remote) from error
    failed = {ref: why for ref, why in (getattr(result, "ref_status", None) or {}).items() if why}
    if failed:
        ref, why = next(iter(failed.items()))
        raise PushError(f"push to {display_remote(remote)} failed: {ref.decode()} {why}", path=git_dir, remote=remote)
    return PushResult(remote, "dulwich", "".join(err.seen))
