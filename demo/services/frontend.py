#!/usr/bin/env python3
"""The demo frontend: for every GET it calls the backend THROUGH its own
sidecar's outbound listener (it never talks to the backend directly), passes
the x-request-id it received along, and answers with JSON holding what it saw
and what the backend said.

Path of one request:
  client -> sidecar A inbound -> frontend -> sidecar A outbound
         -> sidecar B inbound -> backend
"""
import argparse
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import JsonHandler, serve  # noqa: E402

OUTBOUND = "127.0.0.1:15001"
# what an application must pass from its inbound request to its outbound
# calls for traces to join up (Istio asks the same of applications)
TRACE_HEADERS = ("x-request-id", "traceparent", "tracestate", "b3", "x-b3-traceid",
                 "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags")


class Frontend(JsonHandler):
    def do_GET(self):
        self.drain_body()
        request_id = self.headers.get("x-request-id")
        seen = {
            "service": "frontend",
            "path": self.path,
            "x-request-id": request_id,
            "x-forwarded-for": self.headers.get("x-forwarded-for"),
        }
        host, port = self.server.outbound.rsplit(":", 1)
        headers = {"host": "backend"}
        for name in TRACE_HEADERS:
            if self.headers.get(name):
                headers[name] = self.headers.get(name)
        seen["traceparent"] = self.headers.get("traceparent")
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            conn.request("GET", "/api/hello", headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            conn.close()
        except OSError as e:
            seen["backend_error"] = str(e)
            self.send_json(502, seen)
            return
        seen["backend_status"] = resp.status
        weft_error = resp.getheader("x-weft-error")
        if weft_error:
            seen["backend_x_weft_error"] = weft_error
        try:
            seen["backend"] = json.loads(raw)
        except ValueError:
            seen["backend"] = raw.decode("utf-8", "replace")
        self.send_json(200 if resp.status == 200 else 502, seen)

    do_HEAD = do_GET


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:18081")
    ap.add_argument("--outbound", default=OUTBOUND,
                    help="this service's sidecar outbound listener (default %(default)s)")
    args = ap.parse_args()
    serve("frontend", args.listen, Frontend,
          note=", calling the backend via %s" % args.outbound, outbound=args.outbound)


if __name__ == "__main__":
    main()
