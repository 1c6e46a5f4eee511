"""The defaults every entry point shares: where snapshots go, who commits them, how long a writer waits.

Kept apart from the modules that use them so that the command line can show
them in its help without importing git or SQLite machinery.
"""

from __future__ import annotations

from pathlib import Path

#: The snapshot repository a command uses unless told otherwise.
DEFAULT_REPO = Path("snapshots.git")
#: Author and committer of snapshot commits (``Name <email>``).
DEFAULT_AUTHOR = "snapbuild <snapbuild@localhost>"
#: Seconds a writer waits for another writer's repository lock.
DEFAULT_LOCK_TIMEOUT = 600.0
#: Seconds a notification receiver gets to accept the connection and to answer, per attempt.
DEFAULT_NOTIFY_TIMEOUT = 10.0
