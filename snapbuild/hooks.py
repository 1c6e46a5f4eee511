"""Git hooks that keep a consumer's ``catalog_read.db`` assembled: after every clone checkout, pull and switch of snapshot.

Three hooks run the same thing: ``post-checkout`` (``git clone``,
``git checkout``, ``git switch``), ``post-merge`` (``git pull``, ``git
merge``) and ``post-rewrite`` (``git pull --rebase``, ``git rebase``). Each
is a POSIX sh script (Git for Windows runs hooks through the sh it bundles)
that starts ``snapbuild-assemble.py``, a copy of the standard-library
assembler written beside it, with the first Python 3.8+ it finds: the
interpreter named at setup (by absolute path), else ``python3``, ``python``,
or the Windows launcher ``py -3`` on ``PATH``. The hooks run snapbuild's
own code as installed, never code from the repository they update. In a
snapshot committed whole they do nothing.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from .assemble import DB_NAME, PARTS_DIR, own_source
from .errors import RepoError

#: The hooks written, in the order git documents them.
HOOK_NAMES = ("post-checkout", "post-merge", "post-rewrite")
#: The assembler's name in the hooks directory.
ASSEMBLER_HOOK = "snapbuild-assemble.py"
#: The line that marks a hook as snapbuild's (a hook without it is the user's and is never overwritten).
MARKER = "# snapbuild consumer hook"

_HOOK = """#!/bin/sh
{marker} ({name}): assemble {db} from {parts}/ after git moved the work tree.
# Written by 'snapbuild consumer-setup'; run it again to update this file.
{skip}assembler="${{0%/*}}/{assembler}"
run() {{ exec "$@" "$assembler" --hook; }}
{preferred}for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 8))' >/dev/null 2>&1; then
        run "$candidate"
    fi
done
if command -v py >/dev/null 2>&1; then run py -3; fi
echo "snapbuild {name} hook: no Python 3.8 or later found; {db} was not assembled (run: python3 assemble.py)" >&2
exit 1
"""

# post-checkout: $3 is 0 when only files were checked out; $1 = $2 when HEAD did not move.
_SKIP_POST_CHECKOUT = (
    "# Nothing to do for a checkout of files ($3 = 0), or when HEAD stayed where it was.\n"
    '[ "$3" = 0 ] && exit 0\n'
    f'[ "$1" = "$2" ] && [ -f {DB_NAME} ] && exit 0\n'
)


def hook_script(name: str, interpreter: str | None) -> str:
    """The text of hook ``name``; ``interpreter`` (an absolute path, or None) is tried first.

    Args:
        name: one of :data:`HOOK_NAMES`.
        interpreter: the Python to try before searching ``PATH``, written with
            forward slashes (sh on Windows reads ``C:/...``).
    """
    preferred = ""
    if interpreter:
        quoted = shlex.quote(interpreter)
        preferred = f"if [ -x {quoted} ]; then run {quoted}; fi\n"
    return _HOOK.format(
        marker=MARKER,
        name=name,
        db=DB_NAME,
        parts=PARTS_DIR,
        skip=_SKIP_POST_CHECKOUT if name == "post-checkout" else "",
        assembler=ASSEMBLER_HOOK,
        preferred=preferred,
    )


def install_hooks(hooks_dir: Path, interpreter: str | None) -> list[Path]:
    """Write the three hooks and the assembler into ``hooks_dir`` (created if missing); return the hooks' paths.

    Files are written with LF line ends (sh on Windows refuses CR) and made
    executable. A hook of the same name that snapbuild did not write is never
    overwritten.

    Raises:
        RepoError: such a hook exists (nothing is written then), or the directory cannot be written.
    """
    hooks = [hooks_dir / name for name in HOOK_NAMES]
    for path in hooks:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError as error:
            raise RepoError(f"cannot read the hook {path}: {error.strerror}", path=path) from None
        if MARKER not in text:
            raise RepoError(
                f"{path} is a hook snapbuild did not write; move it aside (or make it run "
                f"'{hooks_dir.as_posix()}/{ASSEMBLER_HOOK} --hook' with Python 3) and run the setup again",
                path=path,
            )
    try:
        hooks_dir.mkdir(parents=True, exist_ok=True)
        (hooks_dir / ASSEMBLER_HOOK).write_bytes(own_source())
        for path in hooks:
            path.write_bytes(hook_script(path.name, interpreter).encode("utf-8"))
            mode = path.stat().st_mode
            os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError as error:
        raise RepoError(f"cannot write the hooks in {hooks_dir}: {error.strerror}", path=hooks_dir) from None
    return hooks
