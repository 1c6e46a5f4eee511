"""Notifications of new snapshots: one signed JSON document POSTed to each receiver, retried, remembered.

The body is signed like GitHub's webhooks (HMAC-SHA256 of the raw body in
``X-Snapbuild-Signature-256: sha256=<hex>``). Each receiver is posted on its
own: a timeout per attempt, retries after network errors and 5xx answers
(the delays are a parameter, the sleep is the caller's), none after 2xx,
3xx (redirects are not followed) or 4xx. Only a new snapshot is announced;
a receiver that missed its notice (it was down, or the push failed) is
recorded in a small file in the repository's git directory and told on the
next run, even when that run's export is unchanged. Receivers treat a notice
as a hint to pull, never as the data itself.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .defaults import DEFAULT_NOTIFY_TIMEOUT
from .errors import NotifyError, UsageError

#: The header that carries the body's signature.
SIGNATURE_HEADER = "X-Snapbuild-Signature-256"
#: The header (and body field) naming what happened; the only event is a new snapshot.
EVENT_HEADER = "X-Snapbuild-Event"
EVENT = "snapshot"
#: Seconds to wait before each retry: four attempts in all, about 21 s of waiting.
RETRY_DELAYS = (1.0, 4.0, 16.0)
#: The file in the git directory that records the receivers owed a notice (their last one failed).
STATE_NAME = "snapbuild-notified.json"

_USER_AGENT = "snapbuild-notify"
_STATE_VERSION = 2
# Enough of an answer to see that the receiver finished it; the rest is ignored.
_ANSWER_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Notifier:
    """Where and how to announce snapshots.

    Attributes:
        urls: the receivers, each an ``http://`` or ``https://`` URL (see :func:`check_url`).
        secret: the shared secret that signs each body (never shown in a repr or message).
        sleep: waits between attempts (``time.sleep``; tests pass their own).
        timeout: seconds each attempt waits to connect and for each read of the answer.
        delays: seconds before each retry; its length is the number of retries.
        proxies: scheme -> proxy URL (``urllib.request.getproxies()``); empty for none.
    """

    urls: tuple[str, ...]
    secret: bytes = field(repr=False)
    sleep: Callable[[float], None]
    timeout: float = DEFAULT_NOTIFY_TIMEOUT
    delays: tuple[float, ...] = RETRY_DELAYS
    proxies: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """How posting to one receiver ended.

    Attributes:
        url: the receiver, as given.
        attempts: how many times it was posted.
        status: the last HTTP status, or None when no answer came.
        error: why it failed, or None when the receiver accepted it (2xx).
    """

    url: str
    attempts: int
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Announcement:
    """What announcing one snapshot did.

    Attributes:
        snapshot_id: the snapshot announced.
        commit: its commit.
        deliveries: one per receiver posted by this call, in the order given;
            receivers not posted (nothing new, nothing owed) are not listed.
    """

    snapshot_id: str
    commit: str
    deliveries: tuple[Delivery, ...] = ()

    @property
    def failed(self) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if not d.ok)

    def error(self) -> NotifyError | None:
        """The one-line error naming every receiver that was not reached, or None."""
        failed = self.failed
        if not failed:
            return None
        reasons = "; ".join(
            f"{display_url(d.url)}: {d.error} ({d.attempts} attempt{'s' if d.attempts != 1 else ''})" for d in failed
        )
        return NotifyError(
            f"notifying {len(failed)} of {len(self.deliveries)} receivers of {self.snapshot_id} failed: {reasons}; "
            "the snapshot is committed, and the next run notifies them again",
            snapshot_id=self.snapshot_id,
            urls=tuple(d.url for d in failed),
        )


def check_url(url: str) -> str:
    """Return ``url`` if it is an ``http://`` or ``https://`` URL with a host.

    Raises:
        UsageError: it is not (``argument="notification URL"``).
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError as error:
        raise UsageError(f"invalid notification URL {url!r}: {error}", argument="notification URL") from None
    plain = url.isascii() and not any(c.isspace() for c in url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not plain:
        raise UsageError(
            f"invalid notification URL {url!r}: expected http://HOST/PATH or https://HOST/PATH, "
            "other characters percent-encoded",
            argument="notification URL",
        )
    return url


def display_url(url: str) -> str:
    """The URL as messages show it: without user, password or query (they may hold credentials)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" + ("?..." if parts.query else "")


def notification_body(snapshot: Mapping[str, Any], previous_commit: str | None) -> bytes:
    """The JSON document announcing a snapshot: compact, keys sorted, UTF-8, the same for the same snapshot.

    Args:
        snapshot: the snapshot as ``snapshots.HistoryEntry.to_dict()`` gives it.
        previous_commit: the commit of the snapshot before it, None for the first.
    """
    document = {
        "event": EVENT,
        "snapshot_id": snapshot["snapshot_id"],
        "commit": snapshot["commit"],
        "previous_commit": previous_commit,
        "previous_snapshot_id": snapshot["parent_snapshot_id"],
        "generated_at": snapshot["generated_at"],
        "counts": snapshot["counts"],
        "table_counts": snapshot["table_counts"],
        "changes": snapshot["changes"],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(body: bytes, secret: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as it is: the signed body never goes to a host the operator did not name."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(proxies: Mapping[str, str]) -> urllib.request.OpenerDirector:
    # The default context verifies certificates and host names against the system's CAs.
    return urllib.request.build_opener(
        urllib.request.ProxyHandler(dict(proxies)),
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        _NoRedirects(),
    )


def _describe(error: BaseException, timeout: float) -> str:
    """A short reason for a failed attempt (never the body, headers or secret)."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({error.verify_message})"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _attempt(opener: urllib.request.OpenerDirector, url: str, body: bytes, headers: Mapping[str, str],
             timeout: float) -> tuple[int | None, str | None, bool]:
    """Post once: the status (None without an answer), why it failed (None if it did not), whether to retry."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(_ANSWER_LIMIT)
            return answer.status, None, False
    except urllib.error.HTTPError as error:
        error.close()
        reason = f"HTTP {error.code} {error.reason}".rstrip()
        if 300 <= error.code < 400:
            reason += " (redirects are not followed)"
        return error.code, reason, error.code >= 500
    except urllib.error.URLError as error:
        # A certificate that does not verify will not verify a second later.
        permanent = isinstance(error.reason, ssl.SSLCertVerificationError)
        return None, _describe(error, timeout), not permanent
    except (OSError, http.client.HTTPException) as error:
        return None, _describe(error, timeout), True


def post(url: str, body: bytes, notifier: Notifier, *, opener: urllib.request.OpenerDirector | None = None) -> Delivery:
    """POST ``body`` to ``url``, signed, retrying after network errors and 5xx answers as ``notifier`` says."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": _USER_AGENT,
        EVENT_HEADER: EVENT,
        SIGNATURE_HEADER: signature(body, notifier.secret),
    }
    opener = opener or _opener(notifier.proxies)
    attempts = 0
    while True:
        status, error, retry = _attempt(opener, url, body, headers, notifier.timeout)
        attempts += 1
        if not retry or attempts > len(notifier.delays):
            return Delivery(url, attempts, status, error)
        notifier.sleep(notifier.delays[attempts - 1])


def _receiver_key(url: str) -> str:
    # The state file keys receivers by a hash: a URL may carry a token.
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _read_owed(git_dir: Path) -> dict[str, str]:
    """Receiver key -> the commit it is owed a notice of; a missing or damaged file owes nothing."""
    try:
        state = json.loads((git_dir / STATE_NAME).read_text(encoding="utf-8"))
        owed = state["owed"] if state.get("version") == _STATE_VERSION else {}
        return {str(k): str(v) for k, v in owed.items()}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _write_owed(git_dir: Path, owed: Mapping[str, str]) -> None:
    """Replace the record atomically."""
    text = json.dumps({"version": _STATE_VERSION, "owed": dict(sorted(owed.items()))}, indent=1) + "\n"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{STATE_NAME}.", dir=git_dir)
    try:
        with open(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp_name, git_dir / STATE_NAME)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def owe(git_dir: Path, urls: Iterable[str], commit: str) -> None:
    """Remember that ``urls`` are owed a notice of ``commit`` (it could not be sent: the push failed).

    Raises:
        OSError: the record cannot be written.
    """
    owed = _read_owed(git_dir)
    _write_owed(git_dir, {**owed, **{_receiver_key(url): commit for url in urls}})


def announce(
    git_dir: Path, snapshot: Mapping[str, Any], previous_commit: str | None, notifier: Notifier, *, new: bool
) -> Announcement:
    """Tell the receivers about ``snapshot`` (the one ``main`` holds), and remember who still needs telling.

    A new snapshot goes to every receiver. For a snapshot that is not new
    (an unchanged export) only the receivers owed a notice are posted:
    those whose last notice failed, or that a failed push kept from being
    told. Each receiver is posted on its own; one that fails does not stop
    the others and is owed the notice on the next run.

    Args:
        git_dir: the snapshot repository's git directory (holds the record).
        snapshot: the snapshot as ``snapshots.HistoryEntry.to_dict()`` gives it.
        previous_commit: the commit of the snapshot before it, None for the first.
        notifier: the receivers, the secret and the delivery settings.
        new: this run committed ``snapshot``.
    """
    commit = snapshot["commit"]
    owed = _read_owed(git_dir)
    receivers = list(dict.fromkeys(notifier.urls))
    targets = receivers if new else [url for url in receivers if _receiver_key(url) in owed]
    if not targets:
        return Announcement(snapshot["snapshot_id"], commit)
    body = notification_body(snapshot, previous_commit)
    opener = _opener(notifier.proxies)
    deliveries = tuple(post(url, body, notifier, opener=opener) for url in targets)
    for delivery in deliveries:
        key = _receiver_key(delivery.url)
        if delivery.ok:
            owed.pop(key, None)
        else:
            owed[key] = commit
    try:
        _write_owed(git_dir, owed)
    except OSError:
        pass  # the receivers not reached are then told with the next new snapshot
    return Announcement(snapshot["snapshot_id"], commit, deliveries)
