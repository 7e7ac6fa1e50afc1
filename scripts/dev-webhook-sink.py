#!/usr/bin/env python3
"""Development only: a webhook sink for scripts/dev.sh. It accepts every POST (Slack, Teams,
Alertmanager-shaped webhooks from tend) and writes its body, pretty-printed, to
OUTDIR/<time>-<first path segment>.json, so a newcomer can read what tend sent.

    python3 scripts/dev-webhook-sink.py PORT OUTDIR
"""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    outdir = "."

    def do_POST(self):  # noqa: N802 (the http.server API)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        kind = (self.path.strip("/").split("/") or ["hook"])[0] or "hook"
        kind = "".join(c for c in kind if c.isalnum() or c in "-_") or "hook"
        name = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() % 1000000:06d}-{kind}.json"
        try:
            text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            text = body.decode("utf-8", "replace")
        with open(os.path.join(self.outdir, name), "w", encoding="utf-8") as f:
            f.write(text + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook sink: " + (fmt % args) + "\n")


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    Sink.outdir = outdir
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()


if __name__ == "__main__":
    main()
