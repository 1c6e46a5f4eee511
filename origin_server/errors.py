"""The one error hierarchy of origin_server; the app maps it to HTTP statuses in one place."""

from __future__ import annotations


class OriginError(Exception):
    """Base of every error origin_server raises on purpose."""


class ConfigError(OriginError):
    """The server's configuration is unusable (missing root, bad key file, short key).

    Args:
        message: one line saying what is wrong.
        path: the file or directory concerned, if any.
        line: the 1-based line number in a key file, if any.
    """

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class NotConfigured(OriginError):
    """No signing key is configured, so no token can be checked: the app answers 503."""

    def __init__(self) -> None:
        super().__init__("no signing key configured")


class FileRefused(OriginError):
    """A locator does not name a regular file inside a media root.

    Deliberately carries no reason in its message: every refusal is the same 404.
    """

    def __init__(self) -> None:
        super().__init__("not found")


class TokenError(OriginError, ValueError):
    """A token was refused; a ``ValueError`` as the original plan's contract says."""


class TokenInvalid(TokenError):
    """Malformed, badly signed, or carrying claims of the wrong form."""


class TokenExpired(TokenError):
    """Well-formed and correctly signed, but past its ``exp`` (plus leeway)."""


class TokenNotYetValid(TokenError):
    """Well-formed and correctly signed, but before its ``nbf`` (minus leeway)."""
