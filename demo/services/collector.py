#!/usr/bin/env python3
"""The demo trace collector: takes OTLP/HTTP JSON exports on POST /v1/traces
and appends one JSON line per span to a file, so the demo can show a trace.
A stand-in for an OpenTelemetry Collector, Jaeger or Tempo.
"""
import argparse
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import JsonHandler, serve  # noqa: E402

LOCK = threading.Lock()


def attrs(items):
    out = {}
    for a in items or []:
        v = a.get("value", {})
        out[a.get("key")] = next(iter(v.values()), None) if v else None
    return out


class Collector(JsonHandler):
    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        try:
            doc = json.loads(self.rfile.read(n))
        except ValueError:
            self.send_json(400, {"error": "not JSON"})
            return
        lines = []
        for rs in doc.get("resourceSpans", []):
            service = attrs(rs.get("resource", {}).get("attributes")).get("service.name")
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    lines.append(json.dumps({
                        "service": service, "name": s.get("name"), "kind": s.get("kind"),
                        "trace_id": s.get("traceId"), "span_id": s.get("spanId"),
                        "parent_id": s.get("parentSpanId") or None,
                        "start": int(s.get("startTimeUnixNano", 0)),
                        "end": int(s.get("endTimeUnixNano", 0)),
                        "attributes": attrs(s.get("attributes"))}))
        with LOCK, open(self.server.out, "a") as fh:
            fh.write("".join(line + "\n" for line in lines))
        self.send_json(200, {})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:14318")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    serve("collector", a.listen, Collector, out=a.out)


if __name__ == "__main__":
    main()
