"""The minting examples (Python stdlib, Node crypto, Go stdlib) against our verifier, and docs/tokens.md against them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from origin_server.keys import KeyRing
from origin_server.tokens import create_origin_token, stream_url, verify_origin_token
from tests.conftest import require_tool

from .conftest import TOKEN_LOCATOR as LOCATOR

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "mint"
SECRET = "example-secret-" + "x" * 32
EXP = 1767226200

TOOLS = {"python": None, "node": "node", "go": "go"}


@pytest.fixture(scope="module")
def go_mint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go example, built once (``go run`` would turn the program's exit status into its own)."""
    build = tmp_path_factory.mktemp("go-mint")
    env = {**os.environ, "GOCACHE": str(build / "cache"), "GOPATH": str(build / "gopath")}
    binary = build / ("mint.exe" if sys.platform == "win32" else "mint")
    subprocess.run(
        [shutil.which("go") or "go", "build", "-o", str(binary), str(EXAMPLES / "mint.go")],
        check=True, env=env, cwd=build, timeout=300,
    )
    return binary


def mint(request: pytest.FixtureRequest, language: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one language's example with a clean ORIGIN_* environment plus ``env``."""
    tool = TOOLS[language]
    if tool:
        require_tool(tool)
    if language == "python":
        command = [sys.executable, str(EXAMPLES / "mint.py")]
    elif language == "node":
        command = [shutil.which("node") or "node", str(EXAMPLES / "mint.js")]
    else:
        command = [str(request.getfixturevalue("go_mint"))]
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORIGIN_")}
    base.update({"PYTHONIOENCODING": "utf-8", "ORIGIN_SECRET": SECRET, **env})
    return subprocess.run([*command, *args], capture_output=True, text=True, encoding="utf-8", env=base, timeout=120)


languages = pytest.mark.parametrize("language", ["python", "node", "go"])


@languages
def test_example_mints_our_exact_bytes(language: str, request: pytest.FixtureRequest) -> None:
    done = mint(request, language, [LOCATOR, "nas"], {"ORIGIN_KEY_ID": "2026-02", "ORIGIN_EXP": str(EXP)})
    assert done.returncode == 0, done.stderr
    ring = KeyRing([("2026-02", SECRET)])
    ours = create_origin_token(ring, LOCATOR, EXP, backend="nas")
    assert done.stdout == ours + "\n"
    assert verify_origin_token(ring, done.stdout.strip(), EXP - 60) == {"locator": LOCATOR, "backend": "nas", "exp": EXP}


@languages
def test_example_default_expiry_is_rounded_and_verifies_now(language: str, request: pytest.FixtureRequest) -> None:
    before = time.time()
    done = mint(request, language, ["a b/c#d?.mp3"], {"ORIGIN_BASE_URL": "http://127.0.0.1:8080/"})
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    token = url.rsplit("/", 1)[1]
    assert url == stream_url("http://127.0.0.1:8080", token)
    claims = verify_origin_token(SECRET, token, time.time(), leeway=0)
    assert claims["locator"] == "a b/c#d?.mp3" and "backend" not in claims
    assert claims["exp"] % 300 == 0 and before + 3600 <= claims["exp"] <= time.time() + 3600 + 300


@languages
def test_example_without_secret_is_a_usage_error(language: str, request: pytest.FixtureRequest) -> None:
    done = mint(request, language, ["a.flac"], {"ORIGIN_SECRET": ""})
    assert done.returncode == 2 and done.stdout == "" and "usage" in done.stderr


def _fenced_blocks(text: str, info: str) -> list[str]:
    return re.findall(rf"^```{info}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize(("info", "filename"), [("python", "mint.py"), ("js", "mint.js"), ("go", "mint.go")])
def test_docs_show_the_tested_example_code(info: str, filename: str) -> None:
    docs = (ROOT / "docs" / "tokens.md").read_text(encoding="utf-8")
    source = (EXAMPLES / filename).read_text(encoding="utf-8")
    blocks = [b for b in _fenced_blocks(docs, info) if "HS256" in b]
    assert blocks, f"docs/tokens.md shows no {info} minting example"
    for block in blocks:
        assert block in source, f"the {info} minting example in docs/tokens.md differs from examples/mint/{filename}"


def test_docs_worked_example_is_what_we_mint() -> None:
    docs = (ROOT / "docs" / "tokens.md").read_text(encoding="utf-8")
    ring = KeyRing([("2026-02", "correct-horse-battery-staple-origin-key-2026")])
    token = create_origin_token(ring, LOCATOR, 1767229200, backend="nas")
    assert token in docs
    assert stream_url("http://nas.local:8080", token) in docs
    header, claims, mac = token.split(".")
    for part in (header, claims, mac):
        assert part + "\n" in docs  # each step shows its segment on a line of its own
