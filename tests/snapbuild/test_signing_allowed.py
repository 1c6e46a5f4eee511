"""Allowed-signers files: parsed as ssh-keygen reads them, and admitting the same keys as ssh-keygen -Y verify."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from snapbuild.errors import UsageError
from snapbuild.signing.allowed import load_allowed_signers, match_pattern_list
from snapbuild.signing.keys import load_signing_key
from snapbuild.signing.sshsig import PublicKey
from tests.conftest import require_tool

from .signing_support import SshKeys, run, write_allowed

MESSAGE = b"payload\n"
NEW_YEAR = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())


def _ssh_keygen_admits(allowed: Path, principal: str, signature: Path, when: int) -> bool:
    """What the real ``ssh-keygen -Y verify -n git`` says at Unix time ``when`` (git passes the commit's time)."""
    stamp = datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y%m%d%H%M%SZ")
    done = run(
        require_tool("ssh-keygen"), "-Y", "verify", "-f", allowed, "-I", principal, "-n", "git", "-s", signature,
        f"-Overify-time={stamp}", input=MESSAGE,
    )
    return done.returncode == 0


# (options of alice's line, Unix time of the signature, admitted?)
CASES = [
    ("", NEW_YEAR, True),
    ('namespaces="git"', NEW_YEAR, True),
    ('namespaces="file"', NEW_YEAR, False),
    ('namespaces="file,gi?"', NEW_YEAR, True),
    ('namespaces="*,!git"', NEW_YEAR, False),
    ('NAMESPACES="git"', NEW_YEAR, True),
    ('valid-after="20260101Z"', NEW_YEAR - 1, False),
    ('valid-after="20260101Z"', NEW_YEAR, True),
    ('valid-before="202601010000Z"', NEW_YEAR, True),
    ('valid-before="202601010000Z"', NEW_YEAR + 1, False),
    ('valid-after="20251231235959UTC",valid-before="20260102Z",namespaces="git"', NEW_YEAR, True),
    ('valid-after="20251231235959Z",valid-before="20260102Z"', NEW_YEAR + 2 * 86400, False),
    ("cert-authority", NEW_YEAR, False),
]


@pytest.mark.parametrize(("options", "when", "admitted"), CASES)
def test_a_key_is_admitted_exactly_when_ssh_keygen_admits_it(
    ssh_keys: SshKeys, tmp_path: Path, options: str, when: int, admitted: bool
) -> None:
    alice = ssh_keys.ed25519
    allowed = write_allowed(tmp_path / "allowed", "# the exporters", "", alice.signer_line(options))
    signature = tmp_path / "sig"
    signature.write_bytes(load_signing_key(alice.path, agent=None).sign(MESSAGE))

    assert _ssh_keygen_admits(allowed, alice.principal, signature, when) is admitted
    match = load_allowed_signers(allowed).match(PublicKey.from_openssh(alice.public_line), "git", when)
    assert match.principals == ((alice.principal,) if admitted else ())
    if not admitted and options != "cert-authority":
        assert len(match.refusals) == 1 and match.refusals[0].startswith("line 3 admits it only")


def test_times_without_z_are_local_as_ssh_keygen_reads_them(
    ssh_keys: SshKeys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset on this platform")
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # UTC+8: midnight there is 16:00 UTC the day before
    time.tzset()
    try:
        alice = ssh_keys.ed25519
        allowed = write_allowed(tmp_path / "allowed", alice.signer_line('valid-after="20260101"'))
        signature = tmp_path / "sig"
        signature.write_bytes(load_signing_key(alice.path, agent=None).sign(MESSAGE))
        key = PublicKey.from_openssh(alice.public_line)
        signers = load_allowed_signers(allowed)
        for when in (NEW_YEAR - 8 * 3600 - 1, NEW_YEAR - 8 * 3600):
            admitted = bool(signers.match(key, "git", when).principals)
            assert admitted is _ssh_keygen_admits(allowed, alice.principal, signature, when)
            assert admitted is (when >= NEW_YEAR - 8 * 3600)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_every_line_that_admits_the_key_names_its_principals(ssh_keys: SshKeys, tmp_path: Path) -> None:
    alice, bob = ssh_keys.ed25519, ssh_keys.rsa
    allowed = write_allowed(
        tmp_path / "allowed",
        alice.signer_line('namespaces="file"'),
        f'"release team,alice@example.org" {alice.public_line} the old line',
        bob.signer_line(),
        "\t" + alice.signer_line('valid-before="20200101Z"'),
    )
    match = load_allowed_signers(allowed).match(PublicKey.from_openssh(alice.public_line), "git", NEW_YEAR)
    assert match.principals == ("release team,alice@example.org",)
    assert [refusal.split(" admits")[0] for refusal in match.refusals] == ["line 1", "line 4"]
    other = load_allowed_signers(allowed).match(PublicKey.from_openssh(ssh_keys.other.public_line), "git", NEW_YEAR)
    assert other.principals == () and other.refusals == ()


def test_quoted_principals_and_option_values(ssh_keys: SshKeys, tmp_path: Path) -> None:
    line = f'"Alice Smith" namespaces="git,\\"odd\\"" {ssh_keys.ed25519.public_line}'
    signer = load_allowed_signers(write_allowed(tmp_path / "allowed", line)).signers[0]
    assert signer.principals == "Alice Smith"
    assert signer.namespaces == 'git,"odd"'


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("alice@example.org", "expected 'PRINCIPALS"),
        ('alice@example.org namespaces="git"', "missing key"),
        ('alice@example.org namespaces=git KEY', "missing start quote"),
        ('alice@example.org namespaces="git KEY', "missing end quote"),
        ('alice@example.org verify-required KEY', "unknown option at 'verify-required'"),
        ('alice@example.org namespaces="a",namespaces="b" KEY', 'multiple "namespaces" clauses'),
        ('alice@example.org valid-after="2026-01-01" KEY', 'invalid "valid-after" time'),
        ('alice@example.org valid-after="20260102Z",valid-before="20260101Z" KEY', '"valid-before" time is before'),
        ("alice@example.org ssh-ed25519 not!base64", "is not base64"),
        ("alice@example.org ssh-ed25519 AAAA", "malformed"),
    ],
)
def test_a_malformed_line_is_an_error_naming_the_file_and_line(
    ssh_keys: SshKeys, tmp_path: Path, line: str, reason: str
) -> None:
    allowed = write_allowed(tmp_path / "allowed", ssh_keys.rsa.signer_line(), line.replace("KEY", ssh_keys.ed25519.public_line))
    with pytest.raises(UsageError, match=reason) as caught:
        load_allowed_signers(allowed)
    assert str(caught.value).startswith(f"allowed signers file {allowed} line 2: ")
    assert caught.value.argument == "allowed signers file"


def test_keys_of_types_snapbuild_does_not_check_are_kept_but_never_match(ssh_keys: SshKeys, tmp_path: Path) -> None:
    from snapbuild.signing.sshsig import ssh_string

    kind = b"sk-ssh-ed25519@openssh.com"
    fido = f"{kind.decode()} {base64.b64encode(ssh_string(kind) + ssh_string(bytes(32)) + ssh_string(b'ssh:')).decode()}"
    allowed = write_allowed(tmp_path / "allowed", f"hw@example.org {fido}", ssh_keys.ed25519.signer_line())
    signers = load_allowed_signers(allowed)
    assert [s.key_type for s in signers.signers] == [kind.decode(), "ssh-ed25519"]
    match = signers.match(PublicKey.from_openssh(ssh_keys.ed25519.public_line), "git", NEW_YEAR)
    assert match.principals == (ssh_keys.ed25519.principal,)


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"allowed signers file .*missing: No such file"):
        load_allowed_signers(tmp_path / "missing")


def test_pattern_lists_follow_openssh() -> None:
    assert match_pattern_list("git", "git") == 1
    assert match_pattern_list("git", "g*") == 1
    assert match_pattern_list("git", "g?t,file") == 1
    assert match_pattern_list("git", "file") == 0
    assert match_pattern_list("git", "*,!git") == -1
    assert match_pattern_list("git", "!file") == 0
    assert match_pattern_list("g.t", "g.t") == 1 and match_pattern_list("gxt", "g.t") == 0
