"""A webhook receiver for the integration tests: verifies each delivery with Standard Webhooks'
reference library (`standardwebhooks`, from PyPI) and answers as the path asks.

    POST /ok/<name>        200
    POST /fail<N>/<name>   500 for the first N attempts of each webhook-id, then 200
    POST /status<S>/<name> always S (410, 500, 302, ...)
    PUT  /_secrets/<name>  {"secrets": ["whsec_..."]}: the secrets deliveries to <name> are checked with
    GET  /_log             every delivery: {path, name, id, timestamp, verified: [bool per secret], body, answered}

Prints its port on the first line of stdout.
"""

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
LOG = []
SECRETS = {}
ATTEMPTS = {}


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the Worker's fetch expects of a server that sends Content-Length: with
    # HTTP/1.0 a reused connection can be found closed ("Network connection lost").
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        if status in (301, 302):
            self.send_header("location", "https://example.com/elsewhere")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.answer(200, json.dumps(LOG).encode())
        self.answer(404)

    def do_PUT(self):
        m = re.fullmatch(r"/_secrets/([\w-]+)", self.path)
        if not m:
            return self.answer(404)
        with LOCK:
            SECRETS[m.group(1)] = json.loads(self.body())["secrets"]
        self.answer(204)

    def do_POST(self):
        m = re.fullmatch(r"/(ok|fail(\d+)|status(\d+))/([\w-]+)", self.path)
        if not m:
            return self.answer(404)
        raw = self.body()
        name = m.group(4)
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        for secret in SECRETS.get(name, []):
            try:
                Webhook(secret).verify(raw, headers)
                verified.append(True)
            except WebhookVerificationError:
                verified.append(False)
        wid = headers.get("webhook-id", "")
        with LOCK:
            ATTEMPTS[(name, wid)] = ATTEMPTS.get((name, wid), 0) + 1
            seen = ATTEMPTS[(name, wid)]
        if m.group(2) is not None:
            status = 500 if seen <= int(m.group(2)) else 200
        elif m.group(3) is not None:
            status = int(m.group(3))
        else:
            status = 200
        with LOCK:
            LOG.append({
                "path": self.path,
                "name": name,
                "id": wid,
                "timestamp": headers.get("webhook-timestamp"),
                "signatures": len(headers.get("webhook-signature", "").split(" ")),
                "verified": verified,
                "body": json.loads(raw),
                "answered": status,
            })
        self.answer(status)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
