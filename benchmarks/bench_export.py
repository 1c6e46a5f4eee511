"""Benchmark `snapbuild export` against the C floor and a naive fetchall/executemany export.

Run (Unix, with GNU time at /usr/bin/time for each subprocess's peak RSS):

    python benchmarks/bench_export.py                      # 100k and 1M tracks
    python benchmarks/bench_export.py --sizes 100000 --repeat 3

For each catalog size it times, in the same run and each as its own process:

- ``snapbuild export`` (``python -m snapbuild export``: validation, URL
  encoding, UTF-8 check, digests, fsync and atomic publish included);
- the C floor: the ``sqlite3`` shell running the same DDL and the same
  ``ATTACH`` + ``INSERT ... SELECT`` statements and indexes (with plain
  concatenation instead of percent-encoding, no validation, no digest);
- a naive export, the first one anyone writes: every table read with
  ``fetchall`` and written with ``executemany`` (a toplist primary key on
  ``toplist_id`` alone would crash on pools with many playlists, so it has none).

and prints wall time, CPU time (user + system, all threads), peak RSS and the
ratios to the floor (best of ``--repeat`` runs). On a shared, loaded machine
the CPU ratio is the steadier figure. Catalogs are
generated once with ``snapbuild.sample.write_sample_catalog`` and cached in
``--data-dir`` (default ``./bench-data``, gitignored).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from snapbuild import schema  # noqa: E402
from snapbuild.sqlite import readonly_uri  # noqa: E402

GENERATED_AT = "2026-04-19T08:00:00Z"
TIME = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"


def catalog(data_dir: Path, tracks: int, playlists: int, seed: int) -> Path:
    """Return the cached sample catalog of this size, generating it on first use."""
    path = data_dir / f"catalog-{tracks}-{playlists}-seed{seed}.db"
    if not path.exists():
        from snapbuild.sample import write_sample_catalog

        data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        print(f"generating {path.name} ...", flush=True)
        write_sample_catalog(path, tracks=tracks, playlists=playlists, seed=seed)
        print(f"  generated in {time.monotonic() - started:.1f} s", flush=True)
    return path


def floor_script(source: Path) -> str:
    """The read model's own DDL and INSERT ... SELECT statements, for the sqlite3 shell."""
    # The sqlite3 shell cannot call quote_path: the floor joins without encoding.
    track_files = schema.insert_track_files_sql(path="ltrim(fl.locator, '/')")
    statements = [
        "PRAGMA page_size = 4096",
        "PRAGMA journal_mode = OFF",
        "PRAGMA synchronous = OFF",
        f"PRAGMA threads = {min(os.cpu_count() or 1, 4)}",
        f"ATTACH DATABASE '{readonly_uri(source)}' AS src",
        "BEGIN",
        *(table.ddl for table in schema.TABLES),
        schema.INSERT_PLAYLISTS,
        schema.INSERT_TRACKS,
        schema.INSERT_PLAYLIST_TRACKS.format(conflict="", keep="1"),
        track_files,
        schema.INSERT_TOPLISTS,
        *(
            f"CREATE INDEX {name} ON {table} ({', '.join(columns)})"
            for table, name, columns in schema.INDEXES
        ),
        "COMMIT",
    ]
    return ";\n".join(statements) + ";\n"


def naive_export(source: Path, target_dir: Path) -> None:
    """The naive export: every table through fetchall() into executemany()."""
    target_dir.mkdir(parents=True, exist_ok=True)
    target_db = target_dir / "catalog_read.db"
    source_conn = sqlite3.connect(source)
    target_conn = sqlite3.connect(target_db)
    target_conn.executescript(
        """
        create table catalog_playlists (playlist_id integer primary key, platform text not null,
            remote_playlist_id text not null, name text not null, description text, cover_url text,
            play_count integer not null default 0, song_count integer not null default 0);
        create table catalog_tracks (song_id integer primary key, platform text not null,
            remote_song_id text not null, name text not null, singers text, ext text,
            file_size_bytes integer, metadata_json text);
        create table catalog_playlist_tracks (playlist_id integer not null, song_id integer not null,
            position integer not null);
        create table catalog_track_files (song_id integer not null, quality_label text, ext text,
            file_size_bytes integer, backend_type text, backend_name text, locator text, public_url text,
            status text, is_primary integer);
        create table catalog_toplists (toplist_id text, platform text not null, name text not null,
            description text, cover_url text, play_count integer not null, song_count integer not null,
            group_name text not null);
        """
    )
    queries = {
        "catalog_playlists": "select id, platform, remote_playlist_id, name, description, cover_url, "
        "coalesce(play_count, 0), coalesce(collected_song_count, 0) from playlists",
        "catalog_tracks": "select id, platform, remote_song_id, name, singers, ext, file_size_bytes, "
        "metadata_json from songs",
        "catalog_playlist_tracks": "select playlist_id, song_id, position from playlist_songs "
        "order by playlist_id, position",
        "catalog_track_files": "select fa.song_id, fa.quality_label, fa.ext, fa.file_size_bytes, sb.backend_type, "
        "sb.name, fl.locator, case when sb.backend_type = 'object_storage' then "
        "coalesce(json_extract(sb.config_json, '$.public_base_url'), '') || '/' || fl.locator else null end, "
        "fl.status, fl.is_primary from file_locations fl join file_assets fa on fa.id = fl.file_asset_id "
        "join storage_backends sb on sb.id = fl.backend_id where fl.status = 'active'",
        "catalog_toplists": "select pp.external_id, p.platform, p.name, p.description, p.cover_url, "
        "coalesce(p.play_count, 0), coalesce(p.collected_song_count, 0), pp.name from playlists p "
        "join pool_playlists rel on rel.playlist_id = p.id join playlist_pools pp on pp.id = rel.pool_id "
        "where pp.pool_kind = 'toplist'",
    }
    for table, query in queries.items():
        rows = source_conn.execute(query).fetchall()
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            target_conn.executemany(f"insert into {table} values ({marks})", rows)
    target_conn.commit()
    target_conn.close()
    source_conn.close()


def measure(argv: list[str], stdin: str | None = None) -> tuple[float, float, float]:
    """Run ``argv`` as a child process; return (wall s, CPU s, peak RSS MiB) of that child alone.

    The child runs under ``/usr/bin/time``: a small process of its own, so the
    peak RSS is the child's, not the (larger) benchmark process it was forked from.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time", encoding="utf-8") as report:
        started = time.monotonic()
        proc = subprocess.run(
            [TIME, "-f", "%e %U %S %M", "-o", report.name, *argv],
            input=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wall = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"{argv[:4]} failed ({proc.returncode}): {proc.stderr.strip()}")
        user, system, peak_kib = report.read().split()[-3:]
    return wall, float(user) + float(system), int(peak_kib) / 1024


def run_size(source: Path, repeat: int, work: Path) -> dict[str, tuple[float, float, float]]:
    sqlite3_shell = shutil.which("sqlite3")
    if sqlite3_shell is None:
        raise SystemExit("the sqlite3 shell is needed for the C floor")
    results: dict[str, list[tuple[float, float, float]]] = {"snapbuild export": [], "sqlite3 shell (floor)": [], "naive export": []}
    script = floor_script(source)
    for attempt in range(repeat):
        for name in results:
            out = work / f"{name.split()[0]}-{attempt}"
            shutil.rmtree(out, ignore_errors=True)
            if name == "snapbuild export":
                argv = [sys.executable, "-m", "snapbuild", "export", "--db", str(source), "--target-dir", str(out),
                        "--generated-at", GENERATED_AT]
                results[name].append(measure(argv))
            elif name.startswith("sqlite3"):
                out.mkdir(parents=True)
                results[name].append(measure([sqlite3_shell, str(out / "catalog_read.db")], stdin=script))
            else:
                argv = [sys.executable, __file__, "--naive-export", str(source), str(out)]
                results[name].append(measure(argv))
            shutil.rmtree(out, ignore_errors=True)
    return {name: min(runs) for name, runs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="track counts, comma-separated")
    parser.add_argument("--data-dir", type=Path, default=Path("bench-data"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the best is reported")
    parser.add_argument("--naive-export", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_export:
        naive_export(Path(args.naive_export[0]), Path(args.naive_export[1]))
        return
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
    for tracks in (int(size) for size in args.sizes.split(",")):
        source = catalog(args.data_dir, tracks, max(tracks // 10, 1), args.seed)
        with sqlite3.connect(source) as conn:
            counts = [conn.execute(f"select count(*) from {t}").fetchone()[0]
                      for t in ("songs", "playlists", "playlist_songs", "file_locations")]
        print(f"\n{counts[0]:,} tracks, {counts[1]:,} playlists, {counts[2]:,} playlist rows, "
              f"{counts[3]:,} file locations; source {source.stat().st_size / 2**20:.0f} MiB")
        with tempfile.TemporaryDirectory(dir=args.data_dir) as work:
            best = run_size(source, args.repeat, Path(work))
        floor_wall, floor_cpu, _ = best["sqlite3 shell (floor)"]
        print(f"{'':24} {'wall s':>8} {'x floor':>8} {'CPU s':>8} {'x floor':>8} {'peak RSS MiB':>13}")
        for name, (wall, cpu, rss) in best.items():
            print(f"{name:24} {wall:8.2f} {wall / floor_wall:8.2f} {cpu:8.2f} {cpu / floor_cpu:8.2f} {rss:13.1f}")


if __name__ == "__main__":
    main()
