"""Notifications of new snapshots: signed delivery to a real receiver on 127.0.0.1, retries, who was told."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from pathlib import Path

import pytest

from snapbuild.errors import UsageError
from snapbuild.notify import (
    SIGNATURE_HEADER,
    STATE_NAME,
    Notifier,
    announce,
    check_url,
    display_url,
    notification_body,
    post,
)
from snapbuild.pipeline import export_and_commit
from snapbuild.sample import mutate_sample_catalog
from tests.conftest import require_tool, self_signed_certificate

from .notify_support import HANG, receiver, refused_url
from .repo_support import git

SECRET = b"a shared secret \xe6\xb5\xb7 of some length"
T1, T2, T3 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


class Sleeps(list):
    """Stands in for ``time.sleep``: records each delay instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def notifier(*urls: str, delays: tuple[float, ...] = (0.5, 2.0, 8.0), timeout: float = 5.0) -> Notifier:
    return Notifier(tuple(urls), SECRET, sleep=Sleeps(), timeout=timeout, delays=delays)


SNAPSHOT = {
    "commit": "c" * 40, "snapshot_id": "snap-0123456789abcdef", "generated_at": T1,
    "counts": {"track_count": 3}, "table_counts": {"catalog_tracks": 3}, "changes": {"catalog_tracks": 1},
    "parent_snapshot_id": "snap-fedcba9876543210",
}


def test_the_notice_is_signed_json_that_a_receiver_can_check() -> None:
    body = notification_body(SNAPSHOT, "p" * 40)
    with receiver() as server:
        delivery = post(server.url(), body, notifier(server.url()))
    assert delivery.ok and delivery.status == 204 and delivery.attempts == 1
    (seen,) = server.posts()
    assert seen.body == body
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-snapbuild-event"] == "snapshot"
    expected = "sha256=" + hmac.new(SECRET, seen.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(seen.headers[SIGNATURE_HEADER.lower()], expected)
    assert json.loads(body) == {
        "event": "snapshot", "snapshot_id": "snap-0123456789abcdef", "commit": "c" * 40,
        "previous_commit": "p" * 40, "previous_snapshot_id": "snap-fedcba9876543210", "generated_at": T1,
        "counts": {"track_count": 3}, "table_counts": {"catalog_tracks": 3}, "changes": {"catalog_tracks": 1},
    }
    assert notification_body(dict(SNAPSHOT), "p" * 40) == body  # the same snapshot, the same bytes


def test_5xx_answers_are_retried_after_the_given_delays() -> None:
    with receiver() as server:
        server.scripts["/hook"] = [500, 503, 204]
        settings = notifier(server.url())
        delivery = post(server.url(), b"{}", settings)
    assert delivery.ok and delivery.attempts == 3 and delivery.status == 204
    assert settings.sleep == [0.5, 2.0]
    assert len(server.posts()) == 3


def test_5xx_until_the_retries_run_out_is_a_failure() -> None:
    with receiver() as server:
        server.scripts["/hook"] = [502]
        settings = notifier(server.url())
        delivery = post(server.url(), b"{}", settings)
    assert not delivery.ok and delivery.attempts == 4 and delivery.status == 502
    assert delivery.error == "HTTP 502 Bad Gateway"
    assert settings.sleep == [0.5, 2.0, 8.0]


@pytest.mark.parametrize(("status", "reason"), [(403, "HTTP 403 Forbidden"), (410, "HTTP 410 Gone"),
                                                (302, "HTTP 302 Found (redirects are not followed)")])
def test_4xx_and_redirects_are_not_retried(status: int, reason: str) -> None:
    with receiver() as server:
        server.scripts["/hook"] = [status]
        settings = notifier(server.url())
        delivery = post(server.url(), b"{}", settings)
    assert (delivery.ok, delivery.attempts, delivery.status, delivery.error) == (False, 1, status, reason)
    assert settings.sleep == [] and len(server.requests) == 1


def test_a_refused_connection_is_retried_then_reported() -> None:
    url = refused_url()
    settings = notifier(url, delays=(0.0, 0.0))
    delivery = post(url, b"{}", settings)
    assert (delivery.ok, delivery.attempts, delivery.status, delivery.error) == (False, 3, None, "connection refused")
    assert settings.sleep == [0.0, 0.0]


def test_a_receiver_that_never_answers_times_out_and_is_retried() -> None:
    with receiver() as server:
        server.scripts["/hook"] = [HANG, 204]
        delivery = post(server.url(), b"{}", notifier(server.url(), delays=(0.0,), timeout=0.3))
    assert delivery.ok and delivery.attempts == 2
    with receiver() as server:
        server.scripts["/hook"] = [HANG]
        delivery = post(server.url(), b"{}", notifier(server.url(), delays=(0.0,), timeout=0.3))
    assert (delivery.ok, delivery.attempts, delivery.error) == (False, 2, "no answer within 0.3 s")


def test_https_receivers_must_present_a_trusted_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = self_signed_certificate(require_tool("openssl"), tmp_path)
    with receiver(tls) as server:
        settings = notifier(server.url())
        refused = post(server.url(), b"{}", settings)
        assert not refused.ok and refused.attempts == 1 and refused.error is not None
        assert refused.error.startswith("certificate not trusted")
        assert server.requests == []

        # An operator's own CA goes in through OpenSSL's usual variable, not a switch that turns checking off.
        monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))
        assert post(server.url(), b"{}", settings).ok
    assert len(server.requests) == 1


def test_urls_are_checked_and_shown_without_credentials() -> None:
    assert check_url("https://hooks.example/a?b=c") == "https://hooks.example/a?b=c"
    assert check_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"
    for bad in ("ftp://host/x", "hooks.example/a", "http:///path", "http://host:99999/", "http://host/a b",
                "http://host/海"):
        with pytest.raises(UsageError) as caught:
            check_url(bad)
        assert caught.value.argument == "notification URL"
    assert display_url("https://user:token@hooks.example:8443/p/x?key=token") == "https://hooks.example:8443/p/x?..."
    assert "secret" not in repr(Notifier(("http://h/",), b"secret", sleep=Sleeps()))


def test_every_receiver_is_posted_and_only_the_ones_not_reached_are_posted_again(tmp_path: Path) -> None:
    git_dir = tmp_path / "repo.git"
    git_dir.mkdir()
    with receiver() as server:
        server.scripts["/down"] = [500, 500, 204]
        urls = (server.url("/down"), server.url("/up"), server.url("/up"))
        settings = notifier(*urls, delays=())

        first = announce(git_dir, SNAPSHOT, None, settings, new=True)
        assert [(d.url, d.ok) for d in first.deliveries] == [(urls[0], False), (urls[1], True)]
        error = first.error()
        assert error is not None and error.urls == (urls[0],) and error.snapshot_id == SNAPSHOT["snapshot_id"]
        assert str(error).count("\n") == 0 and urls[0] in str(error) and "/up" not in str(error)

        # Unchanged runs: the down receiver is owed the notice, the other one is not posted again.
        second = announce(git_dir, SNAPSHOT, None, settings, new=False)
        assert [(d.url, d.ok) for d in second.deliveries] == [(urls[0], False)]
        third = announce(git_dir, SNAPSHOT, None, settings, new=False)
        assert [(d.url, d.ok) for d in third.deliveries] == [(urls[0], True)] and third.error() is None

        assert announce(git_dir, SNAPSHOT, None, settings, new=False).deliveries == ()
        newer = {**SNAPSHOT, "commit": "d" * 40, "snapshot_id": "snap-1111111111111111"}
        assert [d.url for d in announce(git_dir, newer, "c" * 40, settings, new=True).deliveries] == list(urls[:2])
    assert [len(server.posts(path)) for path in ("/down", "/up")] == [4, 2]
    record = (git_dir / STATE_NAME).read_text(encoding="utf-8")
    assert "127.0.0.1" not in record and SECRET.decode("utf-8") not in record


def test_an_unchanged_run_tells_nobody_who_is_not_owed_a_notice(tmp_path: Path) -> None:
    """A receiver added on an unchanged run, or after a damaged record, hears of the next new snapshot only."""
    git_dir = tmp_path / "repo.git"
    git_dir.mkdir()
    with receiver() as server:
        assert announce(git_dir, SNAPSHOT, None, notifier(server.url("/new")), new=False).deliveries == ()
        server.scripts["/flaky"] = [500, 204]
        announce(git_dir, SNAPSHOT, None, notifier(server.url("/flaky"), delays=()), new=True)
        (git_dir / STATE_NAME).write_text("{not json", encoding="utf-8")
        assert announce(git_dir, SNAPSHOT, None, notifier(server.url("/flaky")), new=False).deliveries == ()
    assert server.posts("/new") == [] and len(server.posts("/flaky")) == 1


# --------------------------------------------------------------------------- whole runs


def test_after_commit_and_push_each_new_snapshot_is_announced_once(tmp_path: Path, sample_catalog: Path) -> None:
    repo, remote = tmp_path / "snapshots.git", tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    on_remote: list[str] = []
    with receiver() as server:
        # What a consumer could pull at the moment the notice arrives.
        server.on_request = lambda _: on_remote.append(git("--git-dir", remote, "rev-parse", "main").stdout.strip())
        settings = notifier(server.url())

        def run(generated_at: str):  # noqa: ANN202
            return export_and_commit(sample_catalog, repo, generated_at=generated_at, push_to=str(remote),
                                     git=shutil.which("git"), notifier=settings)

        first = run(T1)
        mutate_sample_catalog(sample_catalog, fraction=0.1, seed=8)
        second = run(T2)
        unchanged = run(T3)

    assert [d.ok for d in first.notified.deliveries] == [True] and first.notified.error() is None
    assert not unchanged.committed.changed and unchanged.notified.deliveries == ()
    assert on_remote == [first.committed.commit, second.committed.commit]
    notices = [json.loads(r.body) for r in server.posts()]
    assert len(notices) == 2
    for notice, run_ in zip(notices, (first, second)):
        manifest = run_.exported.manifest
        tagged = git("--git-dir", repo, "rev-parse", manifest.snapshot_id).stdout.strip()
        assert notice["commit"] == run_.committed.commit == tagged
        assert notice["snapshot_id"] == manifest.snapshot_id
        assert notice["generated_at"] == manifest.generated_at
        assert notice["counts"] == manifest.counts and notice["table_counts"] == manifest.table_counts
    assert notices[0]["previous_commit"] is None and notices[0]["previous_snapshot_id"] is None
    assert notices[1]["previous_commit"] == first.committed.commit
    assert notices[1]["previous_snapshot_id"] == first.exported.manifest.snapshot_id
    old, new = first.exported.manifest.table_counts, second.exported.manifest.table_counts
    assert notices[1]["changes"] == {table: new[table] - old[table] for table in new}
    assert any(notices[1]["changes"].values())


def test_a_failed_push_announces_nothing_and_the_next_run_announces_it(tmp_path: Path, sample_catalog: Path) -> None:
    repo, remote = tmp_path / "snapshots.git", tmp_path / "remote.git"
    with receiver() as server:
        settings = notifier(server.url())
        failed = export_and_commit(sample_catalog, repo, generated_at=T1, push_to=str(remote), git=None,
                                   notifier=settings)
        assert failed.push_error is not None and failed.notified is None and server.requests == []

        git("init", "--quiet", "--bare", "--initial-branch=main", remote)
        again = export_and_commit(sample_catalog, repo, generated_at=T2, push_to=str(remote), git=None,
                                  notifier=settings)
    assert not again.committed.changed and again.pushed is not None
    assert [d.ok for d in again.notified.deliveries] == [True]
    assert json.loads(server.posts()[0].body)["commit"] == failed.committed.commit
