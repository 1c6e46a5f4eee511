"""Benchmark `snapbuild export --commit` against the git CLI, and what a consumer's fetch costs.

In one run, on the sample catalog (default 1,000,000 tracks, 100,000 playlists):

1. the time ``--commit`` adds over a plain ``export``, against ``git add && git
   commit`` of the same two files with the git CLI (target: at most 1.5x);
2. the peak RSS of ``export --commit`` (target: at most 256 MiB);
3. the bytes a consumer's ``git fetch`` over git's own transport (``file://``,
   i.e. ``git upload-pack``) receives after 1% of the catalog changed, as a
   share of the database's size (target: at most 3%), with the publishing
   repository as dulwich left it (loose objects) and after ``snapbuild gc``;
4. through a forge-like remote (a ``pre-receive`` hook refusing blobs over
   100 MiB, ``core.bigFileThreshold=50m``, as GitHub and GitLab have), for
   the whole layout and the split layout at 16, 32 and 48 MiB: whether the
   push is accepted, the publisher's push time and peak RSS, the bytes a
   consumer's ``git pull`` receives after the 1% change as a share of the
   database (target: at most 2% with the defaults) and what that fetch cost
   the server's ``git upload-pack``, beside the same pull from a plain remote
   (no threshold) and from one that keeps each push as a pack
   (``receive.unpackLimit=1``, as docs/consumers.md sets it up); then the
   consumer's assembly of ``catalog_read.db``
   (``assemble.py``: time and peak RSS, target at most 64 MiB) beside ``cat``
   of the pieces.

Every step runs as its own process; peak RSS comes from ``os.wait4`` (POSIX).
The received bytes are the pack git writes to ``GIT_TRACE_PACKFILE``.

Usage: python benchmarks/bench_commit.py [--tracks 1000000] [--playlists 100000] [--data bench-data] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
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
from tests.e2e.forge_support import FORGE_BIG_FILE_THRESHOLD, GITHUB_REFUSE_ABOVE, make_forge_remote  # noqa: E402

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


# Runs one command and reports its wall time and peak RSS. Linux carries a process's peak RSS
# across fork and exec, so a command started straight from this (large) process would report
# at least this process's size; started from this small launcher, it reports at least the
# launcher's few MiB (the "does nothing" anchor shows that floor).
_LAUNCH = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{time.perf_counter() - start} {usage.ru_maxrss * 1024}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass
class Run:
    seconds: float
    rss: int | None
    stdout: str


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None) -> Run:
    """Run one process to completion; return wall time, its peak RSS (POSIX) and its stdout."""
    measured = hasattr(os, "wait4") and hasattr(os, "fork")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "usage"
        launch = [sys.executable, "-I", "-S", "-c", _LAUNCH, str(report)] if measured else []
        start = time.perf_counter()
        proc = subprocess.run([*launch, *cmd], stdout=out, stderr=err, env=env, cwd=cwd, check=False)
        seconds, rss = time.perf_counter() - start, None
        if measured and report.exists():
            took, peak = report.read_text(encoding="utf-8").split()
            seconds, rss = float(took), int(peak)
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
        snapshots = {}
        for round_no, stamp in ((1, T1), (2, T2)):
            if round_no == 2:
                for consumer in consumers:
                    run([git, "clone", "-q", repo.as_uri(), str(consumer)], env=env)
                # The other order of a scheduled job: gc first, then the export (the new snapshot stays loose).
                run([git, "clone", "-q", phased_repo.as_uri(), str(work / "consumer-gc-first")], env=env)
                run([*py, "gc", "--repo", str(phased_repo)], env=env)
                print("mutating 1% of the catalog ...", flush=True)
                mutate_sample_catalog(source, fraction=0.01, seed=1)
            print(f"round {round_no}: export ...", flush=True)
            export = run([*py, "export", "--db", str(source), "--target-dir", str(plain), "--generated-at", stamp], env=env)
            snapshots[round_no] = work / f"snapshot-{round_no}"
            shutil.copytree(plain, snapshots[round_no])
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
        trace = work / "fetch-gc-first.pack"
        run([git, "-C", str(work / "consumer-gc-first"), "fetch", "-q", "origin"],
            env={**env, "GIT_TRACE_PACKFILE": str(trace)})
        fetched["gc, then export"] = trace.stat().st_size
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
        print("consumer git fetch (file://, git upload-pack) after a 1% change (the default layout):")
        labels = {"loose": "as dulwich left it (loose)", "packed": "export, then snapbuild gc",
                  "gc, then export": "snapbuild gc, then export"}
        for state, size in fetched.items():
            print(f"  publishing repo {labels[state]:<27}: {size / MiB:8.2f} MiB received = "
                  f"{100 * size / db_size:5.2f}% of catalog_read.db")
        print(f"  for scale, a --depth 1 clone received {full_clone.stat().st_size / MiB:.2f} MiB "
              f"({100 * full_clone.stat().st_size / db_size:.1f}% of the database)")
        print(f"snapbuild gc: {gc.seconds:.1f} s, peak RSS {mib(gc.rss)} (the largest of snapbuild and the git "
              f"processes it waited for): {gc.stdout.strip()}")
        print()
        forge_layouts(work, snapshots, db_size, git=git, env=env, keep=args.keep)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- forge layouts

# Commit a snapshot directory with a part size (0: the whole layout), as export --commit's commit phase does.
_COMMIT = """
import sys
from snapbuild.snapshots import commit_snapshot
part = int(sys.argv[3])
commit_snapshot(sys.argv[1], sys.argv[2], part_size=part or (1 << 40))
"""
# What --push runs: snapbuild's push through the git CLI.
_PUSH = """
import shutil, sys
from snapbuild.errors import PushError
from snapbuild.git.remote import push
try:
    push(sys.argv[1], sys.argv[2], git=shutil.which("git"))
except PushError as error:
    print(error)
"""
# The server side of a fetch: git upload-pack, its time and peak RSS (pack-objects included) recorded.
_UPLOAD_PACK = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(["git", "upload-pack", *sys.argv[2:]])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "a", encoding="utf-8") as out:
    out.write(json.dumps({"seconds": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
                          "rss": usage.ru_maxrss * 1024}) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""

#: The layouts compared: label and part size (0: the whole layout).
LAYOUTS = (("whole", 0), ("split 16 MiB", 16 * MiB), ("split 32 MiB (default)", 32 * MiB), ("split 48 MiB", 48 * MiB))
DEFAULT_PART = 32 * MiB
#: The layouts also pulled from a plain remote (no threshold), for comparison.
PLAIN_TOO = {0, DEFAULT_PART}


@dataclass
class Pull:
    received: int
    upload_pack: dict[str, float]


def pull(consumer: Path, work: Path, name: str, *, git: str, env: dict[str, str]) -> Pull:
    """``git pull --ff-only`` in ``consumer``: the pack bytes received and what upload-pack cost."""
    trace, stats = work / f"{name}.pack", work / f"{name}.upload-pack.jsonl"
    wrapper = f"{sys.executable} -c {shlex.quote(_UPLOAD_PACK)} {shlex.quote(str(stats))}"
    run([git, "-C", str(consumer), "-c", f"remote.origin.uploadpack={wrapper}", "pull", "-q", "--ff-only"],
        env={**env, "GIT_TRACE_PACKFILE": str(trace)})
    records = [json.loads(line) for line in stats.read_text(encoding="utf-8").splitlines()]
    return Pull(trace.stat().st_size, records[-1])


def forge_layouts(work: Path, snapshots: dict[int, Path], db_size: int, *, git: str, env: dict[str, str],
                  keep: bool) -> None:
    """Part 4: each layout through a forge-like remote and a plain one; the consumer's assembly."""
    rows = []
    assembly = []
    for label, part in LAYOUTS:
        slug = f"layout-{part // MiB}"
        print(f"{label}: commit, push, clone, change, push, pull ...", flush=True)
        publisher = work / f"{slug}.git"
        remotes = {"forge": make_forge_remote(work / f"{slug}-forge.git", refuse_above=GITHUB_REFUSE_ABOVE,
                                              big_file_threshold=FORGE_BIG_FILE_THRESHOLD)}
        if part in PLAIN_TOO:
            remotes["plain"] = make_forge_remote(work / f"{slug}-plain.git", refuse_above=None,
                                                 big_file_threshold=4294967295)
        if part == DEFAULT_PART:
            # docs/consumers.md's self-hosted remote: it keeps each push as the pack it arrived in.
            remotes["keeps packs"] = make_forge_remote(work / f"{slug}-keep.git", refuse_above=None,
                                                       big_file_threshold=4294967295)
            run([git, "--git-dir", str(remotes["keeps packs"]), "config", "receive.unpackLimit", "1"], env=env)
        refused = None
        pushes: list[Run] = []
        consumers: dict[str, Path] = {}
        for round_no in (1, 2):
            run([sys.executable, "-c", _COMMIT, str(publisher), str(snapshots[round_no]), str(part)], env=env)
            for kind in list(remotes):
                pushed = run([sys.executable, "-c", _PUSH, str(publisher), remotes[kind].as_uri()], env=env)
                if pushed.stdout.strip():
                    assert kind == "forge" and round_no == 1, pushed.stdout
                    refused = pushed.stdout.strip()
                    # GitLab's limits instead: no file size limit by default, the same threshold.
                    remotes[kind] = make_forge_remote(work / f"{slug}-gitlab.git", refuse_above=None,
                                                      big_file_threshold=FORGE_BIG_FILE_THRESHOLD)
                    pushed = run([sys.executable, "-c", _PUSH, str(publisher), remotes[kind].as_uri()], env=env)
                if kind == "forge":
                    pushes.append(pushed)
                if round_no == 1:
                    names = [kind, "bitmap"] if kind == "forge" and part == DEFAULT_PART else [kind]
                    for name in names:
                        consumers[name] = work / f"{slug}-{name}-consumer"
                        run([git, "clone", "-q", remotes[kind].as_uri(), str(consumers[name])], env=env)
        pulls = {kind: pull(consumers[kind], work, f"{slug}-{kind}", git=git, env=env) for kind in remotes}
        if "bitmap" in consumers:
            # As the forges do: repack everything, with a reachability bitmap.
            run([git, "--git-dir", str(remotes["forge"]), "repack", "-a", "-d", "-b", "-q"], env=env)
            pulls["bitmap"] = pull(consumers["bitmap"], work, f"{slug}-bitmap", git=git, env=env)
        pieces = changed_pieces(consumers["forge"], git=git, env=env)
        rows.append((label, refused, pushes, pulls, pieces))
        if part:
            consumer = consumers["forge"]
            script = run([sys.executable, "-I", "-S", "assemble.py"], env=env, cwd=consumer)
            cat = run(["sh", "-c", "cat catalog_read.db.parts/* > ../cat-assembled.db"], env=env, cwd=consumer)
            assembly.append((label, script, cat))
        if not keep:
            for path in [publisher, *remotes.values(), *consumers.values(), work / "cat-assembled.db"]:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)

    print()
    print(f"Through a forge-like remote (pre-receive refuses blobs over {GITHUB_REFUSE_ABOVE // MiB} MiB, "
          f"core.bigFileThreshold={FORGE_BIG_FILE_THRESHOLD // MiB}m), 1% of the catalog changed:")
    print(f"{'layout':<24}  {'first push':<22}  {'push after change':<17}  {'pull after the change':<22}  "
          f"{'upload-pack for it':<20}  {'pieces changed':<14}  plain remote (no threshold)")
    for label, refused, pushes, pulls, pieces in rows:
        forge, plain = pulls["forge"], pulls.get("plain")
        first = "REFUSED; GitLab-like:" if refused else ""
        print(f"{label:<24}  {first}{pushes[0].seconds:5.1f} s {mib(pushes[0].rss):>8}  "
              f"{pushes[1].seconds:5.1f} s {mib(pushes[1].rss):>8}  "
              f"{forge.received / MiB:7.2f} MiB = {100 * forge.received / db_size:5.2f}%  "
              f"{forge.upload_pack['cpu']:5.1f} s cpu {mib(int(forge.upload_pack['rss'])):>8}  {pieces:<14}  "
              + (f"{plain.received / MiB:.2f} MiB = {100 * plain.received / db_size:.2f}%" if plain else "-"))
        if refused:
            print(f"    the forge-like remote refused the first push: {refused}")
        if "keeps packs" in pulls:
            kept = pulls["keeps packs"]
            print(f"    from a remote that keeps pushed packs (receive.unpackLimit=1): {kept.received / MiB:.2f} MiB = "
                  f"{100 * kept.received / db_size:.2f}%, upload-pack {kept.upload_pack['cpu']:.1f} s cpu "
                  f"{mib(int(kept.upload_pack['rss']))}")
        if "bitmap" in pulls:
            bitmap = pulls["bitmap"]
            print(f"    after the forge repacked with a bitmap (git repack -adb): {bitmap.received / MiB:.2f} MiB = "
                  f"{100 * bitmap.received / db_size:.2f}%, upload-pack {bitmap.upload_pack['cpu']:.1f} s cpu "
                  f"{mib(int(bitmap.upload_pack['rss']))}")
    print()
    floor = run(["true"], env=env)
    print("Consumer: assembling catalog_read.db from the pieces after the pull")
    print(f"(a process that does nothing, measured the same way: peak RSS {mib(floor.rss)})")
    print(f"{'layout':<24}  assemble.py (checked, fsync, rename)   cat of the pieces")
    for label, script, cat in assembly:
        print(f"{label:<24}  {script.seconds:6.2f} s, peak RSS {mib(script.rss):>7}        "
              f"{cat.seconds:6.2f} s, peak RSS {mib(cat.rss):>7}")


def changed_pieces(consumer: Path, *, git: str, env: dict[str, str]) -> str:
    """How many pieces the last snapshot changed, of how many (``-`` for the whole layout)."""
    manifests = [json.loads(run([git, "-C", str(consumer), "show", f"{rev}:manifest.json"], env=env).stdout)
                 for rev in ("HEAD~1", "HEAD")]
    old, new = (m.get("parts", []) for m in manifests)
    if not new:
        return "-"
    changed = sum(1 for a, b in zip(old, new) if a["sha256"] != b["sha256"]) + abs(len(new) - len(old))
    return f"{changed} of {len(new)}"


if __name__ == "__main__":
    main()
