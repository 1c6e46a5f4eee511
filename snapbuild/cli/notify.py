"""The export command's notification options (receivers, secret file, timeout) and the lines it prints about them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from ..defaults import DEFAULT_NOTIFY_TIMEOUT
from ..errors import UsageError

if TYPE_CHECKING:
    from ..notify import Announcement, Notifier

F = TypeVar("F", bound=Callable[..., object])


def notify_options(command: F) -> F:
    """Add ``--notify``, ``--notify-secret-file`` and ``--notify-timeout`` to a command."""
    options = (
        click.option("--notify", "notify_urls", multiple=True, metavar="URL",
                     help="After --commit (and a successful --push), POST a signed JSON notice of the new snapshot "
                          "to URL (http or https); repeat for several receivers."),
        click.option("--notify-secret-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     default=None, help="File holding the secret shared with the receivers; it signs each notice "
                                        "(HMAC-SHA256). Required with --notify."),
        click.option("--notify-timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_NOTIFY_TIMEOUT,
                     show_default=True, help="Seconds each receiver gets to connect and to answer, per attempt."),
    )
    for option in reversed(options):
        command = option(command)
    return command


def read_secret(path: Path) -> bytes:
    """The secret in ``path``: its UTF-8 text without surrounding whitespace, as bytes.

    Raises:
        UsageError: the file cannot be read, is not UTF-8, or holds no secret.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise UsageError(f"cannot read --notify-secret-file {path}: {error.strerror or type(error).__name__}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--notify-secret-file {path} is not UTF-8 text") from None
    secret = text.strip()
    if not secret:
        raise UsageError(f"--notify-secret-file {path} is empty: put the secret shared with the receivers in it")
    return secret.encode("utf-8")


def notifier_from_options(urls: tuple[str, ...], secret_file: Path | None, timeout: float) -> Notifier | None:
    """The notifier the options ask for (None without ``--notify``), checked before anything runs.

    Raises:
        UsageError: a URL is not http(s), the secret file is missing or empty.
    """
    if not urls:
        if secret_file is not None:
            raise UsageError("--notify-secret-file needs --notify")
        return None
    import urllib.request

    from ..notify import Notifier, check_url

    checked = tuple(check_url(url) for url in urls)
    if secret_file is None:
        raise UsageError("--notify needs --notify-secret-file: every notice is signed with the shared secret")
    return Notifier(
        checked, read_secret(secret_file), sleep=time.sleep, timeout=timeout, proxies=urllib.request.getproxies()
    )


def announcement_lines(announcement: Announcement) -> list[str]:
    """The line naming the receivers told (none when nothing was new and nobody was owed a notice)."""
    from ..notify import display_url

    told = [d for d in announcement.deliveries if d.ok]
    if not told:
        return []
    receivers = ", ".join(f"{display_url(d.url)} (HTTP {d.status})" for d in told)
    return [f"notified {announcement.snapshot_id} to {receivers}"]
