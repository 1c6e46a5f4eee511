"""The documentation names library functions that exist, called the way their signatures allow."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# `snapbuild.verify_snapshot(db_path, manifest_path)`, `snapbuild.urls.public_url`, `origin_server.tokens.X`
_REFERENCE = re.compile(r"`((?:snapbuild|origin_server)(?:\.\w+)+)(?:\(([^`()]*)\))?`")


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(dotted)


# File names that look like dotted names (`snapbuild.lock`, the repository's lock file).
_FILE_SUFFIXES = (".lock", ".db", ".json", ".git", ".md", ".py", ".txt")


def _references() -> list[tuple[str, str, str | None]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in _REFERENCE.finditer(text):
            # A logger's name (`origin_server.access` logger) is not a module.
            if not match.group(1).endswith(_FILE_SUFFIXES) and not text.startswith(" logger", match.end()):
                found.append((doc.relative_to(ROOT).as_posix(), match.group(1), match.group(2)))
    return found


@pytest.mark.parametrize("doc, dotted, arguments", _references(), ids=lambda value: str(value))
def test_a_documented_name_exists_and_takes_the_arguments_shown(doc: str, dotted: str, arguments: str | None) -> None:
    try:
        value = _resolve(dotted)
    except (ImportError, AttributeError):
        pytest.fail(f"{doc} names {dotted}, which does not exist")
    if arguments is None or not callable(value):
        return
    names = [part.strip() for part in arguments.split(",") if part.strip()]
    positional = [name for name in names if "=" not in name]
    keywords = {name.split("=")[0].strip(): None for name in names if "=" in name}
    signature = inspect.signature(value)
    # Keywords alone name a few arguments of a longer call; positional ones show the whole call.
    bind = signature.bind if positional else signature.bind_partial
    try:
        bind(*positional, **keywords)
    except TypeError as error:
        pytest.fail(f"{doc} calls {dotted}({arguments}), which its signature refuses: {error}")
