"""Signed commits as git makes and checks them: the ``gpgsig`` header, what it covers, who signed.

git signs a commit's bytes without the signature, then inserts the armored
signature as a ``gpgsig`` header after the others (each line after the first
indented by one space). To check one, it takes the header out again (git's
``parse_buffer_signed_by_header``), asks the allowed-signers file who the key
is at the commit's time, and verifies the signature in the ``git`` namespace.
:func:`check_signature` does the same, without ssh-keygen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dulwich.objects import Commit
from dulwich.repo import Repo

from ..errors import RepoError, SignatureError
from ..git.revisions import resolve_rev
from ..git.store import reading
from .allowed import AllowedSigners
from .keys import SigningKey
from .sshsig import GIT_NAMESPACE, PublicKey, Sshsig

SIGNATURE_HEADER = b"gpgsig"

GOOD = "good"
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown-key"
BAD = "bad"


@dataclass(frozen=True)
class SignatureCheck:
    """What a commit's signature says against an allowed-signers file.

    Attributes:
        commit: the commit's hex id.
        status: :data:`GOOD`, :data:`UNSIGNED`, :data:`UNKNOWN_KEY` or :data:`BAD`.
        detail: the finding as the rest of a sentence about the commit ("is not signed").
        key: the signing key, when the signature names one.
        principals: who the allowed-signers file says the key is (only when good).
    """

    commit: str
    status: str
    detail: str
    key: PublicKey | None = None
    principals: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True for a good signature by an admitted key."""
        return self.status == GOOD

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: status, key fingerprint, principals and the finding."""
        return {
            "status": self.status,
            "key": self.key.fingerprint if self.key else None,
            "principals": list(self.principals),
            "detail": self.detail,
        }


def split_signature(raw: bytes) -> tuple[bytes, bytes | None]:
    """A raw commit's signed payload (the commit without its ``gpgsig`` header) and the signature, as git splits them."""
    payload: list[bytes] = []
    signature: list[bytes] = []
    in_signature = False
    at = 0
    while at < len(raw):
        end = raw.find(b"\n", at) + 1 or len(raw)
        line = raw[at:end]
        if in_signature and line.startswith(b" "):
            signature.append(line[1:])
        elif line.startswith(SIGNATURE_HEADER + b" "):
            signature.append(line[len(SIGNATURE_HEADER) + 1 :])
            in_signature = True
        elif line.startswith(b"\n"):
            payload.append(raw[at:])  # the blank line, then the message: all of it is signed
            break
        else:
            payload.append(line)
            in_signature = False
        at = end
    return b"".join(payload), (b"".join(signature) if signature else None)


def sign_commit(commit: Commit, key: SigningKey) -> None:
    """Sign ``commit`` (not yet stored) in place, as ``git commit -S`` with ``gpg.format=ssh`` would.

    Raises:
        SigningKeyError: the key cannot sign (see :meth:`SigningKey.sign`).
    """
    payload = commit.as_raw_string()
    # dulwich indents every line after the first; the armor's last newline then ends the header, as in git.
    commit.gpgsig = key.sign(payload).rstrip(b"\n")


def check_commit(commit: str, raw: bytes, when: int, signers: AllowedSigners) -> SignatureCheck:
    """Check the raw commit ``commit``, made at Unix time ``when``, against ``signers``.

    The order is git's: an unsigned commit, then a key the file does not
    admit (not listed, other namespaces, outside its validity), then the
    signature itself.
    """
    payload, armored = split_signature(raw)
    if armored is None:
        return SignatureCheck(commit, UNSIGNED, "is not signed")
    try:
        signature = Sshsig.parse(armored)
    except ValueError as error:
        return SignatureCheck(commit, BAD, f"has a signature that cannot be checked: {error}")
    key = signature.public_key
    if signature.namespace != GIT_NAMESPACE:
        return SignatureCheck(commit, BAD, f"has a signature made for {signature.namespace!r}, not for git", key)
    match = signers.match(key, GIT_NAMESPACE, when)
    if not match.principals:
        why = "; ".join(match.refusals) if match.refusals else "does not list it"
        return SignatureCheck(commit, UNKNOWN_KEY, f"is signed with {key.label}, but {signers.path} {why}", key)
    try:
        good = signature.verify(payload)
    except ValueError as error:
        return SignatureCheck(commit, BAD, f"has a malformed signature by {key.label}: {error}", key)
    if not good:
        return SignatureCheck(commit, BAD, f"has a signature by {key.label} that does not match the commit", key)
    by = ", ".join(match.principals)
    return SignatureCheck(commit, GOOD, f"has a good signature by {by} with {key.label}", key, match.principals)


def check_signature(repo: Repo, sha: bytes, signers: AllowedSigners) -> SignatureCheck:
    """Check the signature of commit ``sha`` in an open repository (its stored bytes, its committer time)."""
    type_num, raw = repo.object_store.get_raw(sha)
    if type_num != Commit.type_num:
        raise RepoError(f"{sha.decode()} is not a commit", path=repo.controldir())
    return check_commit(sha.decode(), raw, repo.object_store[sha].commit_time, signers)


def verify_signature(repo_path: str | os.PathLike[str], rev: str, signers: AllowedSigners) -> SignatureCheck:
    """Require a good signature on the commit at ``rev`` by a key ``signers`` admit.

    Raises:
        RepoError: not a repository, or a bad revision.
        SignatureError: unsigned, signed by a key not admitted, or the signature does not match.
    """
    with reading(repo_path) as repo:
        check = check_signature(repo, resolve_rev(repo, rev), signers)
    if not check.ok:
        raise SignatureError(
            f"{rev} ({check.commit[:12]}) {check.detail}",
            path=repo_path,
            commit=check.commit,
            status=check.status,
            key=check.key.fingerprint if check.key else None,
        )
    return check
