"""origin_server: a private origin that streams NAS-only audio through signed, expiring tokens."""

from __future__ import annotations

from .errors import (
    ArgumentError,
    ArgumentTypeError,
    CatalogError,
    ConfigError,
    FileGone,
    FileRefused,
    OriginError,
    SettingError,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenNotYetValid,
)

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "CatalogError",
    "ConfigError",
    "FileGone",
    "FileRefused",
    "OriginError",
    "SettingError",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenNotYetValid",
]
