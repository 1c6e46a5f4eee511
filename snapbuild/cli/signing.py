"""What the commands that sign snapshots or check their signatures share: the options, the agent, the status words."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..signing.allowed import AllowedSigners
    from ..signing.commits import SignatureCheck
    from ..signing.keys import SigningKey

F = TypeVar("F", bound=Callable[..., Any])

#: The environment variable that names the signing key when --sign-key is not given.
SIGN_KEY_ENV = "SNAPBUILD_SIGN_KEY"


def sign_key_option() -> Callable[[F], F]:
    """``--sign-key PATH`` (or ``$SNAPBUILD_SIGN_KEY``): the SSH key that signs each snapshot commit."""
    return click.option(
        "--sign-key", type=click.Path(dir_okay=False, path_type=Path), envvar=SIGN_KEY_ENV, default=None,
        metavar="PATH",
        help=f"With --commit, sign each snapshot commit with this SSH key as git does (gpg.format=ssh): a private "
             f"key file without passphrase, or a public key (.pub) whose private key ssh-agent holds. "
             f"Default: ${SIGN_KEY_ENV}.",
    )


def allowed_signers_option(help: str) -> Callable[[F], F]:
    """``--allowed-signers FILE``: git's allowed-signers file (``gpg.ssh.allowedSignersFile``)."""
    return click.option(
        "--allowed-signers", "allowed_signers", type=click.Path(dir_okay=False, path_type=Path), default=None,
        metavar="FILE", help=help,
    )


def load_signer(path: Path) -> SigningKey:
    """The signing key at ``path``, with the ssh-agent this process would use (``SSH_AUTH_SOCK``; Windows' pipe)."""
    from ..signing.agent import WINDOWS_AGENT_PIPE
    from ..signing.keys import load_signing_key

    agent = os.environ.get("SSH_AUTH_SOCK") or (WINDOWS_AGENT_PIPE if os.name == "nt" else None)
    return load_signing_key(path, agent=agent)


def load_signers(path: Path) -> AllowedSigners:
    """The allowed-signers file at ``path``, parsed (a broken line is a usage error naming it)."""
    from ..signing.allowed import load_allowed_signers

    return load_allowed_signers(path)


def signature_status(check: SignatureCheck) -> str:
    """A snapshot's signature in a few words, for ``log``: who signed it, or what is wrong."""
    if check.ok:
        return f"signed by {','.join(check.principals)}"
    if check.status == "unsigned":
        return "UNSIGNED"
    key = f" {check.key.fingerprint}" if check.key else ""
    return f"UNKNOWN KEY{key}" if check.status == "unknown-key" else f"BAD SIGNATURE{key}"
