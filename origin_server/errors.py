"""The one error hierarchy of origin_server; the app maps it to HTTP statuses, the CLI to exit codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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


class SettingError(ConfigError):
    """One setting has a value the origin cannot use (a media root without a path, a limit out of range).

    The message is the setting's name in words followed by ``reason``; a
    front end that knows the setting by another name (a command-line flag)
    puts that name before ``reason`` instead.

    Args:
        setting: the setting's identifier (``media_root``, ``threads``, ``connection_limit``).
        value: the value refused.
        reason: what is wrong, phrased to follow the setting's name.
    """

    def __init__(self, setting: str, value: object, reason: str) -> None:
        super().__init__(f"{setting.replace('_', ' ')} {reason}")
        self.setting = setting
        self.value = value
        self.reason = reason


class CatalogError(ConfigError):
    """A catalog directory holds no snapshot the origin can trust (missing, half-published, corrupt, unknown schema).

    At start the server refuses to run; later, the snapshot in force stays and this is logged.

    Args:
        message: one line saying what is wrong.
        path: the directory or file concerned.
    """


class ArgumentError(OriginError, ValueError):
    """A function was given an argument value it cannot use (an absolute locator, a malformed key id).

    Args:
        argument: the parameter's name (``locator``, ``backend``, ``key_id``, ``ttl``).
        message: one line saying what is wrong.
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class ArgumentTypeError(OriginError, TypeError):
    """A function was given an argument of the wrong type (a bytes secret, a str expiry).

    Args:
        argument: the parameter's name (``secret``, ``locator``, ``expires_at``, ``kid``).
        message: one line saying what is wrong; never the value, which may be a secret.
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class NotConfigured(OriginError):
    """No signing key is configured, so no token can be checked: the app answers 503."""

    def __init__(self) -> None:
        super().__init__("no signing key configured")


class FileRefused(OriginError):
    """A locator does not name a regular file inside a media root.

    The message is the same for every refusal, since clients get the same 404
    whatever the reason; ``reason`` says which rule fired, for the operator's
    log only.

    Args:
        reason: a few words naming the rule (``outside the root``, ``not a regular file``).
    """

    def __init__(self, reason: str = "no such file") -> None:
        super().__init__("not found")
        self.reason = reason


class FileEndedEarly(OriginError):
    """A file being sent ended before the length its response announced (replaced in place?).

    The server closes the connection at once: the client sees a short body.

    Args:
        name: how the log names the file (its locator).
        missing: how many announced bytes the file no longer has.
    """

    def __init__(self, name: str, missing: int) -> None:
        super().__init__(f"file ended {missing} bytes early: {name}")
        self.name = name
        self.missing = missing


class FileGone(OriginError):
    """The token is valid, but the catalog in force does not list its file as active: the app answers 410."""

    def __init__(self) -> None:
        super().__init__("gone")


class TokenError(OriginError, ValueError):
    """A token was refused; also a ``ValueError``, as the token API's contract says.

    Args:
        message: why, in a few words (never the token).
        claims: the token's claims when they were read, which happens only
            after its MAC matched; None when the token was refused before.
    """

    def __init__(self, message: str, *, claims: Mapping[str, Any] | None = None) -> None:
        # Exception.__new__ has set args to (message,) already; refusals are
        # frequent enough that the extra __init__ call is worth skipping.
        self.claims = claims


class TokenInvalid(TokenError):
    """Malformed, badly signed, or carrying claims of the wrong form."""


class TokenExpired(TokenError):
    """Well-formed and correctly signed, but past its ``exp`` (plus leeway)."""


class TokenNotYetValid(TokenError):
    """Well-formed and correctly signed, but before its ``nbf`` (minus leeway)."""
