#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""RFC 9112 strictness: each malformed request gets its 4xx/501, an
x-weft-error token, a clean close, and nothing reaches the upstream."""

from weftlib import (Backend, Tap, Weft, check, config_yaml, free_port, header_of,
                     parse_status, raw)

backend = Backend("strict")
port = free_port()
weft = Weft(config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}",
                          "upstream": "app"}],
                        {"app": [backend.address]}, free_port(),
                        extra="limits: {max_request_line: 300, max_request_headers: 2KiB}\n"))
weft.start()


def refused(data, status, token=None):
    before = backend.requests
    resp = raw(port, data)
    check(parse_status(resp) == status, f"want {status}, got {resp[:200]!r}")
    check(b"<RESET>" not in resp, f"connection reset instead of a clean close: {resp!r}")
    err = header_of(resp, "x-weft-error")
    check(err is not None, "no x-weft-error")
    if token:
        check(err == token, f"want token {token}, got {err}")
    check(header_of(resp, "connection") == "close", "no connection: close")
    body = resp.split(b"\r\n\r\n", 1)[1]
    check(body.count(b"\n") == 1 and body.endswith(b"\n"), f"body is not one line: {body!r}")
    check(backend.requests == before, "the request reached the upstream")


def test_content_length_and_transfer_encoding():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400,
            "content_length_and_transfer_encoding")


def test_duplicate_content_length():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
            b"hello", 400, "bad_content_length")


def test_conflicting_content_length():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
            b"hello!", 400, "bad_content_length")


def test_comma_listed_content_length():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400,
            "bad_content_length")


def test_negative_content_length():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\nhello", 400,
            "bad_content_length")


def test_malformed_content_length():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nhello", 400,
            "bad_content_length")
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400,
            "bad_content_length")


def test_obs_fold():
    refused(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", 400, "obs_fold")


def test_space_before_colon():
    refused(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A : one\r\n\r\n", 400, "space_before_colon")


def test_bare_cr():
    refused(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: o\rne\r\n\r\n", 400, "bare_cr")


def test_nul_in_head():
    refused(b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: o\x00ne\r\n\r\n", 400, "nul_in_head")


def test_invalid_chunk_size():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nhello\r\n0\r\n\r\n", 400, "bad_chunk")


def test_missing_host():
    refused(b"GET /echo HTTP/1.1\r\nX-A: b\r\n\r\n", 400, "missing_host")


def test_request_line_too_long():
    refused(b"GET /" + b"a" * 400 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 400, "request_line_too_long")


def test_head_too_large():
    refused(b"GET /echo HTTP/1.1\r\nHost: a\r\n" + b"X-Pad: " + b"p" * 3000 + b"\r\n\r\n", 431)


def test_unsupported_transfer_encoding():
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
            "unsupported_transfer_encoding")
    refused(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501, "unsupported_transfer_encoding")


def test_good_request_still_passes():
    """the same listener proxies a clean request after all of the above"""
    resp = raw(port, b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    check(parse_status(resp) == 200, f"clean request failed: {resp[:200]!r}")
    check(header_of(resp, "x-backend") == "strict")


def test_bad_requests_counted():
    m = weft.metrics()
    check(m.get("weft_bad_requests_total", 0) >= 15, f"bad requests not counted: {m}")


tap = Tap()
for t in [test_content_length_and_transfer_encoding, test_duplicate_content_length,
          test_conflicting_content_length, test_comma_listed_content_length,
          test_negative_content_length, test_malformed_content_length, test_obs_fold,
          test_space_before_colon, test_bare_cr, test_nul_in_head, test_invalid_chunk_size,
          test_missing_host, test_request_line_too_long, test_head_too_large,
          test_unsupported_transfer_encoding, test_good_request_still_passes,
          test_bad_requests_counted]:
    tap.run(t)
weft.stop()
backend.stop()
tap.done()
