"""Pull a snapshot clone whenever snapbuild announces a new snapshot (standard library and git only).

Usage: python notify_receiver.py CLONE SECRET_FILE [HOST:PORT]   (default 127.0.0.1:8765; port 0: any free port)
"""

import hashlib
import hmac
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

CLONE = sys.argv[1]
SECRET = Path(sys.argv[2]).read_text(encoding="utf-8-sig").strip().encode("utf-8")
HOST, _, PORT = (sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1:8765").rpartition(":")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(max(0, min(length, 1 << 20)))
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        received = self.headers.get("X-Snapbuild-Signature-256", "")
        if not hmac.compare_digest(expected.encode(), received.encode()):
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(204)  # answer first: the sender does not wait for the pull
        self.end_headers()
        subprocess.run(["git", "-C", CLONE, "pull", "--ff-only", "--quiet"], check=False)


server = HTTPServer((HOST, int(PORT)), Receiver)  # one request at a time: pulls never overlap
print("listening on %s:%d" % server.server_address[:2], flush=True)
server.serve_forever()
