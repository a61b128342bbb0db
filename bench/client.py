"""The sender's upload against curl's, same run: time and peak memory of one large file.

    .venv/bin/python bench/client.py [--mb 512] [--repeat 3]

A file of ``--mb`` MB is sent as ``POST /api/uploads`` (multipart, as the API takes it) to a
local sink that reads the body and throws it away, then answers as the API does (202 and the
upload's ids): the server costs nothing, so what is measured is the sender. Each round runs,
in turn, ``app.client.Client.upload`` in a Python process of its own and ``curl -F
file=@…`` (the peer: what a sender had before). For each: the wall time and the process's peak
RSS (``ru_maxrss`` from ``wait4``). The client streams the file from disk, so its memory must
not grow with the file: the last lines give its peak RSS over a bare interpreter's with the
client imported, and the time ratio against curl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: One upload with the client, in a process of its own (argv: URL, file).
UPLOAD = r"""
import sys
from app.client import Client
with Client(sys.argv[1], "bench") as client:
    accepted = client.upload(sys.argv[2], formats="mp3")
assert accepted.upload_id == "u1", accepted
"""

#: The same interpreter with the client imported and nothing sent: the floor of its RSS.
IMPORT_ONLY = "import app.client"


class Sink(BaseHTTPRequestHandler):
    """Reads a request's body to its end, keeps nothing, answers 202 as the API does."""

    def do_POST(self) -> None:
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        body = json.dumps(
            {"upload_id": "u1", "job_id": "j1", "status": "queued", "links": {}}
        ).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``command``, run to its end."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed with {process.returncode}")
    return seconds, usage.ru_maxrss / 1024


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=512, help="size of the file sent")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians printed)")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory(prefix="bench-client-") as folder:
        source = Path(folder) / "big.wav"
        with open(source, "wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(args.mb):
                out.write(block)
        peers = {
            "app.client": [sys.executable, "-c", UPLOAD, url, str(source)],
            "curl -F": [
                # no Expect: 100-continue (curl would wait a second for an answer the sink
                # does not give; the client sends no Expect either)
                "curl", "-sS", "-o", "/dev/null", "-H", "Expect:", "-F", "formats=mp3",
                "-F", f"file=@{source}", f"{url}/api/uploads",
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in peers}
        rss: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(args.repeat):
            for name, command in peers.items():
                seconds, peak = measured(command)
                times[name].append(seconds)
                rss[name].append(peak)
        _, floor = measured([sys.executable, "-c", IMPORT_ONLY])
    server.shutdown()

    print(f"\none {args.mb} MB upload to a sink on loopback, median of {args.repeat} rounds\n")
    print("| sender | wall s | MB/s | peak RSS MB |")
    print("|---|---|---|---|")
    for name in peers:
        wall = median(times[name])
        print(f"| {name} | {wall:.2f} | {args.mb / wall:.0f} | {median(rss[name]):.0f} |")
    print(f"| python -c 'import app.client' (nothing sent) | | | {floor:.0f} |")
    client_rss = median(rss["app.client"])
    print(f"\nclient peak RSS over the import alone: +{client_rss - floor:.1f} MB")
    print(f"client/curl wall time: {median(times['app.client']) / median(times['curl -F']):.2f}")


if __name__ == "__main__":
    main()
