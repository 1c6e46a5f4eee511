"""origin_server: a private origin that streams NAS-only audio through signed, expiring tokens."""

from __future__ import annotations

from .errors import (
    ConfigError,
    FileRefused,
    OriginError,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenNotYetValid,
)

__all__ = [
    "ConfigError",
    "FileRefused",
    "OriginError",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenNotYetValid",
]
