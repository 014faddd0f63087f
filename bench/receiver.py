"""A webhook receiver for bench/run.sh (BENCH_WEBHOOKS=delivered): answers every POST with
204 and logs one line per request, on 127.0.0.1 only. Signatures are not checked here (the
tests do that); this measures what delivering costs the server."""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()
        if self.headers.get("webhook-id"):
            print(self.headers["webhook-id"], flush=True)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
