"""Soak the private origin: sustained mixed load against a real waitress server.

For ``--seconds`` (default 60) it runs, at once, against one
``origin-server serve`` subprocess on 127.0.0.1:

* ``--ranged`` (32) clients doing random ranged reads (``Range: bytes=a-b``),
* ``--whole`` (8) clients downloading whole files,
* ``--paused`` (40) players that read a little of a large file, pause for a
  few seconds without reading (the socket stays open), read on, and so on,

and checks every byte it receives against the file on disk. It prints the
error and wrong-byte counts, the server's RSS at the start and at the end of
the load (it must stay flat), and latency percentiles, each beside its
in-run anchor: the same ranged request made by one client on an idle server
before the load starts. Exits 1 on any error or wrong byte.

Example::

    python benchmarks/soak_origin.py --seconds 600
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from origin_server.tokens import create_origin_token

SECRET = "soak-benchmark-secret-0123456789abcdef"
STREAM = "/api/private-origin/stream/"
PAUSED_FILE_SIZE = 24 * 1024 * 1024  # larger than loopback socket buffers, so a paused player really blocks the server
MAX_PAUSE = 20.0  # well below waitress's channel_timeout (120 s): a close during a pause is an error


@dataclass
class Stats:
    """Counters and latencies shared by every client thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: dict[str, int] = field(default_factory=lambda: {"ranged": 0, "whole": 0, "player": 0})
    bytes_checked: int = 0
    errors: list[str] = field(default_factory=list)
    wrong_bytes: int = 0
    latency: dict[str, list[float]] = field(default_factory=lambda: {"ranged": [], "whole": [], "player_ttfb": []})

    def ok(self, kind: str, nbytes: int, seconds: float, latency_key: str) -> None:
        with self.lock:
            self.requests[kind] += 1
            self.bytes_checked += nbytes
            self.latency[latency_key].append(seconds)

    def error(self, message: str, *, wrong: bool = False) -> None:
        with self.lock:
            if wrong:
                self.wrong_bytes += 1
            if len(self.errors) < 50:
                self.errors.append(message)
            else:
                self.errors.append("...")
                del self.errors[50:]


def rss_bytes(pid: int) -> int | None:
    """The resident set size of ``pid`` (Linux /proc; psutil elsewhere when installed)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    try:
        import psutil  # type: ignore[import-not-found]

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # noqa: BLE001 - RSS is reported as unknown, never fails the soak
        return None


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds (empty input gives zeros)."""
    if not values:
        return {"n": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"n": len(ordered), "p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": ordered[-1] * 1000}


def make_media(root: Path, seed: int) -> dict[str, bytes]:
    """Write the soak's media files (random bytes, fixed seed) and return them by locator."""
    rng = random.Random(seed)
    sizes = {
        "ranged/a.flac": 3 * 1024 * 1024 + 17,
        "ranged/歌 b.mp3": 5 * 1024 * 1024 + 3,
        "ranged/c #1.ogg": 1024 * 1024 + 1,
        "whole/d.m4a": 2 * 1024 * 1024 + 9,
        "whole/e.wav": 4 * 1024 * 1024 + 11,
        "players/long.flac": PAUSED_FILE_SIZE,
    }
    files = {}
    for locator, size in sizes.items():
        data = rng.randbytes(size)
        path = root / locator
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[locator] = data
    return files


def read_response(conn: http.client.HTTPConnection, method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One request on a kept-alive connection; the whole body read."""
    conn.request(method, url, headers=headers)
    response = conn.getresponse()
    body = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def ranged_client(
    port: int, urls: dict[str, str], files: dict[str, bytes], stats: Stats, stop: threading.Event, seed: int,
    limit: int | None = None,
) -> None:
    """Random single ranges (closed, open-ended, suffix) over the ranged files, each checked byte for byte."""
    rng = random.Random(seed)
    locators = [loc for loc in files if loc.startswith("ranged/")]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set() and (limit is None or stats.requests["ranged"] + len(stats.errors) < limit):
        locator = rng.choice(locators)
        data = files[locator]
        size = len(data)
        kind = rng.random()
        if kind < 0.8:
            start = rng.randrange(size)
            end = min(size - 1, start + rng.randrange(1, 256 * 1024))
            spec, first, last = f"bytes={start}-{end}", start, end
        elif kind < 0.9:
            start = rng.randrange(size - 64 * 1024, size)
            spec, first, last = f"bytes={start}-", start, size - 1
        else:
            n = rng.randrange(1, 64 * 1024)
            spec, first, last = f"bytes=-{n}", size - n, size - 1
        began = time.perf_counter()
        try:
            status, headers, body = read_response(conn, "GET", urls[locator], {"Range": spec})
        except (OSError, http.client.HTTPException) as error:
            stats.error(f"ranged {spec}: {type(error).__name__}: {error}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        elapsed = time.perf_counter() - began
        if status != 206 or headers.get("content-range") != f"bytes {first}-{last}/{size}":
            stats.error(f"ranged {spec}: status {status}, Content-Range {headers.get('content-range')!r}")
        elif body != data[first : last + 1]:
            stats.error(f"ranged {spec}: wrong bytes", wrong=True)
        else:
            stats.ok("ranged", len(body), elapsed, "ranged")
    conn.close()


def whole_client(port: int, urls: dict[str, str], files: dict[str, bytes], stats: Stats, stop: threading.Event, seed: int) -> None:
    """Whole-file downloads, each compared with the file."""
    rng = random.Random(seed)
    locators = [loc for loc in files if loc.startswith("whole/")]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        locator = rng.choice(locators)
        began = time.perf_counter()
        try:
            status, headers, body = read_response(conn, "GET", urls[locator], {})
        except (OSError, http.client.HTTPException) as error:
            stats.error(f"whole {locator}: {type(error).__name__}: {error}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        elapsed = time.perf_counter() - began
        if status != 200:
            stats.error(f"whole {locator}: status {status}")
        elif body != files[locator]:
            stats.error(f"whole {locator}: wrong bytes", wrong=True)
        else:
            stats.ok("whole", len(body), elapsed, "whole")
    conn.close()


def paused_player(port: int, url: str, data: bytes, stats: Stats, stop: threading.Event, seed: int) -> None:
    """A player that starts a stream, reads a little, pauses (stops reading), and reads on.

    Each session opens a new connection at a random offset (a seek), reads
    64-512 KiB in steps with pauses of up to ``MAX_PAUSE`` seconds between
    them, checks every byte, and then drops the connection as a player does
    when the user skips.
    """
    rng = random.Random(seed)
    size = len(data)
    while not stop.is_set():
        offset = rng.randrange(0, size // 2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=MAX_PAUSE + 60)
        began = time.perf_counter()
        try:
            conn.request("GET", url, headers={"Range": f"bytes={offset}-"})
            response = conn.getresponse()
            first = response.read(1)
            ttfb = time.perf_counter() - began
            if response.status != 206 or response.getheader("Content-Range") != f"bytes {offset}-{size - 1}/{size}":
                stats.error(f"player at {offset}: status {response.status}, Content-Range {response.getheader('Content-Range')!r}")
                continue
            position, received = offset, first
            steps = rng.randint(1, 3)
            for _ in range(steps):
                chunk = response.read(rng.randrange(64 * 1024, 512 * 1024))
                received += chunk
                if stop.wait(rng.uniform(1.0, MAX_PAUSE)):
                    break
            if received != data[position : position + len(received)] or not received:
                stats.error(f"player at {offset}: wrong bytes", wrong=True)
            else:
                stats.ok("player", len(received), ttfb, "player_ttfb")
        except (OSError, http.client.HTTPException) as error:
            stats.error(f"player at {offset}: {type(error).__name__}: {error}")
        finally:
            conn.close()


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the server answers ``/healthz`` (or fail if it died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"origin-server exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            status, _, _ = read_response(conn, "GET", "/healthz", {})
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("origin-server did not become healthy")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def idle_anchor(port: int, urls: dict[str, str], files: dict[str, bytes], n: int = 200) -> list[float]:
    """Latency of ranged requests from one client on the idle server: the anchor."""
    stats = Stats()
    ranged_client(port, urls, files, stats, threading.Event(), seed=12345, limit=n)
    if stats.errors:
        raise SystemExit(f"anchor run failed: {stats.errors[:3]}")
    return stats.latency["ranged"]


def run(args: argparse.Namespace) -> int:
    """Run the soak and print its report; return the exit code."""
    with tempfile.TemporaryDirectory(prefix="soak-origin-") as tmp:
        tmpdir = Path(tmp)
        media = tmpdir / "media"
        files = make_media(media, args.seed)
        key_file = tmpdir / "keys.txt"
        key_file.write_text(SECRET + "\n", encoding="utf-8")
        port = free_port()
        log_path = tmpdir / "origin.log"
        command = [sys.executable, "-m", "origin_server", "serve", "--media-root", str(media),
                   "--secret-file", str(key_file), "--host", "127.0.0.1", "--port", str(port),
                   "--connection-limit", str(args.connection_limit)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        expires = time.time() + args.seconds + 3600
        urls = {loc: STREAM + create_origin_token(SECRET, loc, expires) for loc in files}
        with open(log_path, "wb") as log:
            server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(port, server)
            rss_idle = rss_bytes(server.pid)
            anchor = percentiles(idle_anchor(port, urls, files))

            stats = Stats()
            stop = threading.Event()
            threads = []
            for i in range(args.ranged):
                threads.append(threading.Thread(target=ranged_client, args=(port, urls, files, stats, stop, 1000 + i), daemon=True))
            for i in range(args.whole):
                threads.append(threading.Thread(target=whole_client, args=(port, urls, files, stats, stop, 2000 + i), daemon=True))
            for i in range(args.paused):
                threads.append(threading.Thread(
                    target=paused_player,
                    args=(port, urls["players/long.flac"], files["players/long.flac"], stats, stop, 3000 + i),
                    daemon=True,
                ))
            began = time.monotonic()
            for thread in threads:
                thread.start()
            # RSS "at start" is sampled once every client is connected and working.
            time.sleep(min(5.0, args.seconds / 4))
            rss_start = rss_bytes(server.pid)
            rss_samples = [rss_start]
            while time.monotonic() - began < args.seconds:
                time.sleep(1.0)
                rss_samples.append(rss_bytes(server.pid))
                if server.poll() is not None:
                    stats.error(f"origin-server exited with {server.returncode} during the soak")
                    break
            rss_end = rss_bytes(server.pid)
            stop.set()
            for thread in threads:
                thread.join(timeout=MAX_PAUSE + 90)
            elapsed = time.monotonic() - began
            stuck = sum(thread.is_alive() for thread in threads)
            if stuck:
                stats.error(f"{stuck} client threads did not finish")
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        tokens_in_log = sum(url.rsplit("/", 1)[1] in log_text for url in urls.values())
        if tokens_in_log:
            stats.error(f"{tokens_in_log} tokens appear in the server's log")
        if "Traceback" in log_text:
            stats.error("the server logged a traceback")

    def mib(value: int | None) -> str:
        return "n/a" if value is None else f"{value / 2**20:.1f} MiB"

    known = [v for v in rss_samples if v is not None]
    loaded = {key: percentiles(values) for key, values in stats.latency.items()}
    report = {
        "seconds": round(elapsed, 1),
        "clients": {"ranged": args.ranged, "whole": args.whole, "paused": args.paused},
        "requests": stats.requests,
        "mb_checked": round(stats.bytes_checked / 1e6, 1),
        "errors": len(stats.errors),
        "wrong_bytes": stats.wrong_bytes,
        "rss": {"idle": rss_idle, "start": rss_start, "end": rss_end, "max": max(known) if known else None},
        "latency_ms": {"anchor_ranged_idle": anchor, **loaded},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        total = sum(stats.requests.values())
        print(f"soak: {elapsed:.0f} s, {args.ranged} ranged + {args.whole} whole-file + {args.paused} paused clients")
        print(f"requests: {total} ({stats.requests['ranged']} ranged, {stats.requests['whole']} whole, "
              f"{stats.requests['player']} player sessions), {stats.bytes_checked / 1e6:.0f} MB checked byte for byte "
              f"({total / elapsed:.0f} req/s)")
        print(f"errors: {len(stats.errors)}, wrong bytes: {stats.wrong_bytes}")
        ratio = "" if not (rss_start and rss_end) else f" (end/start {rss_end / rss_start:.2f}x)"
        print(f"server RSS: idle {mib(rss_idle)}, start {mib(rss_start)}, end {mib(rss_end)}{ratio}, "
              f"max {mib(max(known) if known else None)}")
        a = anchor
        print(f"anchor, one client on the idle server, ranged: p50 {a['p50']:.1f} ms, p90 {a['p90']:.1f} ms, "
              f"p99 {a['p99']:.1f} ms, max {a['max']:.1f} ms")
        for key, label in (("ranged", "ranged (request to last byte)"), ("whole", "whole file (to last byte)"),
                           ("player_ttfb", "player seek (to first byte)")):
            p = loaded[key]
            ratio_text = f" = {p['p50'] / a['p50']:.1f}x anchor p50" if a["p50"] else ""
            print(f"{label}: n {p['n']}, p50 {p['p50']:.1f} ms{ratio_text}, p90 {p['p90']:.1f} ms, "
                  f"p99 {p['p99']:.1f} ms, max {p['max']:.1f} ms")
        for message in stats.errors[:10]:
            print(f"  error: {message}", file=sys.stderr)
    return 1 if stats.errors or stats.wrong_bytes else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the soak."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to keep the load on (default 60)")
    parser.add_argument("--ranged", type=int, default=32, help="random ranged-read clients (default 32)")
    parser.add_argument("--whole", type=int, default=8, help="whole-file readers (default 8)")
    parser.add_argument("--paused", type=int, default=40, help="paused players (default 40)")
    parser.add_argument("--threads", type=int, default=0, help="server worker threads (default: the server's own)")
    parser.add_argument("--connection-limit", type=int, default=256, help="server connection limit (default 256)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
