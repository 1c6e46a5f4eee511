"""A bare remote that behaves like the big git forges, for the forge tests and ``benchmarks/bench_commit.py``.

GitHub refuses a push that holds a file over 100 MiB (its pre-receive
check); GitLab's Gitaly and Gerrit's JGit set ``core.bigFileThreshold`` to
50 MB, so git never deltifies bigger blobs when it serves a fetch. The
remote made here does both, at any scale: a ``pre-receive`` hook refuses
every new blob over ``refuse_above`` bytes with a message like GitHub's,
and the repository's config sets ``core.bigFileThreshold``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: The real forges' figures.
GITHUB_REFUSE_ABOVE = 100 << 20
FORGE_BIG_FILE_THRESHOLD = 50 << 20

_PRE_RECEIVE = '''#!{python}
"""Refuse a push holding a blob over {limit} bytes, as GitHub does over 100 MiB."""
import subprocess
import sys

ZERO = "0" * 40
for line in sys.stdin:
    old, new, ref = line.split()
    if new == ZERO:
        continue
    listed = subprocess.run(["git", "rev-list", "--objects", new, "--not", "--all"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    paths = {{entry.split(" ", 1)[0]: entry.partition(" ")[2] for entry in listed}}
    checked = subprocess.run(["git", "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
                             input="".join(name + "\\n" for name in paths), capture_output=True, text=True,
                             check=True).stdout.splitlines()
    for entry in checked:
        name, kind, size = entry.split()
        if kind == "blob" and int(size) > {limit}:
            print(f"error: File {{paths[name]}} is {{int(size)}} bytes; this exceeds the file size limit of "
                  f"{limit} bytes", file=sys.stderr)
            sys.exit(1)
'''


def make_forge_remote(path: Path, *, refuse_above: int | None, big_file_threshold: int) -> Path:
    """Create a bare repository at ``path`` that refuses blobs over ``refuse_above`` (None: no limit).

    Args:
        refuse_above: the pre-receive limit in bytes (None: accept any size, as GitLab does by default).
        big_file_threshold: its ``core.bigFileThreshold`` in bytes.
    """
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    subprocess.run(["git", "--git-dir", str(path), "config", "core.bigFileThreshold", str(big_file_threshold)],
                   check=True)
    if refuse_above is not None:
        hook = path / "hooks" / "pre-receive"
        hook.write_text(_PRE_RECEIVE.format(python=sys.executable, limit=refuse_above), encoding="utf-8")
        hook.chmod(0o755)
    return path
