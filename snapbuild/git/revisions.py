"""A small rev-parse: ``HEAD``, ``HEAD~N``, ``HEAD^N``, branch and tag names, full or short commit ids.

It works on a bare repository and on a clone's work tree, shallow clones
included: a revision that reaches past the history a clone has is refused
with a message saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

from dulwich.objects import Commit, Tag
from dulwich.repo import Repo

from ..errors import RepoError

HEAD_REF = b"HEAD"
HEADS_PREFIX = b"refs/heads/"
TAG_PREFIX = b"refs/tags/"

_REV_RE = re.compile(r"(?P<base>[^~^]+)(?P<ops>(?:[~^][0-9]*)*)")
_HEX_RE = re.compile(r"[0-9a-fA-F]{4,40}")


def _peel(repo: Repo, sha: bytes) -> bytes:
    """Follow annotated tags to the commit; refuse anything that is not one."""
    obj = repo.object_store[sha]
    while isinstance(obj, Tag):
        obj = repo.object_store[obj.object[1]]
    if not isinstance(obj, Commit):
        raise RepoError(f"{sha.decode()} is not a commit")
    return obj.id


def _known_commits(repo: Repo) -> set[bytes]:
    """Every commit reachable from any ref: the candidates for a (short) hex id.

    Walking commits never loads a database blob, which a plain object lookup by
    prefix would do.
    """
    todo: list[bytes] = []
    for sha in repo.refs.as_dict().values():
        try:
            todo.append(_peel(repo, sha))
        except (KeyError, RepoError):
            continue
    seen: set[bytes] = set()
    while todo:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        try:
            commit = repo.object_store[sha]
        except KeyError:
            continue  # the edge of a shallow clone
        todo.extend(commit.parents)
    shallow = repo.get_shallow() if hasattr(repo, "get_shallow") else set()
    return seen | set(shallow)


def _resolve_base(repo: Repo, base: str) -> bytes:
    name = base.encode("utf-8")
    refs = repo.refs
    for candidate in (name, b"refs/" + name, TAG_PREFIX + name, HEADS_PREFIX + name,
                      b"refs/remotes/" + name, b"refs/remotes/" + name + b"/HEAD"):
        try:
            sha = refs[candidate]
        except (KeyError, ValueError):
            continue
        return _peel(repo, sha)
    if _HEX_RE.fullmatch(base):
        prefix = name.lower()
        matches = [sha for sha in _known_commits(repo) if sha.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RepoError(f"revision {base!r} is ambiguous")
    if name == HEAD_REF:
        raise RepoError("the repository has no snapshots yet")
    raise RepoError(f"unknown revision {base!r}")


def resolve_rev(repo: Repo, rev: str) -> bytes:
    """Resolve a revision to a commit's hex id.

    Args:
        repo: an open repository (see ``store.reading``).
        rev: ``HEAD``, ``HEAD~N``, ``HEAD^``, a branch or tag name (``main``,
            ``snap-...``), or a full or abbreviated commit id.

    Raises:
        RepoError: the revision names no commit, or reaches past the history the clone has.
    """
    match = _REV_RE.fullmatch(rev.strip())
    if not match:
        raise RepoError(f"unknown revision {rev!r}")
    sha = _resolve_base(repo, match["base"])
    for op, digits in re.findall(r"([~^])([0-9]*)", match["ops"]):
        count = int(digits) if digits else 1
        if op == "^" and count == 0:
            continue
        steps, index = (count, 0) if op == "~" else (1, count - 1)
        for _ in range(steps):
            try:
                parents = repo.object_store[sha].parents
            except KeyError as error:
                raise RepoError(f"revision {rev!r} reaches past the history this clone has") from error
            if len(parents) <= index:
                raise RepoError(f"revision {rev!r} does not exist: the history is shorter")
            sha = parents[index]
    if sha not in repo.object_store:
        raise RepoError(f"revision {rev!r} reaches past the history this clone has")
    return sha


def has_head(repo: Repo) -> bool:
    """True if ``HEAD`` names a commit (False in a repository with no commits yet)."""
    try:
        repo.refs[HEAD_REF]
    except KeyError:
        return False
    return True


def work_tree_at(repo: Repo, sha: bytes) -> Path | None:
    """The work tree of a clone whose HEAD is commit ``sha``, else None (a bare repository, another commit)."""
    if repo.bare:
        return None
    try:
        head = repo.refs[HEAD_REF]
    except KeyError:
        return None
    return Path(repo.path) if head == sha else None
