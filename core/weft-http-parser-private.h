/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftHttpParser: a strict HTTP/1.1 (RFC 9112) head parser and chunked
 * decoder. Allocation-free: it fills caller-owned structs and points into
 * the caller's buffer.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WEFT_HTTP_MAX_HEADERS 128

typedef enum {
  WEFT_HTTP_PARSE_OK,          /* head complete, head->head_len set */
  WEFT_HTTP_PARSE_INCOMPLETE,  /* need more bytes; nothing was modified */
  WEFT_HTTP_PARSE_ERROR,       /* see the WeftHttpError out-parameter */
} WeftHttpParseStatus;

/* each error maps to a status and a reason token (x-weft-error) */
typedef enum {
  WEFT_HTTP_ERR_NONE,
  WEFT_HTTP_ERR_BAD_REQUEST_LINE,     /* 400 bad_request_line */
  WEFT_HTTP_ERR_BAD_METHOD,           /* 400 bad_method */
  WEFT_HTTP_ERR_BAD_TARGET,           /* 400 bad_target */
  WEFT_HTTP_ERR_BAD_VERSION,          /* 505 unsupported_version */
  WEFT_HTTP_ERR_BAD_HEADER,           /* 400 bad_header (bad name or value chars, no colon) */
  WEFT_HTTP_ERR_OBS_FOLD,             /* 400 obs_fold */
  WEFT_HTTP_ERR_SPACE_BEFORE_COLON,   /* 400 space_before_colon */
  WEFT_HTTP_ERR_BARE_CR,              /* 400 bare_cr */
  WEFT_HTTP_ERR_BARE_LF,              /* 400 bare_lf */
  WEFT_HTTP_ERR_NUL,                  /* 400 nul_in_head */
  WEFT_HTTP_ERR_BAD_CONTENT_LENGTH,   /* 400 bad_content_length (malformed, negative, comma list, duplicate, overflow) */
  WEFT_HTTP_ERR_CL_AND_TE,            /* 400 content_length_and_transfer_encoding */
  WEFT_HTTP_ERR_UNSUPPORTED_TE,       /* 501 unsupported_transfer_encoding */
  WEFT_HTTP_ERR_MISSING_HOST,         /* 400 missing_host */
  WEFT_HTTP_ERR_DUPLICATE_HOST,       /* 400 duplicate_host */
  WEFT_HTTP_ERR_REQUEST_LINE_TOO_LONG,/* 400 request_line_too_long (the issue lists 400, 413, 431) */
  WEFT_HTTP_ERR_HEAD_TOO_LARGE,       /* 431 headers_too_large */
  WEFT_HTTP_ERR_TOO_MANY_HEADERS,     /* 431 too_many_headers */
  WEFT_HTTP_ERR_BAD_STATUS_LINE,      /* 502 bad_response (responses only) */
  WEFT_HTTP_ERR_BAD_CHUNK,            /* 400 bad_chunk (from the chunked decoder) */
  WEFT_HTTP_ERR_UNSUPPORTED_METHOD,   /* 501 unsupported_method (CONNECT: weft is no forward proxy) */
  WEFT_HTTP_ERR_LAST,
} WeftHttpError;

guint        weft_http_error_status (WeftHttpError err);
const char  *weft_http_error_reason (WeftHttpError err);

typedef enum {
  WEFT_HTTP_BODY_NONE,     /* no body (no CL/TE on a request; 1xx/204/304/HEAD response) */
  WEFT_HTTP_BODY_LENGTH,   /* content_length bytes */
  WEFT_HTTP_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
  WEFT_HTTP_BODY_CLOSE,    /* responses only: until the connection closes */
} WeftHttpBodyKind;

/* flags on a header */
enum {
  WEFT_HTTP_HEADER_HOP = 1 << 0,   /* hop-by-hop: not forwarded (RFC 9110 7.6.1) */
};

typedef struct {
  const char *name;        /* NUL-terminated in place once parsed OK */
  const char *value;       /* NUL-terminated, leading/trailing OWS stripped */
  guint16     name_len;
  guint16     flags;
  guint32     value_len;
} WeftHttpHeader;

/* Connection option flags seen */
enum {
  WEFT_HTTP_CONN_CLOSE      = 1 << 0,
  WEFT_HTTP_CONN_KEEP_ALIVE = 1 << 1,
  WEFT_HTTP_CONN_UPGRADE    = 1 << 2,
};

typedef struct {
  /* request line */
  const char      *method;        /* NUL-terminated in place */
  const char      *target;        /* NUL-terminated in place */
  guint16          method_len;
  guint32          target_len;
  /* an absolute-form target (RFC 9112 3.2.2), "http://authority/path?q":
   * its authority (not terminated: authority_len bytes) and the path and
   * query that follow it (ends with the target; may be empty); both NULL
   * for the origin-form and asterisk-form */
  const char      *abs_authority;
  guint32          abs_authority_len;
  const char      *abs_path;
  /* status line (responses) */
  guint            status;
  const char      *reason;        /* NUL-terminated; may be empty */
  guint8           version_minor; /* HTTP/1.0 or HTTP/1.1 */

  WeftHttpHeader   headers[WEFT_HTTP_MAX_HEADERS];
  guint            n_headers;
  gint             host_idx;      /* index of Host, or -1 */

  gsize            head_len;      /* bytes of the head, final CRLF CRLF included */
  WeftHttpBodyKind body_kind;
  guint64          content_length;
  guint            conn_flags;    /* WEFT_HTTP_CONN_* */
  gboolean         keep_alive;    /* after version and Connection */
  gboolean         upgrade;       /* Connection: upgrade and an Upgrade header */
  gboolean         expect_continue;
} WeftHttpHead;

typedef struct {
  guint max_request_line;   /* bytes, request line without CRLF; default 8192 */
  guint max_head;           /* bytes, whole head; default 16384 */
  guint max_headers;        /* count, at most WEFT_HTTP_MAX_HEADERS; default 100 */
} WeftHttpLimits;

void weft_http_limits_init_default (WeftHttpLimits *limits);

/*
 * Parses a request head at the start of @buf. Strict: rejects obs-fold,
 * whitespace before a colon, bare CR, bare LF line ends, NUL, both CL and TE,
 * bad/duplicated/listed CL, a TE other than exactly "chunked", a missing or
 * duplicated Host on HTTP/1.1, a header name that reads as Content-Length or
 * Transfer-Encoding once '_' is taken for '-', a target that is neither
 * origin-form, absolute-form (http or https, no userinfo) nor "*" for
 * OPTIONS, a fragment, CONNECT, and oversize heads (checked even when
 * incomplete, so a client cannot make weft buffer past the limit).
 * On OK, writes NUL terminators into @buf (so the head cannot be re-parsed)
 * and marks hop-by-hop headers: Connection and every header it names,
 * Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection.
 */
WeftHttpParseStatus weft_http_parse_request  (char *buf, gsize len,
                                              const WeftHttpLimits *limits,
                                              WeftHttpHead *head, WeftHttpError *err);

/* Parses a response head. @request_method_head: the request was HEAD, so the
 * response has no body whatever its headers say. 1xx, 204 and 304 have none
 * either. A response with neither CL nor TE is WEFT_HTTP_BODY_CLOSE. */
WeftHttpParseStatus weft_http_parse_response (char *buf, gsize len,
                                              const WeftHttpLimits *limits,
                                              gboolean request_method_head,
                                              WeftHttpHead *head, WeftHttpError *err);

/* case-insensitive lookup; returns the index or -1 */
gint weft_http_head_find (const WeftHttpHead *head, const char *name);

/*
 * WeftChunkedDecoder validates a chunked body as it streams through; the
 * bytes are forwarded as they are, framing included.
 */
typedef struct {
  guint    state;
  guint64  remaining;   /* bytes left in the current chunk data */
  guint    line_len;    /* bytes of the current size/trailer line, for limits */
  guint    digits;
  guint    trailer_bytes;
  guint    ext_bytes;   /* chunk-extension bytes over the whole body, for limits */
  gboolean done;
} WeftChunkedDecoder;

void   weft_chunked_decoder_init (WeftChunkedDecoder *dec);
/*
 * Feeds @len bytes. Returns how many were consumed (less than @len only when
 * the message ended inside @buf: the rest belongs to the next message), or -1
 * on invalid framing (bad hex, overflow, missing CRLF after data, oversize
 * line or trailers, over 16 KiB of chunk extensions in one body). dec->done is TRUE once the last chunk and trailers ended.
 */
gssize weft_chunked_decoder_feed (WeftChunkedDecoder *dec, const char *buf, gsize len);
/*
 * Like weft_chunked_decoder_feed(), and moves the data bytes of what it
 * consumed to the front of @buf, dropping the framing (sizes, extensions,
 * CRLFs, trailers); *@data_len is how many there are.
 */
gssize weft_chunked_decoder_strip (WeftChunkedDecoder *dec, char *buf, gsize len,
                                   gsize *data_len);

G_END_DECLS
