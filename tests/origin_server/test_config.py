"""The origin's configuration: media root specs and the settings OriginConfig refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from origin_server.config import DEFAULT_ROOT_SEGMENT, OriginConfig, parse_media_root, parse_media_roots
from origin_server.errors import ConfigError, SettingError


@pytest.mark.parametrize(
    ("spec", "name", "path"),
    [
        ("music=/srv/music", "music", "/srv/music"),
        ("/srv/music", None, "/srv/music"),
        ("=/srv/a=b", None, "/srv/a=b"),
        ("D:\\Music", None, "D:\\Music"),
        ("not a name=/x", None, "not a name=/x"),
    ],
)
def test_parse_media_root(spec: str, name: str | None, path: str) -> None:
    assert parse_media_root(spec) == (name, Path(path))


@pytest.mark.parametrize(
    ("specs", "refused", "reason"),
    [
        (["="], "=", "'=': no path given"),
        (["music="], "music=", "'music=': no path given"),
        (["/a", "=/b"], "=/b", "'=/b': root (default) given twice"),
        (["m=/a", "n=/b", "m=/c"], "m=/c", "'m=/c': root m given twice"),
    ],
)
def test_media_root_refusals_carry_the_spec(specs: list[str], refused: str, reason: str) -> None:
    with pytest.raises(SettingError) as caught:
        parse_media_roots(specs)
    error = caught.value
    assert (error.setting, error.value, error.reason) == ("media_root", refused, reason)
    assert str(error) == f"media root {reason}"  # no flag name: the command line adds its own
    assert isinstance(error, ConfigError)


def test_parse_media_roots_keeps_every_root() -> None:
    assert parse_media_roots(["/a", "n=/b"]) == {None: Path("/a"), "n": Path("/b")}


@pytest.mark.parametrize(
    "overrides",
    [
        {"roots": {DEFAULT_ROOT_SEGMENT: Path(".")}},
        {"roots": {"bad name": Path(".")}},
        {"offload": "apache"},
        {"offload_prefix": "/a//b"},
        {"max_age": -1},
        {"leeway": -1},
    ],
)
def test_origin_config_refusals(overrides: dict[str, object]) -> None:
    options: dict[str, object] = {"roots": {None: Path(".")}, "keys": None, **overrides}
    with pytest.raises(ConfigError):
        OriginConfig(**options)  # type: ignore[arg-type]
