"""Benchmark `snapbuild export --commit` against the git CLI, and what a consumer's fetch costs.

In one run, on the sample catalog (default 1,000,000 tracks, 100,000 playlists):

1. the time ``--commit`` adds over a plain ``export``, against ``git add && git
   commit`` of the same two files with the git CLI (target: at most 1.5x);
2. the peak RSS of ``export --commit`` (target: at most 256 MiB);
3. the bytes a consumer's ``git fetch`` over git's own transport (``file://``,
   i.e. ``git upload-pack``) receives after 1% of the catalog changed, as a
   share of the database's size (target: at most 3%), with the publishing
   repository as dulwich left it (loose objects) and after ``snapbuild gc``.

Every step runs as its own process; peak RSS comes from ``os.wait4`` (POSIX).
The received bytes are the pack git writes to ``GIT_TRACE_PACKFILE``.

Usage: python benchmarks/bench_commit.py [--tracks 1000000] [--playlists 100000] [--data bench-data] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snapbuild.sample import mutate_sample_catalog, write_sample_catalog  # noqa: E402

MiB = 1 << 20
T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-02T00:00:00Z"

# export --commit's two phases in one process, each timed: what --commit adds is the
# second phase, measured without the noise of two separate ~1 min exports.
_PHASED = """
import sys, time
from snapbuild.export import run_export
from snapbuild.snapshots import commit_snapshot
start = time.perf_counter()
run_export(sys.argv[1], sys.argv[2], generated_at=sys.argv[4])
middle = time.perf_counter()
commit_snapshot(sys.argv[3], sys.argv[2])
print(middle - start, time.perf_counter() - middle)
"""


@dataclass
class Run:
    seconds: float
    rss: int | None
    stdout: str


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None) -> Run:
    """Run one process to completion; return wall time, its peak RSS and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        rss = None
        if hasattr(os, "wait4"):
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            rss = usage.ru_maxrss * 1024  # KiB on Linux
        else:
            proc.wait()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout}\n{stderr}")
    return Run(seconds, rss, stdout)


def catalog_path(data: Path, tracks: int, playlists: int) -> Path:
    """Reuse a cached catalog of this size (the export benchmark's or ours), or generate one."""
    for name in (f"catalog-{tracks}.db", f"commit-catalog-{tracks}.db"):
        if (data / name).exists():
            return data / name
    path = data / f"commit-catalog-{tracks}.db"
    print(f"generating {path} ({tracks} tracks, {playlists} playlists) ...", flush=True)
    write_sample_catalog(path, tracks=tracks, playlists=playlists, seed=7)
    return path


def mib(size: int | None) -> str:
    return "n/a" if size is None else f"{size / MiB:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--playlists", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    git = shutil.which("git")
    if not git:
        raise SystemExit("the git CLI is needed for the anchor")
    args.data.mkdir(parents=True, exist_ok=True)
    catalog = catalog_path(args.data, args.tracks, args.playlists)

    work = Path(tempfile.mkdtemp(prefix="bench-commit-", dir=args.data))
    home = work / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "SOURCE_DATE_EPOCH"}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@example.invalid",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@example.invalid")
    py = [sys.executable, "-m", "snapbuild"]
    try:
        source = work / "catalogsync.db"
        shutil.copyfile(catalog, source)
        repo = work / "snapshots.git"
        plain = work / "plain"
        anchor = work / "gitcli"
        run([git, "init", "-q", "-b", "main", str(anchor)], env=env)

        rows = []
        consumers = [work / "consumer-loose", work / "consumer-packed"]
        phased_repo = work / "phased.git"
        for round_no, stamp in ((1, T1), (2, T2)):
            if round_no == 2:
                for consumer in consumers:
                    run([git, "clone", "-q", repo.as_uri(), str(consumer)], env=env)
                print("mutating 1% of the catalog ...", flush=True)
                mutate_sample_catalog(source, fraction=0.01, seed=1)
            print(f"round {round_no}: export ...", flush=True)
            export = run([*py, "export", "--db", str(source), "--target-dir", str(plain), "--generated-at", stamp], env=env)
            print(f"round {round_no}: export --commit ...", flush=True)
            both = run([*py, "export", "--db", str(source), "--commit", "--repo", str(repo), "--generated-at", stamp],
                       env=env)
            print(f"round {round_no}: export + commit, phases timed ...", flush=True)
            phased = run([sys.executable, "-c", _PHASED, str(source), str(work / "phased"), str(phased_repo), stamp],
                         env=env)
            export_phase, commit_phase = map(float, phased.stdout.split())
            print(f"round {round_no}: git add && git commit ...", flush=True)
            for name in ("catalog_read.db", "manifest.json"):
                shutil.copyfile(plain / name, anchor / name)
            add = run([git, "-C", str(anchor), "add", "catalog_read.db", "manifest.json"], env=env)
            commit = run([git, "-C", str(anchor), "commit", "-q", "-m", f"snapshot {round_no}"], env=env)
            git_cli = add.seconds + commit.seconds
            rows.append((round_no, export, both, export_phase, commit_phase, phased.rss, git_cli,
                         max(add.rss or 0, commit.rss or 0)))

        db_size = (plain / "catalog_read.db").stat().st_size
        fetched = {}
        # The publishing repository as dulwich left it: two whole loose databases.
        trace = work / "fetch-loose.pack"
        run([git, "-C", str(consumers[0]), "fetch", "-q", "origin"], env={**env, "GIT_TRACE_PACKFILE": str(trace)})
        fetched["loose"] = trace.stat().st_size
        gc = run([*py, "gc", "--repo", str(repo)], env=env)
        trace = work / "fetch-packed.pack"
        run([git, "-C", str(consumers[1]), "fetch", "-q", "origin"], env={**env, "GIT_TRACE_PACKFILE": str(trace)})
        fetched["packed"] = trace.stat().st_size
        full_clone = work / "fetch-clone.pack"
        print("fetching ...", flush=True)
        run([git, "clone", "-q", "--depth", "1", repo.as_uri(), str(work / "shallow")],
            env={**env, "GIT_TRACE_PACKFILE": str(full_clone)})

        print()
        print(f"catalog: {catalog.name} ({catalog.stat().st_size / MiB:.0f} MiB); "
              f"catalog_read.db: {db_size / MiB:.1f} MiB")
        print()
        print("Time --commit adds, against git add && git commit of the same two files (git CLI):")
        print("round  commit phase  git add+commit  ratio  |  export  export --commit  difference  ratio (noisy)")
        for round_no, export, both, _, commit_phase, _, git_cli, _ in rows:
            added = both.seconds - export.seconds
            print(f"{round_no:>5}  {commit_phase:10.2f} s  {git_cli:12.2f} s  {commit_phase / git_cli:4.2f}x  |  "
                  f"{export.seconds:4.1f} s  {both.seconds:12.1f} s  {added:8.1f} s  {added / git_cli:5.2f}x")
        print()
        print("Peak RSS (whole process):")
        print("round  export   export --commit  export+commit phased  git add/commit")
        for round_no, export, both, _, _, phased_rss, _, git_rss in rows:
            print(f"{round_no:>5}  {mib(export.rss):>7}  {mib(both.rss):>15}  {mib(phased_rss):>20}  {mib(git_rss):>14}")
        print()
        print("consumer git fetch (file://, git upload-pack) after a 1% change:")
        for state, size in fetched.items():
            print(f"  publishing repo {state:<6}: {size / MiB:8.2f} MiB received = {100 * size / db_size:5.2f}% "
                  f"of catalog_read.db")
        print(f"  for scale, a --depth 1 clone received {full_clone.stat().st_size / MiB:.2f} MiB "
              f"({100 * full_clone.stat().st_size / db_size:.1f}% of the database)")
        print(f"snapbuild gc: {gc.seconds:.1f} s, peak RSS {mib(gc.rss)} (the largest of snapbuild and the git "
              f"processes it waited for): {gc.stdout.strip()}")
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
