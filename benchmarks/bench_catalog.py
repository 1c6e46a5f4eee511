"""The origin's catalog allow-list at size: reading a snapshot, reloading one into a running server, memory, lookups.

Measures, on the sample catalog of ``--tracks`` tracks (``tracks / 10``
playlists, seed 1: the catalog ``bench_export.py`` uses, cached in
``--data-dir``), exported with ``snapbuild export``:

1. In a fresh process: ``read_catalog`` of the snapshot indexing every
   backend (all ~1.05M file rows at 1M tracks) — wall time per round, the
   process's RSS before and after and its peak (VmHWM); then
   ``Catalog.allows`` per call for a listed and an unlisted locator.
2. A real ``origin-server serve --catalog DIR`` (a root for every backend the
   catalog names, access log off): time from start to listening (the first
   read included) and its RSS; then, per round, one NAS file is deactivated
   in the source and ``snapbuild export`` publishes the new snapshot into
   DIR while a client asks for that file every 20 ms: the time from the
   export's exit to the first 410 (the target: within 5 s), the read time the
   server logs, and the server's RSS sampled every 20 ms (its peak during the
   reload). The next round reactivates the file (first 206 again).

Targets: server under 200 MiB RSS at 1M tracks, a lookup adding
at most 50 us per request (see also ``bench_origin.py --catalog`` for the
end-to-end cost), a new snapshot in force within 5 s.

Usage: python benchmarks/bench_catalog.py [--tracks 1000000] [--rounds 3] [--data-dir bench-data]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from origin_server.tokens import create_origin_token  # noqa: E402
from tests.conftest import stop_process  # noqa: E402
from tests.origin_server.catalog_support import NAS, snapshot_facts  # noqa: E402

SECRET = "bench-catalog-secret-" + "x" * 40
GENERATED_AT = "2026-04-19T08:00:00Z"

# Run in a fresh process, so that its RSS is the catalog's and nothing else's.
READ_SCRIPT = r'''
import json, statistics, sys, time, timeit
from pathlib import Path
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
from origin_server.catalog import Catalog, read_catalog
directory, backends, rounds, listed = Path(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3]), sys.argv[4]
before = status("VmRSS")
times = []
for _ in range(rounds):
    started = time.perf_counter()
    index = read_catalog(directory, backends)
    times.append(time.perf_counter() - started)
    del index
catalog = Catalog(directory, backends)
after = status("VmRSS")
number = 200_000
hit = min(timeit.repeat(lambda: catalog.allows("nas-main", listed), number=number, repeat=5)) / number
miss = min(timeit.repeat(lambda: catalog.allows("nas-main", listed + ".x"), number=number, repeat=5)) / number
print(json.dumps({"read_s": times, "rss_before": before, "rss_after": after, "peak": status("VmHWM"),
                  "files": catalog.index.files, "hit_us": hit * 1e6, "miss_us": miss * 1e6}))
'''


def catalog_source(data_dir: Path, tracks: int) -> Path:
    """The cached sample catalog (the same file bench_export.py uses), generated on first use."""
    playlists = max(tracks // 10, 1)
    path = data_dir / f"catalog-{tracks}-{playlists}-seed1.db"
    if not path.exists():
        from snapbuild.sample import write_sample_catalog

        data_dir.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        write_sample_catalog(path, tracks=tracks, playlists=playlists, seed=1)
    return path


def snapbuild(*args: str | Path) -> float:
    """Run the snapbuild CLI; return its wall time."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "snapbuild", *map(str, args)], check=True, capture_output=True)
    return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path("bench-data"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    print(f"bench_catalog: {args.tracks:,} tracks, {args.rounds} rounds; {load()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    server: subprocess.Popen[str] | None = None
    try:
        source = work / "catalog.db"
        shutil.copyfile(catalog_source(args.data_dir, args.tracks), source)  # the rounds change it
        snapshot, media, empty = work / "snapshot", work / "media", work / "empty"
        empty.mkdir()
        export_s = snapbuild("export", "--db", source, "--target-dir", snapshot, "--generated-at", GENERATED_AT)
        backends, files, victim = snapshot_facts(snapshot, NAS)
        print(f"snapshot: {(snapshot / 'catalog_read.db').stat().st_size / 1e6:.0f} MB, {files:,} file rows, backends {', '.join(backends)}; "
              f"export {export_s:.1f} s", flush=True)

        read = subprocess.run(
            [sys.executable, "-c", READ_SCRIPT, str(snapshot), ",".join(backends), str(args.rounds), victim],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )
        figures = json.loads(read.stdout)
        print(f"\nread_catalog, every backend ({figures['files']:,} files): "
              f"{', '.join(f'{t:.2f}' for t in figures['read_s'])} s (median {statistics.median(figures['read_s']):.2f} s); "
              f"process RSS {figures['rss_before']:.0f} MiB before, {figures['rss_after']:.0f} MiB with the index, "
              f"peak {figures['peak']:.0f} MiB")
        print(f"Catalog.allows: {figures['hit_us']:.2f} us listed, {figures['miss_us']:.2f} us unlisted (target <= 50 us)")

        target = media.joinpath(*victim.split("/"))
        target.parent.mkdir(parents=True)
        target.write_bytes(os.urandom(64 * 1024))
        keys = work / "origin.keys"
        keys.write_text(SECRET + "\n", encoding="utf-8")
        port = free_port()
        roots = [arg for name in backends for arg in ("--media-root", f"{name}={media if name == NAS else empty}")]
        log = work / "origin.log"
        started = time.monotonic()
        with open(log, "w", encoding="utf-8") as log_file:
            server = subprocess.Popen(
                [sys.executable, "-m", "origin_server", "serve", *roots, "--secret-file", str(keys),
                 "--port", str(port), "--catalog", str(snapshot), "--no-access-log"],
                stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
            )
        url = f"http://127.0.0.1:{port}/api/private-origin/stream/" + create_origin_token(
            SECRET, victim, time.time() + 3600, backend=NAS
        )
        session = requests.Session()
        while True:
            try:
                first = session.get(url, headers={"Range": "bytes=0-0"}, timeout=5).status_code
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() - started > 300:
                    raise RuntimeError("origin-server did not start:\n" + log.read_text(encoding="utf-8"))
                time.sleep(0.05)
        start_s = time.monotonic() - started
        print(f"\norigin-server serve --catalog: answering {start_s:.1f} s after start (first read included), "
              f"RSS {rss_mib(server.pid):.0f} MiB; first answer {first}")

        latencies, peaks = [], []
        for round_number in range(args.rounds):
            status, wanted = ("inactive", 410) if round_number % 2 == 0 else ("active", 206)
            with sqlite3.connect(source) as conn:
                conn.execute("UPDATE file_locations SET status = ? WHERE locator = ? AND backend_id = 1", (status, victim))
            conn.close()
            before = rss_mib(server.pid)
            exporter = subprocess.Popen(
                [sys.executable, "-m", "snapbuild", "export", "--db", str(source), "--target-dir", str(snapshot),
                 "--generated-at", GENERATED_AT],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            peak, exported_at = before, None
            while True:
                peak = max(peak, rss_mib(server.pid))
                if exported_at is None and exporter.poll() is not None:
                    exported_at = time.monotonic()
                code = session.get(url, headers={"Range": "bytes=0-0"}, timeout=30).status_code
                if code == wanted:
                    break
                time.sleep(0.02)
            if exported_at is None:  # in force before the exporter was seen to exit
                exporter.wait()
                exported_at = time.monotonic()
            latency = time.monotonic() - exported_at
            latencies.append(latency)
            peaks.append(peak)
            print(f"round {round_number + 1}: {status} -> {wanted} {latency:.2f} s after the export exited; "
                  f"server RSS {before:.0f} MiB before, peak {peak:.0f} MiB, after {rss_mib(server.pid):.0f} MiB; "
                  f"{load()}", flush=True)
        stop_process(server, timeout=30)  # its log is written in blocks: the rest comes at exit
        logged = [float(t) for t in re.findall(r"read in ([\d.]+) s", log.read_text(encoding="utf-8"))]
        print(f"\nnew snapshot in force after the export: median {statistics.median(latencies):.2f} s, "
              f"max {max(latencies):.2f} s (target <= 5 s; the server looks every 0.5 s, then reads); "
              f"reads the server logged: {', '.join(f'{t:.1f}' for t in logged)} s")
        print(f"server RSS peak during reloads {max(peaks):.0f} MiB (target < 200 MiB); {load()}")
        return 0
    finally:
        if server is not None:
            stop_process(server, timeout=30)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
