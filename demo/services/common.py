"""Shared bits of the two demo services: a small HTTP/1.1 JSON server.

Python 3 standard library only. Each service logs one line per request to
stderr, so `tail -f` on its log shows what it saw.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, so weft can pool connections
    server_version = "weft-demo"
    sys_version = ""

    def send_json(self, status, obj, extra_headers=None):
        body = (json.dumps(obj, indent=2) + "\n").encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drain_body(self):
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s x-request-id=%s\n" % (
            self.server.service_name, fmt % args, self.headers.get("x-request-id", "-")))
        sys.stderr.flush()


def serve(name, address, handler, note="", **attrs):
    """Serves forever on address ("host:port"); attrs become server attributes."""
    host, port = address.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), handler)
    server.daemon_threads = True
    server.service_name = name
    for k, v in attrs.items():
        setattr(server, k, v)
    sys.stderr.write("%s listening on %s%s\n" % (name, address, note))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
