"""Send ``main`` and the tags to a remote, and repack the repository: the git CLI when given, else dulwich.

The git CLI computes deltas (against what the remote has when pushing,
between objects when repacking); dulwich, the fallback, sends and packs
whole objects.
"""

from __future__ import annotations

import io
import os
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


def gc(
    repo_path: str | os.PathLike[str],
    *,
    git: str | None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    progress: Callable[[str], None] | None = None,
) -> GcResult:
    """Repack the repository: with the git CLI (deltas) when ``git`` is given, else dulwich.

    Unreachable objects (left by crashed writers) are pruned at once: the writer
    lock is held, so no snapbuild writer has unreferenced objects in flight.
    dulwich computes no deltas and materialises each object while packing.

    Raises:
        RepoError: not a repository, or the repack failed.
        RepoLockedError: a writer held the lock past ``lock_timeout``.
    """
    git_dir = git_dir_of(repo_path)
    with repo_lock(git_dir, lock_timeout):
        with reading(git_dir) as repo:
            configure(repo)
        before = repo_size(git_dir)
        if git:
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
) -> PushResult:
    """Push ``main`` and every tag to ``remote`` (a path, ``file://``, ssh or http(s) URL).

    The git CLI, when ``git`` is given, sends deltas against what the remote
    has; dulwich's client (the fallback) sends whole objects. Never forces:
    a remote whose ``main`` diverged refuses the push.

    Args:
        env: the transport's environment (ssh agent, proxies). When omitted the
            git CLI inherits this process's, and dulwich's client gets none.

    Raises:
        RepoError: not a repository.
        PushError: nothing to push, or the remote refused or could not be reached.
    """
    with reading(repo_path) as repo:
        git_dir = Path(repo.controldir())
        if BRANCH_REF not in repo.refs:
            raise PushError("nothing to push: the repository has no snapshots yet", path=git_dir, remote=remote)
    if git:
        proc = _run_git(git, git_dir, "push", "--quiet", remote,
                        f"{BRANCH_REF.decode()}:{BRANCH_REF.decode()}", "refs/tags/*:refs/tags/*", env=env)
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            detail = next((line for line in lines if "rejected" in line or "fatal" in line), lines[-1] if lines else "")
            raise PushError(f"push to {remote} failed: {detail.strip()}", path=git_dir, remote=remote)
        return PushResult(remote, "git", proc.stderr)
    from dulwich import porcelain

    err = io.BytesIO()
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
        raise PushError(f"push to {remote} failed: {error}", path=git_dir, remote=remote) from error
    failed = {ref: why for ref, why in (getattr(result, "ref_status", None) or {}).items() if why}
    if failed:
        ref, why = next(iter(failed.items()))
        raise PushError(f"push to {remote} failed: {ref.decode()} {why}", path=git_dir, remote=remote)
    return PushResult(remote, "dulwich", err.getvalue().decode("utf-8", "replace"))
