"""Benchmark the origin against its anchors in one run: bare waitress (the ceiling) and nginx.

Measures, at 16 connections with ``wrk`` (a Lua script draws a random 64 KiB
range per request):

1. 64 KiB random ranges: requests/s, MB/s and server CPU seconds for
   (a) the origin (``origin-server serve``: token check, resolver, falcon),
   (b) a bare WSGI app on waitress sending the same ranges from an open file
       with no token and no framework (waitress's own ceiling),
   (c) nginx serving the same file (where nginx is installed),
   (e) with ``--before REV``: the origin as it was at that git revision, so
       one run gives before and after;
2. whole-file downloads for (a), (b), (c) and (d) the origin with
   ``--offload nginx`` behind nginx;
3. 60 paused players (connected, 100 bytes read, then never reading) on the
   origin: a new player's time to first byte and the server's RSS;
4. with ``--catalog DIR`` (an exported snapshot), 64 KiB ranges of a file the
   catalog lists, from ``origin --catalog DIR`` and from the same origin
   without it (a root for every backend the catalog names), and the two
   servers' RSS and CPU per request.

Conditions are a user's: the origin runs as ``origin-server serve`` with its
defaults (threads, connection limit, access log on) and writes its log to
stderr, which is a pipe read by another process, as under systemd, Docker or
a terminal (``--log-to file`` writes a file instead, as NSSM on Windows
does); the bare app gets exactly the waitress settings the origin uses
(``origin_server.server.waitress_options``). Every server is pinned to CPU 0
and wrk to CPU 1 when ``taskset`` exists, so the load generator does not
compete with the server; each server is warmed up first, and the order of the
servers rotates from round to round. Server CPU comes from ``/proc/<pid>/stat``
(utime + stime, nginx's workers included).

Targets: (a) >= 75% of (b)'s ranged requests/s; (d) whole-file MB/s within
10% of (c); 60 paused players leave first byte < 250 ms, server < 200 MiB;
with a 1M-track catalog, origin --catalog >= 95% of the origin's ranged
req/s, a lookup adding at most 50 us per request, the server under 200 MiB.

Usage: python benchmarks/bench_origin.py [--rounds 5] [--seconds 5] [--size-mib 8]
       [--before 54907b3] [--log-to pipe|file] [--catalog DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from origin_server.tokens import create_origin_token  # noqa: E402
from tests.origin_server import nginx_conf  # noqa: E402
from tests.origin_server.catalog_support import snapshot_facts  # noqa: E402

SECRET = "bench-origin-secret-" + "x" * 40
CATALOG_BACKEND = "nas-main"
CONNECTIONS = 16
RANGE = 64 * 1024
STREAM = "/api/private-origin/stream/"

# The ceiling: the least a WSGI app on waitress can do to send a range from an open file,
# on plain waitress with the settings the origin runs with.
BARE_APP = r'''
import logging, os, re, sys, waitress
from origin_server.server import default_connection_limit, waitress_options
logging.getLogger("waitress.queue").setLevel(logging.ERROR)
PATH = sys.argv[1]
SIZE = os.path.getsize(PATH)
RANGE = re.compile(r"bytes=(\d+)-(\d+)")
def app(environ, start_response):
    f = open(PATH, "rb")
    m = RANGE.fullmatch(environ.get("HTTP_RANGE", ""))
    if m:
        start, end = int(m.group(1)), min(int(m.group(2)), SIZE - 1)
        f.seek(start)
        start_response("206 Partial Content", [("Content-Length", str(end - start + 1)),
            ("Content-Range", "bytes %d-%d/%d" % (start, end, SIZE)), ("Content-Type", "audio/flac")])
    else:
        start_response("200 OK", [("Content-Length", str(SIZE)), ("Content-Type", "audio/flac")])
    return environ["wsgi.file_wrapper"](f, 65536)
options = waitress_options(host="127.0.0.1", port=int(sys.argv[2]), threads=int(sys.argv[3]),
                           connection_limit=default_connection_limit())
waitress.serve(app, _quiet=True, **options)
'''

RANGES_LUA = """
math.randomseed(os.time())
local size = {size}
local span = {span}
request = function()
  local first = math.random(0, size - span)
  return wrk.format("GET", "{path}", {{["Range"] = "bytes=" .. first .. "-" .. (first + span - 1)}})
end
"""


@dataclass
class Load:
    requests_per_s: float
    mb_per_s: float
    cpu_s: float
    errors: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pinned(cpu: str, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *command] if shutil.which("taskset") else command


def wait_port(port: int, timeout: float = 15, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for port {port} exited with {process.returncode} (see its log)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def process_tree(pid: int) -> list[int]:
    """The pid and its descendants (nginx's workers), from /proc."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            pids.extend(process_tree(int(child)))
    return pids


def cpu_seconds(pid: int) -> float:
    total = 0
    for each in process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    total = 0
    for each in process_tree(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def wrk(url: str, seconds: int, server_pid: int, script: Path | None = None) -> Load:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s"]
    if script is not None:
        command += ["-s", str(script)]
    before = cpu_seconds(server_pid)
    out = subprocess.run(pinned("1", [*command, url]), capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(server_pid) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    amount, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return Load(rps, float(amount) * _UNITS[unit] / 1e6, cpu, errors.group(0) if errors else "")


def median_load(loads: list[Load]) -> Load:
    """The run with the median requests/s (its MB/s and CPU come with it)."""
    ordered = sorted(loads, key=lambda load: load.requests_per_s)
    return ordered[len(ordered) // 2]


def first_byte_ms(port: int, path: str) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nConnection: close\r\n\r\n".encode())
        sock.recv(1)
        return (time.perf_counter() - started) * 1000


def paused_players(port: int, path: str, pid: int, count: int = 60) -> tuple[float, float, float, float]:
    """Return (rss before, first-byte median, first-byte max, rss with players) in MiB / ms."""
    rss_before = rss_mib(pid)
    players = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", port))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sock.recv(100)
            players.append(sock)
        time.sleep(1)
        samples = [first_byte_ms(port, path) for _ in range(20)]
        return rss_before, statistics.median(samples), max(samples), rss_mib(pid)
    finally:
        for sock in players:
            sock.close()


CATALOG_PAIR = ("origin, catalog's roots", "origin --catalog")


def catalog_targets(
    directory: Path, root: Path, work: Path, expires: float, origin: Callable[..., tuple[int, int]]
) -> dict[str, dict[str, tuple[str, int, str | None]]]:
    """Start the origin with and without ``--catalog`` over one root per backend; serve a listed NAS file."""
    backends, files, locator = snapshot_facts(directory, CATALOG_BACKEND)
    print(f"catalog {directory}: {files:,} file rows, backends {', '.join(backends)}; serving {locator!r}", flush=True)
    listed = root.joinpath(*locator.split("/"))
    listed.parent.mkdir(parents=True, exist_ok=True)
    os.link(root / "track.flac", listed)  # the same bytes as track.flac
    empty = work / "empty"
    empty.mkdir()
    roots = tuple(f"{name}={root if name == CATALOG_BACKEND else empty}" for name in backends)
    path = STREAM + create_origin_token(SECRET, locator, expires, backend=CATALOG_BACKEND)
    result = {}
    for name, extra in zip(CATALOG_PAIR, ((), ("--catalog", str(directory)))):
        port, pid = origin(*extra, roots=roots)
        result[name] = {"ranges": (f"http://127.0.0.1:{port}{path}", pid, path)}
    return result


def report_catalog(samples: dict[str, dict[str, list[Load]]], targets: dict, seconds: int, round_ratios: Callable) -> None:
    """Print origin --catalog against the same origin without it: req/s, CPU per request, RSS."""
    without, with_catalog = CATALOG_PAIR

    def cpu_us_per_request(name: str) -> float:
        loads = samples["ranges"][name]
        return sum(load.cpu_s for load in loads) / sum(load.requests_per_s * seconds for load in loads) * 1e6

    extra = cpu_us_per_request(with_catalog) - cpu_us_per_request(without)
    print(f"ranged req/s, origin --catalog / the same origin without it: "
          f"{round_ratios('ranges', with_catalog, without, 'requests_per_s')} (target >= 95%)")
    print(f"server CPU per ranged request: {cpu_us_per_request(without):.0f} us without the catalog, "
          f"{cpu_us_per_request(with_catalog):.0f} us with it ({extra:+.1f} us; target: a lookup adds <= 50 us)")
    print(f"server RSS: origin --catalog {rss_mib(targets[with_catalog]['ranges'][1]):.0f} MiB (target < 200 MiB), "
          f"without it {rss_mib(targets[without]['ranges'][1]):.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load on each server before the rounds")
    parser.add_argument("--size-mib", type=int, default=8, help="size of the served file")
    parser.add_argument("--threads", type=int, help="waitress worker threads (origin and bare; default: the origin's)")
    parser.add_argument("--before", metavar="REV", help="also run the origin as it was at this git revision")
    parser.add_argument("--log-to", choices=("pipe", "file"), default="pipe", help="where the origin's stderr goes")
    parser.add_argument("--catalog", type=Path, metavar="DIR",
                        help="an exported snapshot: also measure origin --catalog DIR against the origin without it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.threads is None:
        from origin_server.cli import serve

        args.threads = next(param.default for param in serve.params if param.name == "threads")
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1
    nginx = shutil.which("nginx")
    load_at_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-origin-"))
    processes: list[subprocess.Popen] = []
    try:
        root = work / "media"
        root.mkdir()
        size = args.size_mib << 20
        (root / "track.flac").write_bytes(os.urandom(size))
        (root / "big.flac").write_bytes(os.urandom(64 << 20))
        keys = work / "origin.keys"
        keys.write_text(SECRET + "\n", encoding="utf-8")
        keys.chmod(0o600)
        expires = time.time() + 3 * 3600
        token = create_origin_token(SECRET, "track.flac", expires)
        big_token = create_origin_token(SECRET, "big.flac", expires)
        log_file = (work / "origin.log").open("w", encoding="utf-8")
        if args.log_to == "pipe":  # a reader process, as journald, Docker or a terminal is
            reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=log_file)
            processes.append(reader)
            log = reader.stdin
        else:
            log = log_file
        before_tree = None
        if args.before:
            before_tree = work / "before"
            before_tree.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(before_tree)], input=archive.stdout, check=True)

        def origin(*extra: str, tree: Path = ROOT, roots: tuple[str, ...] = (str(root),)) -> tuple[int, int]:
            """Start `origin-server serve` as a user would: its defaults, stderr to the log."""
            port = free_port()
            command = [sys.executable, "-m", "origin_server", "serve", *(f"--media-root={r}" for r in roots),
                       "--secret-file", str(keys), "--port", str(port), *extra]
            if args.threads != 4:
                command += ["--threads", str(args.threads)]
            env = {**os.environ, "PYTHONPATH": str(tree)}
            process = subprocess.Popen(pinned("0", command), stdout=log, stderr=log, cwd=tree, env=env)
            processes.append(process)
            wait_port(port, timeout=300, process=process)  # --catalog reads the snapshot first
            return port, process.pid

        ours_port, ours_pid = origin()
        quiet_port, quiet_pid = origin("--no-access-log")
        bare_port = free_port()
        bare = subprocess.Popen(
            pinned("0", [sys.executable, "-c", BARE_APP, str(root / "track.flac"), str(bare_port), str(args.threads)])
        )
        processes.append(bare)
        wait_port(bare_port)
        lua = work / "ranges.lua"

        def ranges(path: str) -> Path:
            lua.write_text(RANGES_LUA.format(size=size, span=RANGE, path=path), encoding="utf-8")
            return lua

        stream = STREAM + token
        # name -> (kind -> (url, pid, lua path or None)); filled as servers come up.
        targets: dict[str, dict[str, tuple[str, int, str | None]]] = {
            "origin": {
                "ranges": (f"http://127.0.0.1:{ours_port}{stream}", ours_pid, stream),
                "whole": (f"http://127.0.0.1:{ours_port}{stream}", ours_pid, None),
            },
            "origin --no-access-log": {
                "ranges": (f"http://127.0.0.1:{quiet_port}{stream}", quiet_pid, stream),
            },
            "bare waitress": {
                "ranges": (f"http://127.0.0.1:{bare_port}/track.flac", bare.pid, "/track.flac"),
                "whole": (f"http://127.0.0.1:{bare_port}/track.flac", bare.pid, None),
            },
        }
        if before_tree is not None:
            before_port, before_pid = origin(tree=before_tree)
            targets[f"origin at {args.before}"] = {
                "ranges": (f"http://127.0.0.1:{before_port}{stream}", before_pid, stream),
            }
        offload_cpu = 0.0
        offload_pid = 0
        if nginx:
            offload_port, offload_pid = origin("--offload", "nginx")
            front_port = free_port()
            config = nginx_conf.render(
                work / "nginx", listen_port=front_port, origin_port=offload_port, roots={None: root}, static_root=root
            )
            front = nginx_conf.start(nginx, config, front_port)
            processes.append(front)
            if shutil.which("taskset"):  # pin nginx's master and worker to CPU 0, like the others
                for pid in process_tree(front.pid):
                    subprocess.run(["taskset", "-pc", "0", str(pid)], capture_output=True, check=False)
            front_url = f"http://127.0.0.1:{front_port}"
            targets["nginx"] = {
                "ranges": (f"{front_url}/static/track.flac", front.pid, "/static/track.flac"),
                "whole": (f"{front_url}/static/track.flac", front.pid, None),
            }
            targets["origin --offload nginx"] = {"whole": (f"{front_url}{stream}", front.pid, None)}
        if args.catalog:
            targets.update(catalog_targets(args.catalog, root, work, expires, origin))

        # Warm every server up (its caches, the page cache, TCP buffers), as a running one is.
        for kinds in targets.values():
            for kind, (url, pid, lua_path) in kinds.items():
                if kind == "ranges":
                    wrk(url, args.warmup, pid, ranges(lua_path))
        # Interleave the servers round by round, so the shared machine's noise hits all alike,
        # rotating their order, so that none always runs right after the same neighbour.
        samples: dict[str, dict[str, list[Load]]] = {"ranges": {}, "whole": {}}
        names = list(targets)
        for number in range(args.rounds):
            order = names[number % len(names):] + names[: number % len(names)]
            for kind in ("ranges", "whole"):
                for name in order:
                    kinds = targets[name]
                    if kind not in kinds:
                        continue
                    url, pid, lua_path = kinds[kind]
                    before = cpu_seconds(offload_pid) if name == "origin --offload nginx" else 0.0
                    load = wrk(url, args.seconds, pid, ranges(lua_path) if lua_path else None)
                    if name == "origin --offload nginx":
                        offload_cpu += cpu_seconds(offload_pid) - before
                    samples[kind].setdefault(name, []).append(load)
        results = {
            kind: {name: median_load(loads) for name, loads in by_name.items()} for kind, by_name in samples.items()
        }

        def round_ratios(kind: str, top: str, bottom: str, attr: str) -> str:
            """Ratios of runs made back to back in each round (paired, so drifting load cancels), and their median."""
            ratios = [getattr(a, attr) / getattr(b, attr) for a, b in zip(samples[kind][top], samples[kind][bottom])]
            return ", ".join(f"{r:.0%}" for r in ratios) + f" (median {statistics.median(ratios):.0%})"

        rss_idle, fb_median, fb_max, rss_paused = paused_players(ours_port, STREAM + big_token, ours_pid)

        print(f"bench_origin: {args.rounds} rounds x {args.seconds}s per run (medians) after {args.warmup}s of warm-up, "
              f"{CONNECTIONS} connections (wrk -t1), {args.threads} waitress threads, file {args.size_mib} MiB, "
              f"server on CPU 0, wrk on CPU 1, origin log to a {args.log_to}; "
              f"load average {load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
        for kind, title in (("ranges", "64 KiB random ranges"), ("whole", "whole-file downloads")):
            print(f"\n{title}:")
            print(f"  {'server':<24} {'req/s':>9} {'MB/s':>9} {'CPU s':>7} {'req/CPU s':>10} {'core busy':>9}")
            for name, load in results[kind].items():
                per_cpu = load.requests_per_s * args.seconds / load.cpu_s if load.cpu_s else float("nan")
                print(f"  {name:<24} {load.requests_per_s:>9.0f} {load.mb_per_s:>9.1f} {load.cpu_s:>7.2f} "
                      f"{per_cpu:>10.0f} {load.cpu_s / args.seconds:>9.0%} {load.errors}")
        r = results["ranges"]
        ratio = r["origin"].requests_per_s / r["bare waitress"].requests_per_s
        print(f"\nranged req/s, origin / bare waitress: {ratio:.0%} (target >= 75%); per round: "
              f"{round_ratios('ranges', 'origin', 'bare waitress', 'requests_per_s')}")
        def per_cpu(name: str) -> float:
            """Requests per server CPU second over all rounds (sums, not one run)."""
            loads = samples["ranges"][name]
            return sum(load.requests_per_s * args.seconds for load in loads) / sum(load.cpu_s for load in loads)

        print(f"ranged requests per server CPU second (all rounds), origin / bare waitress: "
              f"{per_cpu('origin') / per_cpu('bare waitress'):.0%}; "
              f"origin --no-access-log / bare waitress: {per_cpu('origin --no-access-log') / per_cpu('bare waitress'):.0%}")
        if before_tree is not None:
            then = f"origin at {args.before}"
            print(f"ranged req/s, {then} / bare waitress: per round "
                  f"{round_ratios('ranges', then, 'bare waitress', 'requests_per_s')}; per server CPU second: "
                  f"{per_cpu(then) / per_cpu('bare waitress'):.0%}")
            print(f"ranged req/s, origin now / {then}: per round {round_ratios('ranges', 'origin', then, 'requests_per_s')}"
                  f"; per server CPU second: {per_cpu('origin') / per_cpu(then):.0%}")
        quiet = r["origin --no-access-log"].requests_per_s / r["bare waitress"].requests_per_s
        print(f"ranged req/s, origin --no-access-log / bare waitress: {quiet:.0%}; per round: "
              f"{round_ratios('ranges', 'origin --no-access-log', 'bare waitress', 'requests_per_s')}")
        if "nginx" in r:
            print(f"ranged req/s, bare waitress / nginx: {r['bare waitress'].requests_per_s / r['nginx'].requests_per_s:.0%}"
                  f"; origin / nginx: {r['origin'].requests_per_s / r['nginx'].requests_per_s:.0%}")
            w = results["whole"]
            offload = w["origin --offload nginx"].mb_per_s / w["nginx"].mb_per_s
            print(f"whole-file MB/s, origin --offload nginx / nginx: {offload:.0%} (target >= 90%); per round: "
                  f"{round_ratios('whole', 'origin --offload nginx', 'nginx', 'mb_per_s')}; "
                  f"origin CPU behind nginx: {offload_cpu:.2f} s in all rounds")
            print(f"whole-file MB/s, origin (no offload) / nginx: {w['origin'].mb_per_s / w['nginx'].mb_per_s:.0%}")
        else:
            print("nginx is not installed: no nginx anchor and no offload figures")
        if args.catalog:
            report_catalog(samples, targets, args.seconds, round_ratios)
        print(f"\n60 paused players: new player's first byte median {fb_median:.1f} ms, max {fb_max:.1f} ms "
              f"(target < 250 ms); server RSS {rss_idle:.0f} MiB idle, {rss_paused:.0f} MiB with players "
              f"(target < 200 MiB)")
        return 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
