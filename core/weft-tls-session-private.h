/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftTlsSession: one GnuTLS session on a non-blocking socket, server side
 * (an inbound mTLS client) or client side (an upstream weft originates
 * mTLS to). It sits under the connection's recv() and writev() and returns
 * what they would, so the HTTP state machine above it does not change. The
 * peer's certificate is checked during the handshake: chain to the trust
 * bundle, validity, exactly one SPIFFE ID, in our trust domain, and for a
 * client the one expected of the destination.
 */
#pragma once

#include <sys/uio.h>
#include "weft-tls-credentials-private.h"

G_BEGIN_DECLS

typedef struct _WeftTlsSession WeftTlsSession;

/* why a handshake was refused; the names are the metric's reason label */
typedef enum {
  WEFT_TLS_FAIL_NONE,
  WEFT_TLS_FAIL_UNKNOWN_CA,
  WEFT_TLS_FAIL_EXPIRED,
  WEFT_TLS_FAIL_NOT_YET_VALID,
  WEFT_TLS_FAIL_NO_SPIFFE_ID,
  WEFT_TLS_FAIL_WRONG_SPIFFE_ID,
  WEFT_TLS_FAIL_NO_CLIENT_CERTIFICATE,
  WEFT_TLS_FAIL_PLAINTEXT_ON_STRICT,
  WEFT_TLS_FAIL_PROTOCOL_VERSION,
  WEFT_TLS_FAIL_BAD_CERTIFICATE,
  WEFT_TLS_FAIL_HANDSHAKE_ERROR,
  WEFT_TLS_FAIL_TIMEOUT,
  WEFT_TLS_FAIL_COUNT,
} WeftTlsFailure;

typedef enum {
  WEFT_TLS_STEP_DONE,
  WEFT_TLS_STEP_WANT_READ,
  WEFT_TLS_STEP_WANT_WRITE,
  WEFT_TLS_STEP_FAILED,
} WeftTlsStep;

/* the metric label of @failure, and a sentence for the log */
const char *weft_tls_failure_to_string (WeftTlsFailure failure);
const char *weft_tls_failure_describe  (WeftTlsFailure failure);

/* a server session on @fd requiring a client certificate; takes a ref on
 * @creds. NULL only when GnuTLS cannot allocate one. */
WeftTlsSession *weft_tls_session_new_server (WeftTlsCredentials *creds, int fd);
/*
 * A client session on @fd presenting our certificate. @expected: the SPIFFE
 * IDs the server may have (NULL or empty: any of our trust domain). @sni
 * may be NULL. @resume: session data from an earlier connection to the
 * same endpoint, or NULL.
 */
WeftTlsSession *weft_tls_session_new_client (WeftTlsCredentials *creds, int fd,
                                             const char *const *expected, const char *sni,
                                             GBytes *resume);
void            weft_tls_session_free       (WeftTlsSession *t);
/* server: the bytes the caller peeked before the handshake, so that an
 * old client's ClientHello can be told from bytes that only start like TLS
 * (GnuTLS calls both "unsupported version") */
void            weft_tls_session_set_first_bytes (WeftTlsSession *t, const guint8 *bytes,
                                                  gsize len);

/* drives the handshake; after FAILED, _get_failure says why */
WeftTlsStep     weft_tls_session_handshake  (WeftTlsSession *t);
WeftTlsFailure  weft_tls_session_get_failure (WeftTlsSession *t);
/* a detail for the log line (a GnuTLS error or alert, the IDs): never NULL */
const char     *weft_tls_session_get_detail (WeftTlsSession *t);
/* the peer's verified SPIFFE ID once the handshake is done, else NULL */
const char     *weft_tls_session_get_peer_id (WeftTlsSession *t);
gboolean        weft_tls_session_is_resumed (WeftTlsSession *t);
/* client: data to resume the next connection with, NULL when the server
 * gave no ticket (yet) */
GBytes         *weft_tls_session_take_resume_data (WeftTlsSession *t);

/* like recv(): bytes, 0 at the end, -1 with errno EAGAIN or ECONNRESET */
gssize          weft_tls_session_recv       (WeftTlsSession *t, void *buf, gsize len);
/* like writev(): bytes taken (GnuTLS may still hold them encrypted, see
 * _has_pending), -1 with errno EAGAIN or EPIPE */
gssize          weft_tls_session_writev     (WeftTlsSession *t, const struct iovec *iov,
                                             int n_iov);
/* taken bytes not yet on the socket */
gboolean        weft_tls_session_has_pending (WeftTlsSession *t);
/* pushes them: 1 all out, 0 the socket is full (wait for EPOLLOUT), -1 broken */
int             weft_tls_session_flush      (WeftTlsSession *t);
/* a close_notify, best effort and never blocking */
void            weft_tls_session_bye        (WeftTlsSession *t);

G_END_DECLS
