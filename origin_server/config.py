"""The origin's configuration: what the CLI (or an embedding program) hands to ``create_app``.

The app reads nothing from the environment or the wall clock itself: roots,
keys and the clock arrive here, so tests and embedders control all of them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from .errors import ConfigError, SettingError

if TYPE_CHECKING:
    from .catalog import Catalog
    from .keys import KeyRing

#: Backend names, as ``storage_backends.name`` holds them and the token's ``backend`` claim names them.
_ROOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
#: The X-Accel-Redirect segment for the unnamed (default) root; no named root may use it.
DEFAULT_ROOT_SEGMENT = "_default"
_OFFLOAD_PREFIX = re.compile(r"/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-]\Z")
OFFLOAD_MODES = ("nginx",)
#: Default cap on how far ahead a token's ``exp`` may lie: 7 days, as S3 presigned URLs.
DEFAULT_MAX_TOKEN_LIFETIME = 7 * 24 * 3600


@dataclass(frozen=True)
class OriginConfig:
    """Everything the app needs, passed in.

    Attributes:
        roots: backend name (None for the default root) -> media root directory.
        keys: the key ring tokens are checked with; None answers every stream request 503.
        clock: returns Unix seconds; the only time source for token checks.
        leeway: seconds of clock skew allowed on ``exp`` and ``nbf``.
        cors_origins: origins (``https://player.example``) allowed to read responses; ``*`` for any.
        offload: None to send bytes, or ``"nginx"`` to answer with ``X-Accel-Redirect``.
        offload_prefix: the nginx internal location the redirect points under.
        max_age: upper bound of ``Cache-Control: max-age`` (also bounded by the token's expiry).
        cors_max_age: how long a browser may cache a preflight answer.
        catalog: the allow-list (a file is served only while the snapshot in force lists it); None serves any file.
        max_token_lifetime: refuse (``invalid_token``) a token whose ``exp`` lies more than this
            many seconds ahead (plus leeway); 0 for no cap.
        health_details: ``/healthz`` also names the backends and counts the keys.
    """

    roots: Mapping[str | None, Path]
    keys: KeyRing | None
    clock: Callable[[], float] = time.time
    leeway: float = 30
    cors_origins: tuple[str, ...] = ()
    offload: str | None = None
    offload_prefix: str = "/_protected"
    max_age: int = 3600
    cors_max_age: int = 600
    catalog: Catalog | None = None
    max_token_lifetime: int = DEFAULT_MAX_TOKEN_LIFETIME
    health_details: bool = False

    def __post_init__(self) -> None:
        for name in self.roots:
            if name is not None and (not _ROOT_NAME.match(name) or name == DEFAULT_ROOT_SEGMENT):
                raise ConfigError(f"invalid media root name {name!r} (letters, digits, '.', '_', '-')")
        if self.offload is not None and self.offload not in OFFLOAD_MODES:
            raise ConfigError(f"unknown offload mode {self.offload!r} (choose: {', '.join(OFFLOAD_MODES)})")
        if not _OFFLOAD_PREFIX.match(self.offload_prefix) or "//" in self.offload_prefix:
            raise ConfigError(f"invalid offload prefix {self.offload_prefix!r} (like /_protected)")
        if self.max_age < 0 or self.cors_max_age < 0 or self.leeway < 0 or self.max_token_lifetime < 0:
            raise ConfigError("max-age, CORS max-age, leeway and maximum token lifetime must not be negative")
        object.__setattr__(self, "roots", MappingProxyType(dict(self.roots)))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))


def parse_media_root(spec: str) -> tuple[str | None, Path]:
    """Parse ``[NAME=]PATH``; ``=PATH`` forces an unnamed root.

    A prefix before the first ``=`` is a name only if it looks like one
    (letters, digits, ``.``, ``_``, ``-``), so ``D:\\music`` and most paths with
    ``=`` in them still parse as paths.

    Raises:
        SettingError: (setting ``media_root``) an empty path.
    """
    name: str | None = None
    path = spec
    head, sep, tail = spec.partition("=")
    if sep and (head == "" or _ROOT_NAME.match(head)):
        name, path = (head or None), tail
    if not path:
        raise SettingError("media_root", spec, f"{spec!r}: no path given")
    return name, Path(path)


def parse_media_roots(specs: Iterable[str]) -> dict[str | None, Path]:
    """Parse every ``[NAME=]PATH`` into backend name -> path, refusing a name given twice.

    Raises:
        SettingError: (setting ``media_root``) an empty path, or a second root of one name.
    """
    roots: dict[str | None, Path] = {}
    for spec in specs:
        name, path = parse_media_root(spec)
        if name in roots:
            raise SettingError("media_root", spec, f"{spec!r}: root {name or '(default)'} given twice")
        roots[name] = path
    return roots


def check_roots(roots: Mapping[str | None, Path]) -> dict[str | None, Path]:
    """Return the roots as absolute real paths, refusing any that is not a readable directory.

    Raises:
        ConfigError: a root is missing, not a directory, or not readable.
    """
    checked: dict[str | None, Path] = {}
    for name, root in roots.items():
        label = f"media root {name!r}" if name else "default media root"
        if not root.is_dir():
            raise ConfigError(f"{label} is not a directory: {root}", path=root)
        if not os.access(root, os.R_OK | os.X_OK):
            raise ConfigError(f"{label} is not readable: {root}", path=root)
        checked[name] = Path(os.path.realpath(root))
    return checked


# --- the server's limits (here, not in server.py, so the command line can show them without importing waitress)

#: Windows' select() handles at most 512 sockets (the listening socket and
#: waitress's wake-up socket count too); poll() elsewhere has no such ceiling.
SELECT_ONLY = os.name == "nt"
MAX_CONNECTION_LIMIT = 511 if SELECT_ONLY else 65535
#: Open connections by default: far more than players need, so that idle or
#: slow clients cannot take every place (each costs a socket, and a file handle while it streams).
DEFAULT_CONNECTION_LIMIT = 500 if SELECT_ONLY else 1000
#: Seconds a client has to send a complete request once connected or once it began one.
DEFAULT_HEADER_TIMEOUT = 5.0
