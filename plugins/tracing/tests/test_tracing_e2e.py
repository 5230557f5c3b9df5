# SPDX-License-Identifier: LGPL-2.1-or-later
"""The tracing plugin end to end: a client calls sidecar A (an outbound
listener), which calls sidecar B (an inbound listener), which calls the
application. A and B are real weft processes with the built tracing.so;
the application is a python server that copies the trace headers it
receives into its answer; a python capture server stands in for the
OpenTelemetry collector (POST /v1/traces) or Zipkin (POST /api/v2/spans)
and checks every body's shape strictly before keeping its spans."""

import http.server
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "e2e"))

from weftlib import (Backend, Caller, Tap, Weft, check, config_yaml,  # noqa: E402
                     free_port, request, wait_for)

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DIGITS = re.compile(r"^[0-9]+$")
TRACE_HEADERS = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid",
                 "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "x-request-id")


# ---------------------------------------------------------------- the collector

class ShapeError(Exception):
    pass


def need(cond, what):
    if not cond:
        raise ShapeError(what)


def check_attributes(attrs, where):
    need(isinstance(attrs, list), f"{where}: attributes is not a list")
    out = {}
    for a in attrs:
        need(isinstance(a, dict) and set(a) == {"key", "value"}, f"{where}: attribute {a}")
        need(isinstance(a["key"], str) and a["key"], f"{where}: attribute key {a}")
        v = a["value"]
        need(isinstance(v, dict) and len(v) == 1, f"{where}: attribute value {a}")
        if "stringValue" in v:
            need(isinstance(v["stringValue"], str), f"{where}: stringValue {a}")
            out[a["key"]] = v["stringValue"]
        elif "intValue" in v:
            # proto3 JSON: int64 as a decimal string (a number is allowed too)
            iv = v["intValue"]
            need((isinstance(iv, str) and DIGITS.match(iv)) or isinstance(iv, int),
                 f"{where}: intValue {a}")
            out[a["key"]] = int(iv)
        else:
            raise ShapeError(f"{where}: unexpected value kind {a}")
    return out


def check_otlp_span(s, now_ns):
    allowed = {"traceId", "spanId", "parentSpanId", "name", "kind", "startTimeUnixNano",
               "endTimeUnixNano", "attributes", "status", "traceState", "flags"}
    need(isinstance(s, dict), "span is not an object")
    need(set(s) <= allowed, f"unknown span fields {set(s) - allowed}")
    for k in ("traceId", "spanId", "name", "kind", "startTimeUnixNano", "endTimeUnixNano"):
        need(k in s, f"span lacks {k}")
    need(HEX32.match(s["traceId"]) and s["traceId"] != "0" * 32, f"traceId {s['traceId']}")
    need(HEX16.match(s["spanId"]) and s["spanId"] != "0" * 16, f"spanId {s['spanId']}")
    if "parentSpanId" in s:
        need(HEX16.match(s["parentSpanId"]), f"parentSpanId {s['parentSpanId']}")
    need(isinstance(s["name"], str) and s["name"], "name")
    need(s["kind"] in (2, 3), f"kind {s['kind']}")
    for k in ("startTimeUnixNano", "endTimeUnixNano"):
        need(isinstance(s[k], str) and DIGITS.match(s[k]), f"{k} {s[k]!r} is not a digit string")
        need(abs(int(s[k]) - now_ns) < 3600 * 10**9, f"{k} {s[k]} is not about now")
    need(int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]), "ends before it starts")
    attrs = check_attributes(s.get("attributes", []), "span")
    status = s.get("status", {})
    need(isinstance(status, dict) and set(status) <= {"code", "message"}, f"status {status}")
    need(status.get("code", 0) in (0, 1, 2), f"status code {status}")
    return {"traceId": s["traceId"], "spanId": s["spanId"],
            "parentSpanId": s.get("parentSpanId", ""), "name": s["name"], "kind": s["kind"],
            "start": int(s["startTimeUnixNano"]), "end": int(s["endTimeUnixNano"]),
            "attrs": attrs, "status": status}


def check_otlp(body):
    now_ns = time.time_ns()
    need(isinstance(body, dict) and set(body) == {"resourceSpans"}, "top level")
    need(isinstance(body["resourceSpans"], list) and body["resourceSpans"], "resourceSpans")
    out = []
    for rs in body["resourceSpans"]:
        need(set(rs) <= {"resource", "scopeSpans", "schemaUrl"}, f"resourceSpans keys {set(rs)}")
        res = check_attributes(rs["resource"]["attributes"], "resource")
        need(isinstance(res.get("service.name"), str) and res["service.name"], "service.name")
        need(isinstance(rs["scopeSpans"], list) and rs["scopeSpans"], "scopeSpans")
        for ss in rs["scopeSpans"]:
            need(ss["scope"]["name"] == "weft", f"scope {ss['scope']}")
            need(isinstance(ss["spans"], list) and ss["spans"], "spans")
            for s in ss["spans"]:
                span = check_otlp_span(s, now_ns)
                span["service"] = res["service.name"]
                out.append(span)
    return out


def check_zipkin(body):
    need(isinstance(body, list) and body, "a Zipkin v2 body is a non-empty array")
    out = []
    for s in body:
        for k in ("traceId", "id", "name", "kind", "timestamp", "duration", "localEndpoint",
                  "tags"):
            need(k in s, f"zipkin span lacks {k}")
        need(HEX32.match(s["traceId"]) or HEX16.match(s["traceId"]), f"traceId {s['traceId']}")
        need(HEX16.match(s["id"]), f"id {s['id']}")
        if "parentId" in s:
            need(HEX16.match(s["parentId"]), f"parentId {s['parentId']}")
        need(s["kind"] in ("SERVER", "CLIENT"), f"kind {s['kind']}")
        need(isinstance(s["timestamp"], int) and s["timestamp"] > 10**15, "timestamp in us")
        need(isinstance(s["duration"], int) and s["duration"] >= 1, "duration in us")
        need(isinstance(s["localEndpoint"].get("serviceName"), str), "localEndpoint.serviceName")
        if "remoteEndpoint" in s:
            r = s["remoteEndpoint"]
            need(("ipv4" in r) != ("ipv6" in r) and isinstance(r.get("port", 0), int),
                 f"remoteEndpoint {r}")
        need(all(isinstance(k, str) and isinstance(v, str) for k, v in s["tags"].items()),
             "tags are strings")
        out.append(s)
    return out


class Collector:
    """A capture server for OTLP/HTTP JSON and Zipkin v2 JSON. A body of
    the wrong shape is answered 400 and noted in errors."""

    def __init__(self, status=200, delay=0.0):
        self.port = free_port()
        self.status = status
        self.delay = delay
        self.spans = []
        self.zipkin = []
        self.errors = []
        self.posts = 0
        self.lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                code = collector.take(self.path, self.headers.get("content-type", ""), body)
                time.sleep(collector.delay)
                out = b"{}"
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def otlp_url(self):
        return f"http://127.0.0.1:{self.port}/v1/traces"

    @property
    def zipkin_url(self):
        return f"http://127.0.0.1:{self.port}/api/v2/spans"

    def take(self, path, ctype, body):
        try:
            need(ctype.split(";")[0].strip() == "application/json", f"content-type {ctype}")
            doc = json.loads(body)
            if path == "/v1/traces":
                spans, into = check_otlp(doc), self.spans
            elif path == "/api/v2/spans":
                spans, into = check_zipkin(doc), self.zipkin
            else:
                raise ShapeError(f"POST to {path}")
        except (ShapeError, ValueError, KeyError, TypeError, AttributeError) as e:
            with self.lock:
                self.errors.append(f"{path}: {e!r}: {body[:300]!r}")
            return 400
        with self.lock:
            self.posts += 1
            if self.status == 200:
                into.extend(spans)
        return self.status

    def trace(self, trace_id):
        with self.lock:
            return [s for s in self.spans if s["traceId"] == trace_id]

    def wait_trace(self, trace_id, n):
        return wait_for(lambda: len(self.trace(trace_id)) >= n and self.trace(trace_id), 10,
                        what=f"{n} spans of trace {trace_id}")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        check(not self.errors, f"bad export bodies: {self.errors}")


# ---------------------------------------------------------------- the application

class App(Backend):
    """GET /app... answers 200 and copies the trace headers it received into
    its answer as x-seen-<name>; it keeps what it saw in traces too."""

    def __init__(self):
        self.traces = []
        super().__init__("app")

    def _answer(self, c, f, method, target, headers, hmap, body):
        if not target.startswith("/app"):
            return super()._answer(c, f, method, target, headers, hmap, body)
        seen = {k: hmap[k] for k in TRACE_HEADERS if k in hmap}
        with self.lock:
            self.traces.append(seen)
        status = int(target.split("/status/")[1]) if "/status/" in target else 200
        self._send(c, status, json.dumps(seen).encode(),
                   extra=[("x-seen-" + k, v) for k, v in seen.items()])
        return hmap.get("connection", "").lower() != "close"


def seen(h, name):
    return h.get("x-seen-" + name)


def parse_tp(value):
    check(value is not None, "the application got no traceparent")
    m = re.match(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$", value)
    check(m, f"traceparent {value!r}")
    return m.group(1), m.group(2), m.group(3)


# ---------------------------------------------------------------- sidecars

def tracing_yaml(endpoint, service, sampling=100, interval="100ms", max_spans=512, extra=""):
    return (f"tracing:\n  endpoint: {endpoint}\n  sampling: {sampling}\n"
            f"  service_name: {service}\n"
            f"  batch:\n    interval: {interval}\n    max_spans: {max_spans}\n{extra}")


def sidecar(direction, upstream, tracing, workers=2):
    port, admin = free_port(), free_port()
    text = config_yaml([{"name": direction, "address": f"127.0.0.1:{port}",
                         "direction": direction, "upstream": "next", "plugins": ["tracing"]}],
                       {"next": [upstream]}, admin, f"workers: {workers}\n" + tracing)
    w = Weft(text)
    w.port = port
    w.start()
    return w


class Mesh:
    """client -> A (outbound) -> B (inbound) -> application"""

    def __init__(self, sampling=100, exporter_extra="", zipkin=False, collector_status=200):
        self.collector = Collector(collector_status)
        self.app = App()
        url = self.collector.zipkin_url if zipkin else self.collector.otlp_url
        extra = ("  exporter: zipkin\n" if zipkin else "") + exporter_extra
        self.b = sidecar("inbound", self.app.address,
                         tracing_yaml(url, "svc-b", sampling, extra=extra))
        self.a = sidecar("outbound", f"127.0.0.1:{self.b.port}",
                         tracing_yaml(url, "svc-a", sampling, extra=extra))

    def get(self, path="/app", headers=None):
        status, h, body = request(self.a.port, path=path, headers=headers)
        return status, h, body

    def spans(self, trace_id):
        """A's CLIENT span and B's SERVER span of a trace"""
        spans = self.collector.wait_trace(trace_id, 2)
        check(len(spans) == 2, f"two spans for the trace, got {spans}")
        by_kind = {s["kind"]: s for s in spans}
        check(set(by_kind) == {2, 3}, f"one SERVER and one CLIENT span: {spans}")
        return by_kind[3], by_kind[2]

    def stop(self):
        try:
            self.a.stop()
            self.b.stop()
        finally:
            self.app.stop()
            self.collector.stop()


def spans_total(w, result):
    return w.metrics().get(f'weft_tracing_spans_total{{result="{result}"}}', 0)


def exports_total(w, result):
    return w.metrics().get(f'weft_tracing_exports_total{{result="{result}"}}', 0)


# ---------------------------------------------------------------- propagation and spans

def test_spans_link_across_two_sidecars(mesh):
    status, h, _ = mesh.get("/app/items?page=2", headers={"user-agent": "e2e-client/1"})
    check(status == 200, f"status {status}")
    trace, parent, flags = parse_tp(seen(h, "traceparent"))
    check(flags == "01", f"sampled at 100%: {flags}")
    client, server = mesh.spans(trace)
    check(client["service"] == "svc-a" and server["service"] == "svc-b", "services")
    check(client["traceId"] == server["traceId"] == trace, "one trace id")
    check(client["parentSpanId"] == "", "the client sent no context: A's span is the root")
    check(server["parentSpanId"] == client["spanId"], "B's SERVER span is A's CLIENT span's child")
    check(parent == server["spanId"], "the application's parent is B's SERVER span")
    check(client["name"] == "GET" and server["name"] == "GET", f"names {client['name']}")
    # A's CLIENT span encloses B's SERVER span (same clock, 2 ms slack)
    check(client["start"] <= server["start"] + 2_000_000, "A starts before B")
    check(server["end"] <= client["end"] + 2_000_000, "B ends before A")
    rid = seen(h, "x-request-id")
    for span in (client, server):
        a = span["attrs"]
        check(a["http.request.method"] == "GET", f"method {a}")
        check(a["url.path"] == "/app/items" and a["url.query"] == "page=2", f"url {a}")
        check(a["url.scheme"] == "http", "scheme")
        check(a["http.response.status_code"] == 200, f"status {a}")
        check(a["network.protocol.version"] == "1.1", "protocol")
        check(a["user_agent.original"] == "e2e-client/1", f"user agent {a}")
        check(a["guid:x-request-id"] == rid, f"request id {a} vs {rid}")
        check(a["server.address"] == "127.0.0.1", f"server.address {a}")
        check(span["status"].get("code", 0) == 0, f"status unset {span['status']}")
    check(server["attrs"]["client.address"] == "127.0.0.1", "client.address on SERVER")
    check(client["attrs"]["network.peer.address"] == "127.0.0.1" and
          client["attrs"]["network.peer.port"] == mesh.b.port, f"peer on CLIENT {client['attrs']}")
    check("network.peer.address" not in server["attrs"], "no peer address on SERVER")


def test_client_traceparent_is_kept(mesh):
    t, s = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    status, h, _ = mesh.get(headers={"traceparent": f"00-{t}-{s}-01",
                                     "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"})
    check(status == 200, f"status {status}")
    trace, parent, flags = parse_tp(seen(h, "traceparent"))
    check(trace == t and flags == "01", "the trace id and decision are kept")
    check(seen(h, "tracestate") == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
          "tracestate passed on unchanged")
    client, server = mesh.spans(t)
    check(client["parentSpanId"] == s, "A's CLIENT span is the client's span's child")
    check(server["parentSpanId"] == client["spanId"], "B's parent is A")
    check(parent == server["spanId"], "the application's parent is B")


def test_unsampled_parent_is_followed(mesh):
    """flags 00 from the caller: nothing recorded even at 100%, and the
    decision travels on"""
    t = "5bf92f3577b34da6a3ce929d0e0e4736"
    status, h, _ = mesh.get(headers={"traceparent": f"00-{t}-00f067aa0ba902b7-00"})
    check(status == 200, f"status {status}")
    trace, _, flags = parse_tp(seen(h, "traceparent"))
    check(trace == t and flags == "00", f"unsampled decision forwarded: {flags}")
    # a sampled request after it: once its spans are in, the unsampled
    # one would have been too (the queues are emptied in order)
    _, h2, _ = mesh.get()
    mesh.spans(parse_tp(seen(h2, "traceparent"))[0])
    check(mesh.collector.trace(t) == [], "no span for an unsampled parent")


def test_b3_single_client(mesh):
    t16, s = "a3ce929d0e0e4736", "e457b5a2e4d86bd1"
    status, h, _ = mesh.get(headers={"b3": f"{t16}-{s}-1"})
    check(status == 200, f"status {status}")
    trace, parent, flags = parse_tp(seen(h, "traceparent"))
    check(trace == "0" * 16 + t16 and flags == "01", f"B3 trace id padded: {trace}")
    client, server = mesh.spans(trace)
    check(client["parentSpanId"] == s, "A's parent is the B3 span")
    check(server["parentSpanId"] == client["spanId"], "B's parent is A")
    # B3-only applications keep working: b3 rewritten in the same form
    check(seen(h, "b3") == f"{t16}-{server['spanId']}-1-{client['spanId']}",
          f"b3 rewritten: {seen(h, 'b3')}")
    check(parent == server["spanId"], "traceparent parent is B")


def test_b3_multi_client(mesh):
    t, s = "1bf92f3577b34da6a3ce929d0e0e4736", "11f067aa0ba902b7"
    status, h, _ = mesh.get(headers={"x-b3-traceid": t, "x-b3-spanid": s,
                                     "x-b3-parentspanid": "22f067aa0ba902b7",
                                     "x-b3-sampled": "1"})
    check(status == 200, f"status {status}")
    client, server = mesh.spans(t)
    check(client["parentSpanId"] == s, "A's parent is the B3 span")
    check(server["parentSpanId"] == client["spanId"], "B's parent is A")
    check(seen(h, "x-b3-traceid") == t, "x-b3-traceid kept")
    check(seen(h, "x-b3-spanid") == server["spanId"], f"x-b3-spanid {seen(h, 'x-b3-spanid')}")
    check(seen(h, "x-b3-parentspanid") == client["spanId"], "x-b3-parentspanid")
    check(seen(h, "x-b3-sampled") == "1", "x-b3-sampled")
    check(parse_tp(seen(h, "traceparent"))[1] == server["spanId"], "traceparent too")
    # 64-bit ids and a debug flag, which means sampled
    t16 = "b3ce929d0e0e4736"
    status, h, _ = mesh.get(headers={"x-b3-traceid": t16, "x-b3-spanid": s, "x-b3-flags": "1"})
    check(status == 200, f"status {status}")
    client, server = mesh.spans("0" * 16 + t16)
    check(seen(h, "x-b3-traceid") == t16, f"a 64-bit id stays 64-bit: {seen(h, 'x-b3-traceid')}")
    check(seen(h, "x-b3-flags") == "1" and seen(h, "x-b3-sampled") is None, "debug passed on")


def test_malformed_traceparent_starts_new_trace(mesh):
    bad = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
    status, h, _ = mesh.get(headers={"traceparent": bad, "tracestate": "congo=x"})
    check(status == 200, f"a bad traceparent fails nothing: {status}")
    trace, parent, flags = parse_tp(seen(h, "traceparent"))
    check(trace != bad[3:35].lower(), "a new trace")
    check(seen(h, "tracestate") is None, "tracestate dropped with its traceparent")
    client, server = mesh.spans(trace)
    check(client["parentSpanId"] == "", "A's span is a new root")
    check(server["parentSpanId"] == client["spanId"] and parent == server["spanId"], "links")
    for bad in ("00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"):
        status, h, _ = mesh.get(headers={"traceparent": bad})
        check(status == 200, f"{bad}: {status}")
        check(parse_tp(seen(h, "traceparent"))[0] != "4bf92f3577b34da6a3ce929d0e0e4736",
              f"{bad} ignored")


def test_error_status(mesh):
    _, h, _ = mesh.get("/app/status/503")
    client, server = mesh.spans(parse_tp(seen(h, "traceparent"))[0])
    check(server["status"].get("code") == 2 and client["status"].get("code") == 2,
          f"5xx fails both: {server['status']} {client['status']}")
    check(server["attrs"]["http.response.status_code"] == 503, "status code attribute")
    _, h, _ = mesh.get("/app/status/404")
    client, server = mesh.spans(parse_tp(seen(h, "traceparent"))[0])
    check(server["status"].get("code", 0) == 0, f"a 404 is not the server's error {server}")
    check(client["status"].get("code") == 2, f"a 404 fails the CLIENT span {client}")


def test_counters(mesh):
    """every span recorded is exported; nothing dropped or failed"""
    def settled():
        return all(spans_total(w, "recorded") == spans_total(w, "exported") > 0
                   for w in (mesh.a, mesh.b))
    wait_for(settled, 10, what="exported == recorded")
    for w in (mesh.a, mesh.b):
        check(spans_total(w, "dropped") == 0 and spans_total(w, "export_failed") == 0,
              "no loss")
        check(exports_total(w, "ok") > 0 and exports_total(w, "failed") == 0, "exports ok")


# ---------------------------------------------------------------- sampling

def test_sampling_zero_exports_nothing(mesh0):
    for _ in range(5):
        status, h, _ = mesh0.get()
        check(status == 200, f"status {status}")
        trace, parent, flags = parse_tp(seen(h, "traceparent"))
        check(flags == "00", f"propagated as unsampled: {flags}")
    # a sampled parent after them: its spans arrive, the others never did
    t = "6bf92f3577b34da6a3ce929d0e0e4736"
    mesh0.get(headers={"traceparent": f"00-{t}-00f067aa0ba902b7-01"})
    mesh0.spans(t)
    with mesh0.collector.lock:
        traces = {s["traceId"] for s in mesh0.collector.spans}
    check(traces == {t}, f"only the sampled parent's trace was exported: {traces}")
    check(spans_total(mesh0.a, "recorded") == 1 and spans_total(mesh0.b, "recorded") == 1,
          "one span recorded per sidecar")


def test_sampled_parent_overrides_zero(mesh0):
    t = "7bf92f3577b34da6a3ce929d0e0e4736"
    status, h, _ = mesh0.get(headers={"b3": f"{t}-00f067aa0ba902b7-1"})
    check(status == 200, f"status {status}")
    client, server = mesh0.spans(t)
    check(client["parentSpanId"] == "00f067aa0ba902b7", "parent-based sampling")
    check(parse_tp(seen(h, "traceparent"))[2] == "01", "sampled flag travels on")


# ---------------------------------------------------------------- export

def test_zipkin_exporter():
    mesh = Mesh(zipkin=True)
    try:
        status, h, _ = mesh.get("/app/z?x=1")
        check(status == 200, f"status {status}")
        trace, parent, _ = parse_tp(seen(h, "traceparent"))
        c = mesh.collector

        def both():
            with c.lock:
                got = [s for s in c.zipkin if s["traceId"] == trace]
            return len(got) == 2 and got
        spans = wait_for(both, 10, what="two zipkin spans")
        by_kind = {s["kind"]: s for s in spans}
        client, server = by_kind["CLIENT"], by_kind["SERVER"]
        check(server["parentId"] == client["id"] and parent == server["id"], "links")
        check(client["localEndpoint"]["serviceName"] == "svc-a", "A's service")
        check(server["localEndpoint"]["serviceName"] == "svc-b", "B's service")
        check(client["remoteEndpoint"] == {"ipv4": "127.0.0.1", "port": mesh.b.port},
              f"CLIENT remote {client['remoteEndpoint']}")
        check(server["tags"]["http.request.method"] == "GET", "tags")
        check(server["tags"]["url.path"] == "/app/z" and server["tags"]["url.query"] == "x=1",
              "url tags")
        check(server["tags"]["http.response.status_code"] == "200", "status tag is a string")
        check(c.spans == [], "nothing went to the OTLP path")
    finally:
        mesh.stop()


def single(tracing, workers=2):
    """one inbound sidecar in front of the application"""
    app = App()
    w = sidecar("inbound", app.address, tracing, workers)
    w.app = app
    return w


def test_dead_collector_counts_failures():
    dead = free_port()    # nothing listens there
    url = f"http://127.0.0.1:{dead}/v1/traces"
    w = single(tracing_yaml(url, "svc-dead", interval="50ms"))
    try:
        c = Caller(w.port)
        for i in range(10):
            check(c.get("/app")[0] == 200, "serving while the collector is down")
            wait_for(lambda: exports_total(w, "failed") > i, 5, what="a failed export")
        c.close()
        check(spans_total(w, "export_failed") == 10, "every span counted as failed")
        check(spans_total(w, "exported") == 0 and exports_total(w, "ok") == 0, "none exported")
        lines = [ln for ln in w.logs().splitlines() if f"export to {url} failed" in ln]
        # ten failures, logged at most once per 10 s
        check(1 <= len(lines) <= 2, f"rate-limited log lines: {lines}")
        check(request(w.port, path="/app")[0] == 200, "still serving")
    finally:
        w.stop()
        w.app.stop()


def test_collector_error_answer_counts_failure():
    collector = Collector(status=503)
    w = single(tracing_yaml(collector.otlp_url, "svc-503", interval="50ms"))
    try:
        check(request(w.port, path="/app")[0] == 200, "served")
        wait_for(lambda: exports_total(w, "failed") >= 1, 5, what="a failed export")
        check(spans_total(w, "export_failed") == 1, "the span counted as failed")
        check(collector.posts >= 1, "the collector was reached")
        check(any("HTTP 503" in ln for ln in w.logs().splitlines()), "the answer is logged")
    finally:
        w.stop()
        w.app.stop()
        collector.stop()


def test_slow_collector_fills_the_queue_and_drops():
    """a collector that takes two seconds per POST: at most four POSTs are
    out, the two-span queue fills, and the rest is dropped and counted,
    while the proxy answers at full speed"""
    collector = Collector(delay=2.0)
    w = single(tracing_yaml(collector.otlp_url, "svc-slow", interval="3600s",
                            extra="  queue: 2\n"))
    try:
        c = Caller(w.port)
        t0 = time.monotonic()
        codes = [c.get("/app")[0] for _ in range(40)]
        took = time.monotonic() - t0
        c.close()
        check(codes == [200] * 40, f"every request served: {set(codes)}")
        check(took < 2.0, f"no request waited for the collector: {took:.2f} s for 40")
        recorded, dropped = spans_total(w, "recorded"), spans_total(w, "dropped")
        check(recorded + dropped == 40, f"recorded {recorded} + dropped {dropped}")
        # four POSTs of at most two spans, and two more waiting
        check(recorded <= 10 and dropped >= 30, f"{recorded} recorded, {dropped} dropped")
        # as the POSTs end, what waited goes out; nothing is lost silently
        wait_for(lambda: spans_total(w, "exported") == recorded, 15, what="exported == recorded")
        check(len(collector.spans) == recorded, "the collector has them all")
    finally:
        w.stop()
        w.app.stop()
        collector.stop()


def test_exit_flushes_queued_spans():
    collector = Collector()
    w = single(tracing_yaml(collector.otlp_url, "svc-exit", interval="3600s"))
    try:
        for _ in range(5):
            check(request(w.port, path="/app")[0] == 200, "served")
        check(spans_total(w, "recorded") == 5, "queued")
        check(collector.spans == [], "nothing sent before the hour is up")
    finally:
        w.stop()
        w.app.stop()
    # weft sent them on its way out, and waited for the answer
    check(len(collector.spans) == 5, f"exit flushed {len(collector.spans)} of 5")
    check({s["service"] for s in collector.spans} == {"svc-exit"}, "services")
    collector.stop()


def test_exit_with_a_hung_collector():
    """a POST the collector never answers holds exit up only until the
    export timeout, and nothing leaks (the sanitizer build checks)"""
    collector = Collector(delay=8.0)
    w = single(tracing_yaml(collector.otlp_url, "svc-hung", interval="50ms",
                            extra="  timeout: 1s\n"))
    try:
        check(request(w.port, path="/app")[0] == 200, "served")
        wait_for(lambda: collector.posts >= 1, 5, what="the POST reached the collector")
        check(request(w.port, path="/app")[0] == 200, "served while the POST hangs")
    finally:
        t0 = time.monotonic()
        w.stop()
        took = time.monotonic() - t0
        w.app.stop()
    check(took < 4.0, f"exit took {took:.1f} s")
    collector.status = 200
    collector.stop()


def test_full_batch_is_sent_before_the_timer():
    collector = Collector()
    w = single(tracing_yaml(collector.otlp_url, "svc-kick", interval="3600s", max_spans=5))
    try:
        c = Caller(w.port)      # one connection: one worker's queue
        for _ in range(5):
            c.get("/app")
        c.close()
        wait_for(lambda: len(collector.spans) == 5, 5, what="a full batch sent at once")
        # weft counts the POST when the answer is back, after the
        # collector has the spans
        wait_for(lambda: exports_total(w, "ok") >= 1, 5, what="the POST counted")
        check(exports_total(w, "ok") == 1, "in one POST")
    finally:
        w.stop()
        w.app.stop()
        collector.stop()


def soup_mapped(w):
    with open(f"/proc/{w.proc.pid}/maps") as fh:
        return "libsoup" in fh.read()


def test_libsoup_loads_on_first_export():
    """libsoup (and Kerberos, SQLite, nghttp2... behind it) is mapped only
    when the first batch goes out: a proxy that exports nothing does not
    pay its memory"""
    collector = Collector()
    w = single(tracing_yaml(collector.otlp_url, "svc-lazy", interval="50ms"))
    try:
        # an unsampled request, and export ticks with nothing to send
        unsampled = {"traceparent": "00-8bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
        check(request(w.port, path="/app", headers=unsampled)[0] == 200, "served")
        time.sleep(0.3)
        check(not soup_mapped(w), "libsoup is mapped before any export")
        check(request(w.port, path="/app")[0] == 200, "served")
        wait_for(lambda: len(collector.spans) == 1, 5, what="the span at the collector")
        wait_for(lambda: exports_total(w, "ok") == 1, 5, what="the POST counted")
        check(soup_mapped(w), "libsoup is mapped after the export")
    finally:
        w.stop()
        w.app.stop()
        collector.stop()


# ---------------------------------------------------------------- reload

def test_reload_keeps_counters_and_queued_spans():
    collector = Collector()
    app = App()
    port, admin = free_port(), free_port()

    def text(service, interval):
        return config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}",
                             "upstream": "next", "plugins": ["tracing"]}],
                           {"next": [app.address]}, admin,
                           "workers: 2\n" + tracing_yaml(collector.otlp_url, service,
                                                         interval=interval))
    w = Weft(text("before", "3600s"))
    w.start()
    try:
        for _ in range(3):
            check(request(port, path="/app")[0] == 200, "served")
        check(spans_total(w, "recorded") == 3 and collector.spans == [], "queued, not sent")
        w.rewrite(text("after", "100ms"))
        # the old generation's queue is emptied when it retires
        wait_for(lambda: len(collector.spans) == 3, 10, what="the old queue flushed")
        check({s["service"] for s in collector.spans} == {"before"}, "under the old settings")
        for _ in range(2):
            check(request(port, path="/app")[0] == 200, "served after the reload")
        wait_for(lambda: len(collector.spans) == 5, 10, what="spans after the reload")
        check([s["service"] for s in collector.spans[3:]] == ["after", "after"], "new settings")
        check(spans_total(w, "recorded") == 5, "recorded survived the reload")
        wait_for(lambda: spans_total(w, "exported") == 5, 5, what="exported == 5")
    finally:
        w.stop()
        app.stop()
        collector.stop()


def test_listener_settings_are_refused():
    port, admin = free_port(), free_port()
    text = config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "x",
                         "plugins": ["tracing"], "raw": "    tracing: {sampling: 5}\n"}],
                       {"x": ["127.0.0.1:1"]}, admin, "tracing:\n  sampling: 5\n")
    w = Weft(text, args=["--check"])
    w.start(wait=False)
    rc = w.proc.wait(10)
    check(rc != 0, "refused")
    check("tracing takes no listener settings" in w.logs(), w.logs())
    text = config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "x",
                         "plugins": ["tracing"]}], {"x": ["127.0.0.1:1"]}, admin,
                       "tracing:\n  sampling: 5\n  exporter: jaeger\n")
    w = Weft(text, args=["--check"])
    w.start(wait=False)
    check(w.proc.wait(10) != 0, "refused")
    check(re.search(r"weft\.yaml:\d+:\d+: 'exporter' must be otlp or zipkin", w.logs()), w.logs())


def main():
    tap = Tap()
    mesh = Mesh()
    try:
        for t in (test_spans_link_across_two_sidecars,
                  test_client_traceparent_is_kept,
                  test_unsampled_parent_is_followed,
                  test_b3_single_client,
                  test_b3_multi_client,
                  test_malformed_traceparent_starts_new_trace,
                  test_error_status,
                  test_counters):
            tap.run(t, mesh)
    finally:
        mesh.stop()
    mesh0 = Mesh(sampling=0)
    try:
        tap.run(test_sampling_zero_exports_nothing, mesh0)
        tap.run(test_sampled_parent_overrides_zero, mesh0)
    finally:
        mesh0.stop()
    for t in (test_zipkin_exporter,
              test_dead_collector_counts_failures,
              test_collector_error_answer_counts_failure,
              test_slow_collector_fills_the_queue_and_drops,
              test_exit_flushes_queued_spans,
              test_exit_with_a_hung_collector,
              test_full_batch_is_sent_before_the_timer,
              test_libsoup_loads_on_first_export,
              test_reload_keeps_counters_and_queued_spans,
              test_listener_settings_are_refused):
        tap.run(t)
    tap.done()


if __name__ == "__main__":
    main()
