"""The key ring and the key file shared by ``origin-server token`` and ``origin-server serve``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from pathlib import Path

import pytest

from origin_server.errors import ArgumentTypeError, ConfigError
from origin_server.keys import MAC_LENGTH, MAX_KEY_FILE_BYTES, KeyRing, is_key_id, parse_key_file, read_key_file
from origin_server.tokens import create_origin_token, verify_origin_token

SECRET_A = "a" * 32 + "-first"
SECRET_B = "b" * 32 + "-second"


# --- KeyRing -------------------------------------------------------------------------------


def test_key_ring_basics() -> None:
    ring = KeyRing([("k2", SECRET_B), ("k1", SECRET_A)])
    assert ring.signing_key == ("k2", SECRET_B)
    assert list(ring) == [("k2", SECRET_B), ("k1", SECRET_A)]
    assert len(ring) == 2 and ring.kids == ("k2", "k1")
    assert ring == KeyRing(list(ring)) and hash(ring) == hash(KeyRing(list(ring)))
    assert KeyRing.single(SECRET_A).signing_key == (None, SECRET_A)


def test_key_ring_is_immutable_and_never_shows_secrets() -> None:
    ring = KeyRing([("k2", SECRET_B), ("k1", SECRET_A)])
    with pytest.raises(AttributeError):
        ring._keys = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ring.extra = 1  # type: ignore[attr-defined]
    assert SECRET_A not in repr(ring) and SECRET_B not in repr(ring) and "k2" in repr(ring)


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ([], ConfigError),
        ([("k1", "")], ConfigError),
        ([("k1", SECRET_A), ("k1", SECRET_B)], ConfigError),
        ([("k1", SECRET_A), ("k2", SECRET_A)], ConfigError),
        ([(None, SECRET_A), ("k1", SECRET_B)], ConfigError),
        ([(None, SECRET_A), (None, SECRET_B)], ConfigError),
        ([("bad kid", SECRET_A)], ConfigError),
        ([("", SECRET_A)], ConfigError),
        ([("k1", b"bytes")], TypeError),
        ([(1, SECRET_A)], TypeError),
    ],
)
def test_key_ring_refuses(keys: list[tuple[object, object]], error: type) -> None:
    with pytest.raises(error):
        KeyRing(keys)  # type: ignore[arg-type]


@pytest.mark.parametrize(("keys", "argument"), [([("k1", b"bytes")], "secret"), ([(1, SECRET_A)], "kid")])
def test_key_ring_type_errors_name_the_argument(keys: list[tuple[object, object]], argument: str) -> None:
    with pytest.raises(ArgumentTypeError) as caught:
        KeyRing(keys)  # type: ignore[arg-type]
    assert caught.value.argument == argument and isinstance(caught.value, TypeError)


def test_key_ring_of_accepts_a_ring_a_str_or_pairs() -> None:
    ring = KeyRing([("k2", SECRET_B), ("k1", SECRET_A)])
    assert KeyRing.of(ring) is ring
    assert KeyRing.of(list(ring)) == ring
    assert KeyRing.of(SECRET_A) == KeyRing.single(SECRET_A)
    with pytest.raises(ArgumentTypeError) as caught:
        KeyRing.of(SECRET_A.encode())  # type: ignore[arg-type]
    assert caught.value.argument == "secret" and isinstance(caught.value, TypeError)


def reference_mac(secret: str, signing_input: bytes) -> bytes:
    digest = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


def test_sign_is_the_signing_keys_base64url_mac() -> None:
    ring = KeyRing([("k2", SECRET_B), ("k1", SECRET_A)])
    assert ring.sign(b"head.claims") == reference_mac(SECRET_B, b"head.claims")
    assert len(ring.sign(b"")) == MAC_LENGTH


def test_candidates_are_the_named_key_or_every_key() -> None:
    ring = KeyRing([("k2", SECRET_B), ("k1", SECRET_A)])
    signing_input = "马也.x".encode("utf-8")
    every = ring.candidates(None)
    assert [kid for kid, _ in every] == ["k2", "k1"]
    assert [mac(signing_input) for _, mac in every] == [reference_mac(s, signing_input) for s in (SECRET_B, SECRET_A)]
    ((kid, mac),) = ring.candidates("k1")
    assert kid == "k1" and mac(signing_input) == reference_mac(SECRET_A, signing_input)
    assert ring.candidates("k9") == ()
    assert [kid for kid, _ in KeyRing.single(SECRET_A).candidates(None)] == [None]


@pytest.mark.parametrize(
    ("value", "ok"),
    [("2026-02", True), ("a.b_c-D9", True), ("", False), ("a b", False), ("k:1", False), (None, False), (7, False)],
)
def test_is_key_id(value: object, ok: bool) -> None:
    assert is_key_id(value) is ok


# --- parse_key_file ------------------------------------------------------------------------


def test_single_line_without_colon_is_one_key_without_kid() -> None:
    ring = parse_key_file(f"{SECRET_A}\n")
    assert list(ring) == [(None, SECRET_A)]
    assert "kid" not in create_origin_token(ring, "a", 10).split(".")[0]


def test_kid_lines_comments_blank_lines_crlf_and_whitespace() -> None:
    text = f"\ufeff# rotated 2026-02-01\r\n\r\n  k2:{SECRET_B}  \r\n# previous key, remove after 2026-02-02\r\nk1:{SECRET_A}\r\n"
    ring = parse_key_file(text)
    assert list(ring) == [("k2", SECRET_B), ("k1", SECRET_A)]


def test_secret_is_everything_after_the_first_colon() -> None:
    ring = parse_key_file("2026.01_a-b:sec:ret#with:colons and spaces inside")
    assert list(ring) == [("2026.01_a-b", "sec:ret#with:colons and spaces inside")]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (f"k1:{SECRET_A}\nk1:{SECRET_B}\n", 2, "duplicate key id (first on line 1)"),
        (f"k1:{SECRET_A}\n{SECRET_B}\n", 2, "expected KID:SECRET"),
        (f"{SECRET_B}\nk1:{SECRET_A}\n", 1, "expected KID:SECRET"),
        (f"# c\n\nbad kid:{SECRET_A}\n", 3, "key id of letters"),
        (f":{SECRET_A}\n", 1, "key id of letters"),
        ("k1:\n", 1, "empty secret"),
        (f"k1: {SECRET_A}\n", 1, "begins with whitespace"),
        (f"k1:{SECRET_A}\nk2:{'x' * 5}\n", 2, "shorter than 32 bytes"),
    ],
)
def test_malformed_lines_are_named(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_key_file(text, source="origin.keys", min_secret_bytes=32)
    assert caught.value.line == line
    message = str(caught.value)
    assert message.startswith(f"origin.keys: line {line}: ") and words in message
    assert "\n" not in message
    for secret in (SECRET_A, SECRET_B, "x" * 5):
        assert secret not in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # another\n", "\ufeff"])
def test_no_keys(text: str) -> None:
    with pytest.raises(ConfigError, match="no keys") as caught:
        parse_key_file(text)
    assert caught.value.line is None


# --- read_key_file ---------------------------------------------------------------------------


def test_read_key_file_with_bom_written_by_notepad(tmp_path: Path) -> None:
    path = tmp_path / "origin.keys"
    path.write_bytes(b"\xef\xbb\xbf" + f"k2:{SECRET_B}\r\nk1:{SECRET_A}\r\n".encode("utf-8"))
    ring = read_key_file(path)
    assert list(ring) == [("k2", SECRET_B), ("k1", SECRET_A)]
    token = create_origin_token(ring, "a.flac", 100)
    assert verify_origin_token(read_key_file(str(path)), token, 50)["locator"] == "a.flac"


def test_min_secret_bytes_counts_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "origin.keys"
    path.write_text("密" * 11 + "\n", encoding="utf-8")  # 11 characters, 33 bytes
    assert len(read_key_file(path)) == 1
    path.write_text("密" * 10 + "\n", encoding="utf-8")  # 30 bytes
    with pytest.raises(ConfigError, match="line 1: secret shorter than 32 bytes"):
        read_key_file(path)
    assert len(read_key_file(path, min_secret_bytes=30)) == 1


def test_read_key_file_refusals(tmp_path: Path) -> None:
    missing = tmp_path / "nope.keys"
    with pytest.raises(ConfigError, match="does not exist") as caught:
        read_key_file(missing)
    assert caught.value.path == missing and str(missing) in str(caught.value)

    with pytest.raises(ConfigError, match="directory|cannot read"):
        read_key_file(tmp_path)

    empty = tmp_path / "empty.keys"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no keys"):
        read_key_file(empty)

    latin1 = tmp_path / "latin1.keys"
    latin1.write_bytes(f"k1:{SECRET_A}\nk2:caf\xe9-{SECRET_B}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        read_key_file(latin1)
    assert caught.value.line == 2 and "not UTF-8" in str(caught.value) and SECRET_B not in str(caught.value)

    short = tmp_path / "short.keys"
    short.write_text(f"k1:{SECRET_A}\nk0:tooshort\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_key_file(short)
    assert caught.value.line == 2 and caught.value.path == short
    assert str(caught.value) == f"{short}: line 2: secret shorter than 32 bytes"


# --- what a key file may be ------------------------------------------------------------------


def read_in_thread(path: Path) -> object:
    """read_key_file(path) in a thread, giving up after 10 s (a FIFO used to hang it): the result or the error."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(read_key_file(path))
        except Exception as error:  # noqa: BLE001 - the error is the outcome
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert outcome, f"read_key_file({path}) did not return"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_a_device_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "origin.keys"
    os.mkfifo(fifo)
    refused = read_in_thread(fifo)
    assert isinstance(refused, ConfigError) and "not a regular file" in str(refused)
    if Path("/dev/zero").exists():
        refused = read_in_thread(Path("/dev/zero"))
        assert isinstance(refused, ConfigError) and "not a regular file" in str(refused)


def test_a_key_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "origin.keys"
    big.write_text("".join(f"k{n}:{SECRET_A}-{n}\n" for n in range(2000)), encoding="utf-8")
    assert big.stat().st_size > MAX_KEY_FILE_BYTES
    with pytest.raises(ConfigError, match=f"larger than {MAX_KEY_FILE_BYTES} bytes"):
        read_key_file(big)


def test_cr_only_and_mixed_line_endings_are_lines() -> None:
    for text in (f"k2:{SECRET_B}\rk1:{SECRET_A}\r", f"# old Mac\rk2:{SECRET_B}\r\nk1:{SECRET_A}\n"):
        ring = parse_key_file(text)
        assert list(ring) == [("k2", SECRET_B), ("k1", SECRET_A)]
    with pytest.raises(ConfigError) as caught:
        parse_key_file(f"k2:{SECRET_B}\x0bk1:{SECRET_A}\n")  # a vertical tab is no line end
    assert caught.value.line == 1 and "control character" in str(caught.value) and SECRET_A not in str(caught.value)


def test_one_secret_under_two_key_ids_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_key_file(f"k2:{SECRET_A}\n\nk1:{SECRET_A}\n")
    assert caught.value.line == 3 and "same secret as line 1" in str(caught.value)
    assert SECRET_A not in str(caught.value)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_key_file_others_can_read_or_write_gives_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "origin.keys"
    path.write_text(f"k1:{SECRET_A}\n", encoding="utf-8")
    for mode, words in ((0o644, "readable"), (0o602, "writable"), (0o666, "readable and writable")):
        path.chmod(mode)
        warnings: list[str] = []
        assert len(read_key_file(path, warn=warnings.append)) == 1
        assert warnings == [f"{path}: key file is {words} by others (mode {mode:03o}); chmod 600 it"]
    for mode in (0o600, 0o640):
        path.chmod(mode)
        warnings = []
        read_key_file(path, warn=warnings.append)
        assert warnings == []
