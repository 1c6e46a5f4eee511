"""`snapbuild export --commit --notify`: real exports, a real receiver on 127.0.0.1, the documented receiver run for real."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.notify import STATE_NAME
from snapbuild.sample import mutate_sample_catalog
from tests.conftest import stop_process

from .notify_support import receiver
from .repo_support import git

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "notify_receiver.py"
SECRET = "notify-secret-0123456789abcdef0123456789"
T1, T2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "notify-secret.txt"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


def export(source: Path, repo: Path, secret_file: Path, *extra: str, at: str = T1) -> int:
    return main(["export", "--db", str(source), "--commit", "--repo", str(repo), "--generated-at", at,
                 "--notify-secret-file", str(secret_file), *extra])


def test_each_receiver_is_told_once_and_the_output_says_so(
    tmp_path: Path, sample_catalog: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, remote = tmp_path / "snapshots.git", tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    with receiver() as server:
        a, b = server.url("/a"), server.url("/b")
        assert export(sample_catalog, repo, secret_file, "--push", str(remote), "--notify", a, "--notify", b) == 0
        out, err = capsys.readouterr()
        snapshot_id = json.loads(git("--git-dir", repo, "show", "main:manifest.json").stdout)["snapshot_id"]
        assert out.splitlines()[-1] == f"notified {snapshot_id} to {a} (HTTP 204), {b} (HTTP 204)"
        assert err == ""

        again = export(sample_catalog, repo, secret_file, "--push", str(remote), "--notify", a, "--notify", b, at=T2)
        assert again == 0
        out = capsys.readouterr().out
        assert out.startswith(f"unchanged {snapshot_id}") and "notified" not in out
    assert [len(server.posts(p)) for p in ("/a", "/b")] == [1, 1]
    body = server.posts("/a")[0].body
    assert server.posts("/a")[0].headers["x-snapbuild-signature-256"] == (
        "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    assert json.loads(body)["commit"] == git("--git-dir", remote, "rev-parse", "main").stdout.strip()


def test_a_receiver_not_reached_exits_3_in_one_line_and_the_next_run_tells_it(
    tmp_path: Path, sample_catalog: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"
    with receiver() as server:
        server.scripts["/refuses"] = [401, 204]
        refuses, takes = server.url("/refuses"), server.url("/takes")

        assert export(sample_catalog, repo, secret_file, "--notify", refuses, "--notify", takes) == 3
        out, err = capsys.readouterr()
        head = git("--git-dir", repo, "rev-parse", "main").stdout.strip()
        snapshot_id = json.loads(git("--git-dir", repo, "show", "main:manifest.json").stdout)["snapshot_id"]
        assert f"committed {snapshot_id}" in out  # the commit stands and is said first
        assert out.splitlines()[-1] == f"notified {snapshot_id} to {takes} (HTTP 204)"
        assert err == (
            f"snapbuild: error: notifying 1 of 2 receivers of {snapshot_id} failed: "
            f"{refuses}: HTTP 401 Unauthorized (1 attempt); "
            "the snapshot is committed, and the next run notifies them again\n"
        )

        assert export(sample_catalog, repo, secret_file, "--notify", refuses, "--notify", takes, at=T2) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[-1] == f"notified {snapshot_id} to {refuses} (HTTP 204)"
    assert git("--git-dir", repo, "rev-parse", "main").stdout.strip() == head
    assert [len(server.posts(p)) for p in ("/refuses", "/takes")] == [2, 1]
    assert all(json.loads(r.body)["commit"] == head for r in server.requests)
    assert SECRET not in (repo / STATE_NAME).read_text(encoding="utf-8")


def test_notify_options_are_checked_before_anything_runs(
    tmp_path: Path, sample_catalog: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n", encoding="utf-8")
    url = "http://127.0.0.1:9/hook"
    base = ["export", "--db", str(sample_catalog), "--repo", str(repo)]
    cases = {
        "--notify needs --commit":
            ["export", "--db", str(sample_catalog), "--target-dir", str(tmp_path / "t"), "--notify", url],
        "--notify needs --notify-secret-file: every notice is signed with the shared secret":
            [*base, "--commit", "--notify", url],
        f"--notify-secret-file {empty} is empty: put the secret shared with the receivers in it":
            [*base, "--commit", "--notify", url, "--notify-secret-file", str(empty)],
        "invalid --notify 'ftp://host/hook': expected http://HOST/PATH or https://HOST/PATH, "
        "other characters percent-encoded":
            [*base, "--commit", "--notify", "ftp://host/hook", "--notify-secret-file", str(secret_file)],
        "--notify-secret-file needs --notify": [*base, "--commit", "--notify-secret-file", str(secret_file)],
    }
    for message, argv in cases.items():
        assert main(argv) == 2, message
        assert capsys.readouterr().err == f"snapbuild: error: {message}\n"
    assert main([*base, "--commit", "--notify", url, "--notify-timeout", "0"]) == 2
    capsys.readouterr()
    assert not repo.exists() and not (tmp_path / "t").exists()


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "3 the snapshot is committed (and pushed) but a receiver was not told" in text
    assert "--notify URL" in text and "--notify-secret-file" in text


# --------------------------------------------------------------------------- the documented receiver


def test_the_consumer_docs_show_the_receiver_that_is_tested() -> None:
    docs = (ROOT / "docs" / "consumers.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.S)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks
    assert "hmac.compare_digest" in EXAMPLE.read_text(encoding="utf-8")


def _start_receiver(clone: Path, secret_file: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), str(clone), str(secret_file), "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )
    line = process.stdout.readline() if process.stdout else ""
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    if match is None:
        stop_process(process)
        raise AssertionError(f"the receiver did not start: {line!r} {process.stderr.read() if process.stderr else ''}")
    return process, f"http://127.0.0.1:{match[1]}/snapbuild"


def _wait_for_head(clone: Path, commit: str) -> str:
    deadline = time.monotonic() + 60
    while (head := git("-C", clone, "rev-parse", "HEAD").stdout.strip()) != commit and time.monotonic() < deadline:
        time.sleep(0.1)
    return head


def test_the_documented_receiver_pulls_on_a_signed_notice_and_refuses_a_forged_one(
    tmp_path: Path, sample_catalog: Path, secret_file: Path
) -> None:
    repo, remote, clone = tmp_path / "snapshots.git", tmp_path / "remote.git", tmp_path / "consumer"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}

    def export_process(at: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "snapbuild", "export", "--db", str(sample_catalog), "--commit", "--repo", str(repo),
             "--generated-at", at, "--push", str(remote), *extra],
            capture_output=True, text=True, encoding="utf-8", env=env, timeout=300,
        )

    assert export_process(T1).returncode == 0
    git("clone", "--quiet", remote, clone)
    first = git("-C", clone, "rev-parse", "HEAD").stdout.strip()
    process, url = _start_receiver(clone, secret_file)
    try:
        mutate_sample_catalog(sample_catalog, fraction=0.1, seed=12)
        done = export_process(T2, "--notify", url, "--notify-secret-file", str(secret_file))
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        second = git("--git-dir", remote, "rev-parse", "main").stdout.strip()
        assert second != first and _wait_for_head(clone, second) == second

        # A notice with a wrong signature is refused and pulls nothing.
        mutate_sample_catalog(sample_catalog, fraction=0.1, seed=13)
        assert export_process("2026-01-03T00:00:00Z").returncode == 0
        body = json.dumps({"event": "snapshot"}).encode()
        forged = urllib.request.Request(url, data=body, method="POST", headers={
            "X-Snapbuild-Signature-256": "sha256=" + hmac.new(b"wrong", body, hashlib.sha256).hexdigest()})
        for _ in range(2):  # one request at a time: the second answer comes after the first was handled
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(forged, timeout=30)
            assert refused.value.code == 403
        assert git("-C", clone, "rev-parse", "HEAD").stdout.strip() == second

        # The next new snapshot is announced, and the receiver pulls up to it.
        mutate_sample_catalog(sample_catalog, fraction=0.1, seed=14)
        done = export_process("2026-01-04T00:00:00Z", "--notify", url, "--notify-secret-file", str(secret_file))
        assert done.returncode == 0, done.stderr
        third = git("--git-dir", remote, "rev-parse", "main").stdout.strip()
        assert _wait_for_head(clone, third) == third
    finally:
        stop_process(process)
    assert process.stderr is not None and SECRET not in process.stderr.read()


def test_a_notification_failure_is_exit_status_3_of_the_process(
    tmp_path: Path, sample_catalog: Path, secret_file: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    with receiver() as server:
        server.scripts["/hook"] = [404]
        done = subprocess.run(
            [sys.executable, "-m", "snapbuild", "export", "--db", str(sample_catalog), "--commit",
             "--repo", str(tmp_path / "snapshots.git"), "--notify", server.url(),
             "--notify-secret-file", str(secret_file)],
            capture_output=True, text=True, encoding="utf-8", env=env, timeout=300,
        )
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "HTTP 404 Not Found" in done.stderr
    assert SECRET not in done.stdout + done.stderr
