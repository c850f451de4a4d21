#!/usr/bin/env python3
"""A local SMS gateway for the integration tests (Python's http.server).

    sms_sink.py PORT DIR

Answers POSTs on 127.0.0.1:PORT and appends each request, JSON or form,
with its Authorization header and the status given, as one JSON line to
DIR/sms.jsonl. Numbers choose the answer: one ending in 0500 gets 500 the
first time and 200 after, one ending in 0400 always 400; others 200.
DIR/ready appears once it listens.
"""
import json
import os
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

port, outdir = int(sys.argv[1]), sys.argv[2]
os.makedirs(outdir, exist_ok=True)
seen = {}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            fields = json.loads(body)
        else:
            fields = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        to = fields.get("to", "")
        seen[to] = seen.get(to, 0) + 1
        if to.endswith("0500") and seen[to] == 1:
            status, answer = 500, '{"error":"temporarily unavailable"}'
        elif to.endswith("0400"):
            status, answer = 400, '{"error":"invalid destination number"}'
        else:
            status, answer = 200, '{"id":"%d"}' % time.time_ns()
        rec = {"fields": fields, "content_type": ctype, "path": self.path,
               "authorization": self.headers.get("Authorization", ""),
               "status": status, "at": time.time()}
        with open(os.path.join(outdir, "sms.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, fmt, *args):
        pass


server = HTTPServer(("127.0.0.1", port), Handler)
open(os.path.join(outdir, "ready"), "w").close()
server.serve_forever()
