"""Commands over the snapshot history: log, diff, gc."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..defaults import DEFAULT_LOCK_TIMEOUT
from ..errors import UsageError
from .base import cli, human_bytes, repo_option
from .progress import quiet_option, terminal_progress
from .signing import allowed_signers_option, load_signers, signature_status

if TYPE_CHECKING:
    from ..snapshots import HistoryEntry


def _change_summary(entry: HistoryEntry) -> str:
    if entry.shallow:
        return "earlier snapshots are not in this shallow clone"
    if entry.parent_snapshot_id is None:
        return "first snapshot"
    parts = []
    for table, delta in entry.changes.items():
        if delta is None:
            parts.append(f"{table} new")
        elif delta:
            parts.append(f"{table} {delta:+d}")
    return ", ".join(parts) if parts else "same row counts"


def _layout(entry: HistoryEntry) -> str:
    """The split layout of a snapshot, and where it began or changed (nothing for the whole layout)."""
    if not entry.pieces:
        return ""
    from ..parts import format_size

    text = f"  [{entry.pieces} pieces of at most {format_size(entry.part_size)}"
    if entry.parent_part_size == 0 or (entry.parent_snapshot_id is None and not entry.shallow):
        text += "; split from here on"
    elif entry.parent_part_size not in (None, entry.part_size):
        text += f"; part size was {format_size(entry.parent_part_size)}"
    return text + "]"


@cli.command("log")
@repo_option()
@click.option("--rev", default="HEAD", show_default=True, help="Start from this revision.")
@click.option("-n", "--max-count", type=click.IntRange(min=1), default=None, help="Show at most N snapshots.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
@allowed_signers_option("Also show each snapshot's SSH signature status against this allowed-signers file: "
                        "signed by PRINCIPAL, UNSIGNED, UNKNOWN KEY or BAD SIGNATURE.")
def log_command(repo_path: Path, rev: str, max_count: int | None, as_json: bool, allowed_signers: Path | None) -> None:
    """List the snapshots on main, newest first: id, date, counts and row-count changes.

    A snapshot stored as pieces says how many, and the first one says that
    every later snapshot is stored as pieces too.

    With --allowed-signers each line also shows who signed the snapshot, or
    what is wrong with its signature (the exit status stays 0; use verify to
    require a good one).

    Example: snapbuild log --repo snapshots.git -n 5

    Example: snapbuild log --repo catalog --allowed-signers allowed_signers
    """
    from ..snapshots import snapshot_history

    signers = load_signers(allowed_signers) if allowed_signers is not None else None
    entries = snapshot_history(repo_path, rev, limit=max_count, signers=signers)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo(f"no snapshots in {repo_path}")
        return
    for e in entries:
        counts = " ".join(f"{k.removesuffix('_count')}s={v}" for k, v in e.counts.items())
        signed = f"  {signature_status(e.signature)}" if e.signature is not None else ""
        click.echo(
            f"{e.snapshot_id}  {e.generated_at}  {e.commit[:12]}{signed}  {counts}  {_change_summary(e)}{_layout(e)}"
        )


@cli.command("gc")
@repo_option("The snapshot repository to repack.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=DEFAULT_LOCK_TIMEOUT, show_default=True,
              help="Seconds to wait for a running export --commit.")
@quiet_option()
def gc_command(repo_path: Path, lock_timeout: float, quiet: bool) -> None:
    """Repack the snapshot repository (git CLI with deltas if installed, else dulwich).

    dulwich writes every snapshot as a whole loose object; run this now and then
    (e.g. weekly) so the repository and what consumers fetch stay small, right
    before an export rather than right after one (a consumer one snapshot
    behind then still receives a small delta). On a terminal it shows git's
    own progress (or dulwich's).

    Example: snapbuild gc --repo snapshots.git
    """
    from ..git.remote import gc

    progress = terminal_progress(quiet)
    try:
        result = gc(
            repo_path, git=shutil.which("git"), lock_timeout=lock_timeout,
            progress=progress.status if progress is not None else None,
            git_progress_to_stderr=progress is not None,
        )
    finally:
        if progress is not None:
            progress.close()
    if not quiet:
        click.echo(
            f"repacked {repo_path} with {result.tool}: "
            f"{human_bytes(result.size_before)} -> {human_bytes(result.size_after)}"
        )


def _render_key(example: dict[str, object]) -> str:
    return " ".join(f"{column}={json.dumps(value, ensure_ascii=False)}" for column, value in example.items())


@cli.command("diff")
@repo_option()
@click.argument("revs", nargs=-1, metavar="[REV_A [REV_B]]")
@click.option("--examples", type=click.IntRange(min=0), default=5, show_default=True,
              help="Keys shown per table and kind of change.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff_command(repo_path: Path, revs: tuple[str, ...], examples: int, as_json: bool) -> None:
    """Show row-level differences between two snapshots: per table, rows added, removed and changed.

    REV_A and REV_B default to HEAD~1 and HEAD (one revision: REV_A against
    HEAD). Rows are matched by each table's key. Nothing is checked out: the
    two databases are read from git objects into temporary files.

    Example: snapbuild diff --repo snapshots.git HEAD~3 HEAD --json
    """
    from ..pipeline import diff_revisions

    if len(revs) > 2:
        raise UsageError(f"diff takes at most two revisions, got {len(revs)}")
    rev_a = revs[0] if revs else "HEAD~1"
    rev_b = revs[1] if len(revs) > 1 else "HEAD"
    result = diff_revisions(repo_path, rev_a, rev_b, examples=examples)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"{result.from_id} -> {result.to_id}")
    if result.is_empty:
        click.echo("  no row changes")
        return
    for name, table in result.tables.items():
        if table.is_empty:
            click.echo(f"  {name}: unchanged")
            continue
        click.echo(f"  {name}: {table.added} added, {table.removed} removed, {table.changed} changed")
        if table.columns_added or table.columns_removed:
            click.echo(f"    columns: +{list(table.columns_added)} -{list(table.columns_removed)}")
        changed = tuple(
            f"{_render_key(key)} ({', '.join(columns)})" for key, columns in zip(table.changed_examples, table.changed_columns)
        )
        for kind, shown, total in (
            ("added", tuple(map(_render_key, table.added_examples)), table.added),
            ("removed", tuple(map(_render_key, table.removed_examples)), table.removed),
            ("changed", changed, table.changed),
        ):
            if shown:
                more = f"; ... {total - len(shown)} more" if total > len(shown) else ""
                click.echo(f"    {kind + ':':8} " + "; ".join(shown) + more)
