"""Progress of the long steps on a terminal: a bar per step once it has run a while, and git's own progress.

Only on a terminal and without ``--quiet`` (:func:`terminal_progress`
returns None otherwise), on stderr, so that stdout stays the command's
result. A step that ends within the delay (2 s, or
``SNAPBUILD_PROGRESS_DELAY`` seconds) shows nothing, like git's own
progress (``GIT_PROGRESS_DELAY``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import click

#: Seconds a step runs before its bar appears.
DEFAULT_DELAY = 2.0
_STATUS_INTERVAL = 0.1


class TerminalProgress:
    """Render the core's progress callbacks on a terminal stream.

    ``progress(stage, done, total)`` (the export's stages, then ``"commit"``
    in bytes) draws one bar per step; :meth:`git_text` passes git's own
    progress output through; :meth:`status` shows one-line messages (dulwich's)
    in place.
    """

    def __init__(self, stream: TextIO, *, delay: float = DEFAULT_DELAY, clock: Callable[[], float] = time.monotonic):
        self._stream = stream
        self._delay = delay
        self._clock = clock
        self._step: str | None = None
        self._started = 0.0
        self._bar: Any = None
        self._shown = 0
        self._status_at = 0.0
        self._status_width = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        step = "commit" if stage == "commit" else "export"
        if step != self._step:
            self._end_bar()
            self._step, self._started = step, self._clock()
        if self._bar is None:
            if self._clock() - self._started < self._delay:
                return
            self._bar = click.progressbar(
                length=max(total, 1), label=step, file=self._stream, show_eta=step == "commit",
                item_show_func=(lambda item: item) if step == "export" else None,
            )
            self._shown = 0
        self._bar.update(max(done - self._shown, 0), current_item=stage)
        self._shown = max(done, self._shown)

    def git_text(self, chunk: str) -> None:
        """Pass a piece of git's progress output (lines ending in CR or LF, drawn for a terminal) through."""
        self._end_bar()
        self._stream.write(chunk)
        self._stream.flush()

    def status(self, message: str) -> None:
        """Show a one-line message in place of the last one, at most ten times a second."""
        now = self._clock()
        if now - self._status_at < _STATUS_INTERVAL:
            return
        self._status_at = now
        self._end_bar()
        line = (message.splitlines() or [""])[0][: _width(self._stream)]
        self._stream.write("\r" + line.ljust(self._status_width))
        self._status_width = len(line)
        self._stream.flush()

    def close(self) -> None:
        """Finish what is on the screen (a bar, a status line), so the next output starts on its own line."""
        self._end_bar()
        if self._status_width:
            self._stream.write("\n")
            self._stream.flush()
            self._status_width = 0

    def _end_bar(self) -> None:
        if self._bar is not None:
            self._bar.render_finish()
            self._bar = None


def _width(stream: TextIO) -> int:
    """Columns a status line may use on ``stream``'s terminal."""
    try:
        return max(os.get_terminal_size(stream.fileno()).columns - 1, 20)
    except (AttributeError, OSError, ValueError):
        return 79


def terminal_progress(quiet: bool) -> TerminalProgress | None:
    """A progress display on stderr when it is a terminal and ``--quiet`` was not given, else None."""
    stream = sys.stderr
    if quiet or stream is None or not stream.isatty():
        return None
    try:
        delay = float(os.environ.get("SNAPBUILD_PROGRESS_DELAY", DEFAULT_DELAY))
    except ValueError:
        delay = DEFAULT_DELAY
    return TerminalProgress(stream, delay=delay)


def quiet_option(*, json: bool = False) -> Callable[[Any], Any]:
    """``-q/--quiet``: no progress and no summary, only errors (and, where the command has ``--json``, its output)."""
    also = " (and what --json asks for)" if json else ""
    return click.option("-q", "--quiet", is_flag=True, help=f"No progress and no summary: only errors{also}.")
