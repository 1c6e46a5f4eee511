"""Signed snapshots end to end: `export --commit --sign-key`, checked by the real git and ssh-keygen and by snapbuild."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.sample import mutate_sample_catalog, write_sample_catalog
from tests.conftest import require_tool

from .repo_support import fsck, git
from .signing_support import Agent, SshKey, SshKeys, run, write_allowed

T1 = "2026-01-01T00:00:00Z"


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalogsync.db"
    write_sample_catalog(path, tracks=40, playlists=3, seed=5)
    return path


@pytest.fixture
def allowed(tmp_path: Path, ssh_keys: SshKeys) -> Path:
    """Alice (Ed25519) and Bob (RSA) may sign snapshots; the other key is not listed."""
    return write_allowed(
        tmp_path / "allowed_signers",
        "# who may sign catalog snapshots",
        ssh_keys.ed25519.signer_line('namespaces="git"'),
        ssh_keys.rsa.signer_line(),
    )


def _export(catalog: Path, repo: Path, *extra: str | Path, day: int = 1) -> int:
    args = ["export", "--db", catalog, "--commit", "--repo", repo, "--generated-at", f"2026-01-{day:02d}T00:00:00Z"]
    return main([str(a) for a in (*args, *extra)])


def _git_verify_commit(repo: Path, allowed: Path, rev: str = "HEAD") -> subprocess.CompletedProcess[str]:
    return git(
        "--git-dir", repo, "-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={allowed}",
        "verify-commit", rev, check=False,
    )


def _ssh_keygen_verify(repo: Path, allowed: Path, key: SshKey, tmp_path: Path, rev: str = "HEAD") -> bool:
    """``ssh-keygen -Y verify`` on the commit's gpgsig header and the commit without it, split here by hand."""
    raw = subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "commit", rev], capture_output=True, check=True
    ).stdout
    header, _, message = raw.partition(b"\n\n")
    payload, signature, in_signature = [], [], False
    for line in header.split(b"\n"):
        if line.startswith(b"gpgsig "):
            signature.append(line[len(b"gpgsig ") :])
            in_signature = True
        elif in_signature and line.startswith(b" "):
            signature.append(line[1:])
        else:
            payload.append(line)
            in_signature = False
    sig = tmp_path / "commit.sig"
    sig.write_bytes(b"\n".join(signature) + b"\n")
    done = run(
        require_tool("ssh-keygen"), "-Y", "verify", "-f", allowed, "-I", key.principal, "-n", "git", "-s", sig,
        input=b"\n".join(payload) + b"\n\n" + message,
    )
    return done.returncode == 0


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_a_signed_snapshot_verifies_with_plain_git_ssh_keygen_and_snapbuild(
    tmp_path: Path, catalog: Path, ssh_keys: SshKeys, allowed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_tool("ssh-keygen")
    repo = tmp_path / "snapshots.git"
    assert _export(catalog, repo, "--sign-key", ssh_keys.ed25519.path) == 0
    assert "signed with ED25519 key SHA256:" in capsys.readouterr().out

    done = _git_verify_commit(repo, allowed)
    assert done.returncode == 0, done.stderr
    assert 'Good "git" signature for alice@example.org with ED25519 key' in done.stderr
    assert _ssh_keygen_verify(repo, allowed, ssh_keys.ed25519, tmp_path)
    fsck(repo)

    assert main(["verify", "--repo", str(repo), "--allowed-signers", str(allowed)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK snap-") and "good signature by alice@example.org with ED25519 key SHA256:" in out


@pytest.mark.parametrize("which", ["ed25519", "rsa"])
def test_the_same_catalog_time_and_key_give_the_same_commit_id(
    tmp_path: Path, catalog: Path, ssh_keys: SshKeys, allowed: Path, which: str
) -> None:
    key = getattr(ssh_keys, which)
    heads = []
    for name in ("one.git", "two.git"):
        assert _export(catalog, tmp_path / name, "--sign-key", key.path) == 0
        heads.append(git("--git-dir", tmp_path / name, "rev-parse", "HEAD").stdout.strip())
    assert heads[0] == heads[1]
    assert _git_verify_commit(tmp_path / "one.git", allowed).returncode == 0
    assert _export(catalog, tmp_path / "unsigned.git") == 0
    assert git("--git-dir", tmp_path / "unsigned.git", "rev-parse", "HEAD").stdout.strip() != heads[0]


def test_a_key_in_ssh_agent_signs_the_same_commit_as_its_key_file(
    tmp_path: Path, catalog: Path, ssh_keys: SshKeys, ssh_agent: Agent, allowed: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    ssh_agent.add(ssh_keys.rsa)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(ssh_agent.socket))
    assert _export(catalog, tmp_path / "agent.git", "--sign-key", ssh_keys.rsa.pub) == 0
    out = capsys.readouterr().out
    assert "signed with RSA key SHA256:" in out and "(ssh-agent)" in out
    assert _export(catalog, tmp_path / "file.git", "--sign-key", ssh_keys.rsa.path) == 0
    head = git("--git-dir", tmp_path / "agent.git", "rev-parse", "HEAD").stdout.strip()
    assert head == git("--git-dir", tmp_path / "file.git", "rev-parse", "HEAD").stdout.strip()
    done = _git_verify_commit(tmp_path / "agent.git", allowed)
    assert done.returncode == 0 and "bob@example.org with RSA key" in done.stderr


def test_unsigned_unknown_key_and_tampered_snapshots_fail_in_git_and_in_snapbuild(
    tmp_path: Path, catalog: Path, ssh_keys: SshKeys, allowed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_tool("ssh-keygen")
    verify = ["verify", "--repo", "", "--allowed-signers", str(allowed)]

    unsigned = tmp_path / "unsigned.git"
    assert _export(catalog, unsigned) == 0
    assert _git_verify_commit(unsigned, allowed).returncode != 0
    verify[2] = str(unsigned)
    capsys.readouterr()
    assert main(verify) == 1
    assert _one_error_line(capsys).endswith(") is not signed")

    stranger = tmp_path / "stranger.git"
    assert _export(catalog, stranger, "--sign-key", ssh_keys.other.path) == 0
    done = _git_verify_commit(stranger, allowed)
    assert done.returncode != 0 and "No principal matched" in done.stderr
    assert not _ssh_keygen_verify(stranger, allowed, ssh_keys.other, tmp_path)
    verify[2] = str(stranger)
    capsys.readouterr()
    assert main(verify) == 1
    line = _one_error_line(capsys)
    assert "is signed with ED25519 key SHA256:" in line and f"but {allowed} does not list it" in line

    # Swap the signed commit's tree for another snapshot's: same signature, other content.
    signed = tmp_path / "signed.git"
    assert _export(catalog, signed, "--sign-key", ssh_keys.ed25519.path) == 0
    mutate_sample_catalog(catalog, fraction=0.2, seed=9)
    assert _export(catalog, signed, day=2) == 0
    other_tree = git("--git-dir", signed, "rev-parse", "HEAD^{tree}").stdout.strip()
    raw = git("--git-dir", signed, "cat-file", "commit", "HEAD~1").stdout
    forged = "tree " + other_tree + raw[raw.index("\n") :]
    forged_id = subprocess.run(
        ["git", "--git-dir", str(signed), "hash-object", "-t", "commit", "-w", "--stdin"],
        input=forged.encode("utf-8"), capture_output=True, check=True,
    ).stdout.decode().strip()
    git("--git-dir", signed, "update-ref", "refs/heads/forged", forged_id)
    assert _git_verify_commit(signed, allowed, "HEAD~1").returncode == 0
    done = _git_verify_commit(signed, allowed, "forged")
    assert done.returncode != 0 and "Good" not in done.stderr
    assert not _ssh_keygen_verify(signed, allowed, ssh_keys.ed25519, tmp_path, "forged")
    capsys.readouterr()
    assert main(["verify", "--repo", str(signed), "--rev", "forged", "--allowed-signers", str(allowed)]) == 1
    line = _one_error_line(capsys)
    assert line.startswith(f"snapbuild: error: forged ({forged_id[:12]}) has a signature by ED25519 key SHA256:")
    assert line.endswith("that does not match the commit")


def test_log_shows_each_snapshot_s_signature_status(
    tmp_path: Path, catalog: Path, ssh_keys: SshKeys, allowed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"
    for day, key in enumerate((None, ssh_keys.ed25519, ssh_keys.other, ssh_keys.rsa), start=1):
        mutate_sample_catalog(catalog, fraction=0.1, seed=day)
        assert _export(catalog, repo, *(("--sign-key", key.path) if key else ()), day=day) == 0
    capsys.readouterr()

    assert main(["log", "--repo", str(repo), "--allowed-signers", str(allowed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    statuses = [line.split("  ")[3] for line in lines]
    assert statuses[0] == "signed by bob@example.org"
    assert statuses[1].startswith("UNKNOWN KEY SHA256:")
    assert statuses[2] == "signed by alice@example.org"
    assert statuses[3] == "UNSIGNED"

    assert main(["log", "--repo", str(repo), "--allowed-signers", str(allowed), "--json", "-n", "2"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["signature"]["status"] for e in entries] == ["good", "unknown-key"]
    assert entries[0]["signature"]["principals"] == ["bob@example.org"]
    assert entries[1]["signature"]["key"].startswith("SHA256:")

    assert main(["log", "--repo", str(repo), "--json"]) == 0
    assert all("signature" not in e for e in json.loads(capsys.readouterr().out))


def test_consumer_setup_makes_git_pull_refuse_an_unsigned_snapshot(
    tmp_path: Path, catalog: Path, ssh_keys: SshKeys, allowed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"
    assert _export(catalog, repo, "--sign-key", ssh_keys.ed25519.path) == 0
    consumer, plain = tmp_path / "consumer", tmp_path / "plain"
    git("clone", "--quiet", repo, consumer)
    git("clone", "--quiet", repo, plain)
    assert main(["consumer-setup", str(consumer), "--allowed-signers", str(allowed)]) == 0
    out = capsys.readouterr().out
    assert "git pull now refuses snapshots without a good signature" in out
    assert "git config merge.verifySignatures true" in out
    assert git("-C", consumer, "config", "gpg.ssh.allowedSignersFile").stdout.strip() == str(allowed.resolve())

    mutate_sample_catalog(catalog, fraction=0.1, seed=1)
    assert _export(catalog, repo, "--sign-key", ssh_keys.rsa.path, day=2) == 0
    assert git("-C", consumer, "pull", "--quiet", "--ff-only", check=False).returncode == 0
    signed_head = git("-C", consumer, "rev-parse", "HEAD").stdout.strip()

    mutate_sample_catalog(catalog, fraction=0.1, seed=2)
    assert _export(catalog, repo, day=3) == 0  # unsigned
    refused = git("-C", consumer, "pull", "--ff-only", check=False)
    assert refused.returncode != 0 and "does not have a GPG signature" in refused.stderr
    assert git("-C", consumer, "rev-parse", "HEAD").stdout.strip() == signed_head

    # Without consumer-setup: git's own flags refuse it the same way.
    pull = ["-C", plain, "-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "pull", "--ff-only"]
    refused = git(*pull, "--verify-signatures", check=False)
    assert refused.returncode != 0 and "does not have a GPG signature" in refused.stderr
    assert git(*pull, check=False).returncode == 0  # and without the flag git takes it


def test_sign_key_from_the_environment_and_the_usage_errors(
    tmp_path: Path, catalog: Path, ssh_keys: SshKeys, allowed: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "snapshots.git"
    assert _export(catalog, repo) == 0  # the repository starts unsigned
    monkeypatch.setenv("SNAPBUILD_SIGN_KEY", str(ssh_keys.ed25519.path))
    capsys.readouterr()
    assert _export(catalog, repo, day=2) == 0
    assert "note: " in capsys.readouterr().out  # unchanged content: no new commit, so still unsigned, and it says so

    mutate_sample_catalog(catalog, fraction=0.1, seed=3)
    assert _export(catalog, repo, day=3) == 0
    assert "signed with ED25519 key" in capsys.readouterr().out
    assert _git_verify_commit(repo, allowed).returncode == 0

    # The variable is ignored without --commit; the flag is an error there.
    assert main(["export", "--db", str(catalog), "--target-dir", str(tmp_path / "dir")]) == 0
    capsys.readouterr()
    assert main(["export", "--db", str(catalog), "--target-dir", str(tmp_path / "dir"), "--sign-key", "k"]) == 2
    assert _one_error_line(capsys) == "snapbuild: error: --repo, --author, --push and --sign-key need --commit"

    fresh = tmp_path / "fresh.git"
    assert _export(catalog, fresh, "--sign-key", tmp_path / "nope") == 2
    assert _one_error_line(capsys).startswith(f"snapbuild: error: --sign-key {tmp_path / 'nope'}: No such file")
    assert not fresh.exists()  # refused before anything was exported or created

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert _export(catalog, fresh, "--sign-key", ssh_keys.protected.path) == 2
    assert "is protected by a passphrase, so ssh-agent must sign with it" in _one_error_line(capsys)


def test_allowed_signers_errors_name_the_flag_and_the_line(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"
    assert _export(catalog, repo) == 0
    broken = write_allowed(tmp_path / "broken", "alice@example.org namespaces=git ssh-ed25519 AAAA")
    for args in (
        ["verify", "--repo", str(repo), "--allowed-signers", str(broken)],
        ["log", "--repo", str(repo), "--allowed-signers", str(broken)],
        ["consumer-setup", str(tmp_path), "--allowed-signers", str(broken)],
    ):
        capsys.readouterr()
        assert main(args) == 2
        assert _one_error_line(capsys) == (
            f"snapbuild: error: --allowed-signers {broken} line 1: option value: missing start quote"
        )
    capsys.readouterr()
    assert main(["verify", str(tmp_path), "--allowed-signers", str(broken)]) == 2
    assert _one_error_line(capsys) == "snapbuild: error: --rev and --allowed-signers need --repo"
