"""Benchmark row-level snapshot diffs and the textconv dump against the sqlite3 shell.

Run (Unix, with GNU time at /usr/bin/time for each subprocess's peak RSS):

    python benchmarks/bench_diff.py                    # 1,000,000 tracks, 100,000 playlists
    python benchmarks/bench_diff.py --tracks 100000 --playlists 10000

In one run it generates a sample catalog (cached in ``--data-dir``, default
``./bench-data``), exports it, applies ``mutate_sample_catalog(fraction=0.01)``
to a copy, exports that, commits both snapshots into a fresh repository, and
then times, each as its own process:

- ``diff_databases`` on the two ``catalog_read.db`` files, against the C
  anchor: the ``sqlite3`` shell counting, per table, the rows of each side
  that the other lacks (``SELECT * EXCEPT SELECT *``; no key matching, no
  examples: a floor, not the same job);
- ``snapbuild diff --repo R HEAD~1 HEAD --json`` (both databases streamed out
  of git objects first);
- ``snapbuild textconv`` of one database, against the ``sqlite3`` shell
  printing every table in key order (its default list mode: no quoting, no
  escaping).

It prints wall time, peak RSS and the ratio to each anchor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from snapbuild.sqlite import open_snapshot, table_shapes  # noqa: E402

TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"


def timed(argv: list[str], *, stdout_to_null: bool = True) -> tuple[float, int, bytes]:
    """Run ``argv`` under GNU time: (wall seconds, peak RSS in KiB, stdout unless discarded)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False, encoding="utf-8") as report:
        report_path = Path(report.name)
    started = time.monotonic()
    done = subprocess.run(
        [TIME, "-f", "%M", "-o", str(report_path), *argv],
        stdout=subprocess.DEVNULL if stdout_to_null else subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{done.stderr.decode('utf-8', 'replace')}")
    rss = int(report_path.read_text(encoding="utf-8").split()[-1])
    report_path.unlink()
    return wall, rss, done.stdout or b""


def anchor_except_sql(old: Path, new: Path) -> str:
    """The sqlite3 shell's floor: per table, rows of each side missing from the other."""
    with open_snapshot(new) as conn:
        tables = list(table_shapes(conn))
    lines = [f"ATTACH '{old.as_posix()}' AS a;", f"ATTACH '{new.as_posix()}' AS b;"]
    for table in tables:
        lines.append(f"SELECT '{table}', (SELECT count(*) FROM (SELECT * FROM b.{table} EXCEPT SELECT * FROM a.{table})),"
                     f" (SELECT count(*) FROM (SELECT * FROM a.{table} EXCEPT SELECT * FROM b.{table}));")
    return "\n".join(lines) + "\n"


def anchor_dump_sql(db: Path) -> str:
    with open_snapshot(db) as conn:
        shapes = table_shapes(conn)
    return "".join(
        f"SELECT * FROM \"{shape.name}\" ORDER BY {', '.join(shape.key)};\n" for shape in shapes.values()
    )


def row(label: str, wall: float, rss: int, anchor: float | None = None) -> None:
    ratio = f"{wall / anchor:5.2f}x" if anchor else "  --  "
    print(f"  {label:<48} {wall:7.2f} s  {rss / 1024:7.1f} MiB  {ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--playlists", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path("bench-data"))
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 shell is needed for the anchors")

    from snapbuild import export_snapshot
    from snapbuild.diff import diff_databases
    from snapbuild.snapshots import commit_snapshot
    from snapbuild.sample import mutate_sample_catalog, write_sample_catalog

    args.data_dir.mkdir(parents=True, exist_ok=True)
    source = args.data_dir / f"catalog-{args.tracks}-{args.playlists}-seed{args.seed}.db"
    if not source.exists():
        print(f"generating {source.name} ...", flush=True)
        started = time.monotonic()
        write_sample_catalog(source, tracks=args.tracks, playlists=args.playlists, seed=args.seed)
        print(f"  generated in {time.monotonic() - started:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-diff-", dir=args.data_dir) as tmp:
        work = Path(tmp)
        print("exporting the catalog, mutating 1% of a copy, exporting again ...", flush=True)
        export_snapshot(source, work / "a", generated_at="2026-01-01T00:00:00Z")
        changed = work / "changed.db"
        shutil.copyfile(source, changed)
        change = mutate_sample_catalog(changed, fraction=0.01, seed=1)
        export_snapshot(changed, work / "b", generated_at="2026-01-02T00:00:00Z")
        commit_snapshot(work / "snapshots.git", work / "a")
        commit_snapshot(work / "snapshots.git", work / "b")
        old, new = work / "a" / "catalog_read.db", work / "b" / "catalog_read.db"
        size = new.stat().st_size
        print(f"catalog_read.db: {size / 2**20:.0f} MiB; change: {change.summary()}")

        result = diff_databases(old, new)
        print("rows added / removed / changed: " + json.dumps(
            {name: [t.added, t.removed, t.changed] for name, t in result.tables.items()}))

        print(f"\n  {'':<48} {'wall':>9}  {'peak RSS':>11}  {'ratio':>6}")
        anchor_wall, anchor_rss, _ = timed(["sqlite3", ":memory:", anchor_except_sql(old, new)])
        row("sqlite3 shell: EXCEPT both ways (anchor)", anchor_wall, anchor_rss)
        code = f"from snapbuild.diff import diff_databases; diff_databases({str(old)!r}, {str(new)!r})"
        wall, rss, _ = timed([sys.executable, "-c", code])
        row("diff_databases (files)", wall, rss, anchor_wall)
        wall, rss, _ = timed([sys.executable, "-m", "snapbuild", "diff", "--repo", str(work / "snapshots.git"),
                              "HEAD~1", "HEAD", "--json"])
        row("snapbuild diff --repo (extract + diff)", wall, rss, anchor_wall)

        dump_wall, dump_rss, _ = timed(["sqlite3", str(new), anchor_dump_sql(new)])
        row("sqlite3 shell: every table in key order (anchor)", dump_wall, dump_rss)
        wall, rss, _ = timed([sys.executable, "-m", "snapbuild", "textconv", str(new)])
        row("snapbuild textconv", wall, rss, dump_wall)


if __name__ == "__main__":
    main()
