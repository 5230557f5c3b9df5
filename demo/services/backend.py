#!/usr/bin/env python3
"""The demo backend: answers every GET with JSON saying who it is and which
mesh headers reached it (x-request-id, x-forwarded-for, x-forwarded-proto).

It is reached only through its sidecar's inbound listener.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import JsonHandler, serve  # noqa: E402


class Backend(JsonHandler):
    def do_GET(self):
        self.drain_body()
        self.send_json(200, {
            "service": "backend",
            "path": self.path,
            "x-request-id": self.headers.get("x-request-id"),
            "x-forwarded-for": self.headers.get("x-forwarded-for"),
            "x-forwarded-proto": self.headers.get("x-forwarded-proto"),
        })

    do_HEAD = do_GET


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", default="127.0.0.1:18082")
    serve("backend", ap.parse_args().listen, Backend)


if __name__ == "__main__":
    main()
