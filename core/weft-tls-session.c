/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WeftTlsSession: GnuTLS on the connection's own non-blocking fd. Writes
 * are corked so a head and a body go out as one record, and a write that
 * hits a full socket leaves the encrypted rest inside GnuTLS: the caller
 * counts the bytes as taken and flushes on the next EPOLLOUT, the way it
 * treats a short writev.
 */
#include "weft-tls-session-private.h"
#include "weft-tls-helpers-private.h"

#include <errno.h>
#include <string.h>
#include <gnutls/x509.h>

/* bytes corked per call: a few records, so one call never buffers a body */
#define WEFT_TLS_CORK_MAX (4 * 16384)
#define WEFT_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct _WeftTlsSession {
  gnutls_session_t    s;
  WeftTlsCredentials *creds;
  gboolean            server;
  gboolean            done;
  WeftTlsFailure      failure;
  char               *peer_id;      /* the peer's SPIFFE ID, set by the check */
  GStrv               expected;     /* client: IDs the server may have */
  gboolean            peeked;       /* the caller saw the first bytes */
  guint16             hello_version; /* of a ClientHello among them, else 0 */
  char                detail[256];
};

static const char *const weft_tls_failure_names[WEFT_TLS_FAIL_COUNT] = {
  "none", "unknown_ca", "expired", "not_yet_valid", "no_spiffe_id", "wrong_spiffe_id",
  "no_client_certificate", "plaintext_on_strict", "protocol_version", "bad_certificate",
  "handshake_error", "timeout",
};

static const char *const weft_tls_failure_text[WEFT_TLS_FAIL_COUNT] = {
  "no failure",
  "the certificate does not chain to the trust bundle",
  "the certificate has expired",
  "the certificate is not valid yet",
  "the certificate has no single valid spiffe:// URI SAN",
  "the certificate's SPIFFE ID is not one this connection accepts",
  "the client sent no certificate",
  "plaintext on a STRICT mTLS port",
  "the peer offered only TLS versions older than 1.2",
  "the certificate is not acceptable",
  "the handshake failed",
  "the handshake did not finish in time",
};

const char *
weft_tls_failure_to_string (WeftTlsFailure failure)
{
  return failure < WEFT_TLS_FAIL_COUNT ? weft_tls_failure_names[failure] : "handshake_error";
}

const char *
weft_tls_failure_describe (WeftTlsFailure failure)
{
  return failure < WEFT_TLS_FAIL_COUNT ? weft_tls_failure_text[failure] : "the handshake failed";
}

/* ------------------------------------------------------------------ */
/* process-wide: the priority string and the ticket key                 */

static gnutls_priority_t weft_tls_priority;
static gnutls_datum_t    weft_tls_ticket_key;

static void
weft_tls_global_init (void)
{
  static gsize once = 0;

  if (!g_once_init_enter (&once))
    return;
  /* both are constant inputs: a failure is a broken GnuTLS, not bad input */
  if (gnutls_priority_init2 (&weft_tls_priority, WEFT_TLS_PRIORITY, NULL, 0) < 0)
    weft_tls_priority = NULL;
  if (gnutls_session_ticket_key_generate (&weft_tls_ticket_key) < 0)
    weft_tls_ticket_key.data = NULL;
  g_once_init_leave (&once, 1);
}

/* ------------------------------------------------------------------ */
/* checking the peer during the handshake                               */

static WeftTlsFailure
weft_tls_status_failure (unsigned int status)
{
  if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
    return WEFT_TLS_FAIL_UNKNOWN_CA;
  if (status & GNUTLS_CERT_EXPIRED)
    return WEFT_TLS_FAIL_EXPIRED;
  if (status & GNUTLS_CERT_NOT_ACTIVATED)
    return WEFT_TLS_FAIL_NOT_YET_VALID;
  return WEFT_TLS_FAIL_BAD_CERTIFICATE;
}

/* the leaf's one SPIFFE ID, or NULL */
static char *
weft_tls_peer_spiffe_id (gnutls_session_t s)
{
  unsigned int n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers (s, &n);
  g_auto(gnutls_x509_crt_t) leaf = NULL;
  g_autoptr(GPtrArray) uris = NULL;

  if (certs == NULL || n == 0 || gnutls_x509_crt_init (&leaf) < 0 ||
      gnutls_x509_crt_import (leaf, &certs[0], GNUTLS_X509_FMT_DER) < 0)
    return NULL;
  uris = weft_tls_crt_spiffe_uris (leaf);
  if (uris->len != 1 || !weft_spiffe_id_parse (uris->pdata[0], NULL, NULL, NULL))
    return NULL;
  return g_strdup (uris->pdata[0]);
}

static gboolean
weft_tls_trust_domain_ok (WeftTlsSession *t, const char *id)
{
  g_autofree char *td = NULL;
  const char *const *bundle = weft_tls_credentials_get_bundle_trust_domains (t->creds);

  weft_spiffe_id_parse (id, &td, NULL, NULL);
  if (g_strcmp0 (td, weft_tls_credentials_get_trust_domain (t->creds)) == 0)
    return TRUE;
  return bundle != NULL && g_strv_contains (bundle, td);
}

static WeftTlsFailure
weft_tls_check_identity (WeftTlsSession *t)
{
  if (t->peer_id == NULL)
    return WEFT_TLS_FAIL_NO_SPIFFE_ID;
  if (!weft_tls_trust_domain_ok (t, t->peer_id))
    {
      g_snprintf (t->detail, sizeof t->detail, "%s is outside trust domain %s", t->peer_id,
                  weft_tls_credentials_get_trust_domain (t->creds));
      return WEFT_TLS_FAIL_WRONG_SPIFFE_ID;
    }
  if (t->server || t->expected == NULL || t->expected[0] == NULL ||
      g_strv_contains ((const char *const *) t->expected, t->peer_id))
    return WEFT_TLS_FAIL_NONE;
  g_snprintf (t->detail, sizeof t->detail, "the server is %s, expected %s%s", t->peer_id,
              t->expected[0], t->expected[1] != NULL ? " or another listed ID" : "");
  return WEFT_TLS_FAIL_WRONG_SPIFFE_ID;
}

/* GnuTLS calls this once the peer's certificate arrived; non-zero refuses
 * the handshake with an alert */
static int
weft_tls_verify_peer (gnutls_session_t s)
{
  WeftTlsSession *t = gnutls_session_get_ptr (s);
  unsigned int status = 0;
  int ret = gnutls_certificate_verify_peers2 (s, &status);

  if (ret == GNUTLS_E_NO_CERTIFICATE_FOUND)
    t->failure = WEFT_TLS_FAIL_NO_CLIENT_CERTIFICATE;
  else if (ret < 0)
    t->failure = WEFT_TLS_FAIL_BAD_CERTIFICATE;
  else if (status != 0)
    t->failure = weft_tls_status_failure (status);
  else
    {
      t->peer_id = weft_tls_peer_spiffe_id (s);
      t->failure = weft_tls_check_identity (t);
    }
  return t->failure == WEFT_TLS_FAIL_NONE ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/* ------------------------------------------------------------------ */
/* sessions                                                             */

static WeftTlsSession *
weft_tls_session_new (WeftTlsCredentials *creds, int fd, gboolean server)
{
  static const gnutls_datum_t alpn = { (unsigned char *) "http/1.1", 8 };
  g_autofree WeftTlsSession *t = g_new0 (WeftTlsSession, 1);
  unsigned int flags = (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK |
                       GNUTLS_NO_SIGNAL;

  weft_tls_global_init ();
  if (weft_tls_priority == NULL || gnutls_init (&t->s, flags) < 0)
    return NULL;
  t->server = server;
  t->creds = weft_tls_credentials_ref (creds);
  gnutls_session_set_ptr (t->s, t);
  gnutls_priority_set (t->s, weft_tls_priority);
  gnutls_credentials_set (t->s, GNUTLS_CRD_CERTIFICATE, weft_tls_credentials_get_gnutls (creds));
  gnutls_session_set_verify_function (t->s, weft_tls_verify_peer);
  gnutls_alpn_set_protocols (t->s, &alpn, 1, 0);
  gnutls_transport_set_int (t->s, fd);
  return g_steal_pointer (&t);
}

WeftTlsSession *
weft_tls_session_new_server (WeftTlsCredentials *creds, int fd)
{
  WeftTlsSession *t = weft_tls_session_new (creds, fd, TRUE);

  if (t == NULL)
    return NULL;
  gnutls_certificate_server_set_request (t->s, GNUTLS_CERT_REQUIRE);
  if (weft_tls_ticket_key.data != NULL)
    gnutls_session_ticket_enable_server (t->s, &weft_tls_ticket_key);
  return t;
}

WeftTlsSession *
weft_tls_session_new_client (WeftTlsCredentials *creds, int fd, const char *const *expected,
                             const char *sni, GBytes *resume)
{
  WeftTlsSession *t = weft_tls_session_new (creds, fd, FALSE);
  gsize len = 0;
  gconstpointer data = resume != NULL ? g_bytes_get_data (resume, &len) : NULL;

  if (t == NULL)
    return NULL;
  t->expected = g_strdupv ((char **) expected);
  if (sni != NULL)
    gnutls_server_name_set (t->s, GNUTLS_NAME_DNS, sni, strlen (sni));
  if (data != NULL)
    gnutls_session_set_data (t->s, data, len);
  return t;
}

void
weft_tls_session_set_first_bytes (WeftTlsSession *t, const guint8 *bytes, gsize len)
{
  t->peeked = TRUE;
  /* record header (5), handshake type 1 = ClientHello, length (3), version */
  if (len >= 11 && bytes[0] == 0x16 && bytes[5] == 0x01)
    t->hello_version = (guint16) (bytes[9] << 8 | bytes[10]);
}

/* only a real ClientHello below TLS 1.2 is an old client */
static WeftTlsFailure
weft_tls_version_failure (WeftTlsSession *t)
{
  if (t->peeked && (t->hello_version == 0 || t->hello_version >= 0x0303))
    return WEFT_TLS_FAIL_HANDSHAKE_ERROR;
  return WEFT_TLS_FAIL_PROTOCOL_VERSION;
}

void
weft_tls_session_free (WeftTlsSession *t)
{
  if (t == NULL)
    return;
  gnutls_deinit (t->s);
  weft_tls_credentials_unref (t->creds);
  g_free (t->peer_id);
  g_strfreev (t->expected);
  g_free (t);
}

/* a fatal GnuTLS error the check did not already explain */
static WeftTlsFailure
weft_tls_classify (WeftTlsSession *t, int ret)
{
  if (t->failure != WEFT_TLS_FAIL_NONE)
    return t->failure;
  g_snprintf (t->detail, sizeof t->detail, "%s", gnutls_strerror (ret));
  switch (ret)
    {
    case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
    case GNUTLS_E_INSUFFICIENT_SECURITY:
      return weft_tls_version_failure (t);
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
    case GNUTLS_E_CERTIFICATE_REQUIRED:
      return WEFT_TLS_FAIL_NO_CLIENT_CERTIFICATE;
    case GNUTLS_E_FATAL_ALERT_RECEIVED:
      g_snprintf (t->detail, sizeof t->detail, "the peer sent alert '%s'",
                  gnutls_alert_get_name (gnutls_alert_get (t->s)));
      return gnutls_alert_get (t->s) == GNUTLS_A_PROTOCOL_VERSION ?
             WEFT_TLS_FAIL_PROTOCOL_VERSION : WEFT_TLS_FAIL_HANDSHAKE_ERROR;
    default:
      return WEFT_TLS_FAIL_HANDSHAKE_ERROR;
    }
}

/* a resumed session sends no certificate, so the check did not run: the
 * peer's chain came back from the ticket, and is checked again now (the
 * bundle or the clock may have moved since) */
static WeftTlsStep
weft_tls_session_finished (WeftTlsSession *t)
{
  if (t->peer_id == NULL && weft_tls_verify_peer (t->s) != 0)
    {
      gnutls_alert_send (t->s, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
      return WEFT_TLS_STEP_FAILED;
    }
  t->done = TRUE;
  return WEFT_TLS_STEP_DONE;
}

WeftTlsStep
weft_tls_session_handshake (WeftTlsSession *t)
{
  int ret;

  if (t->done)
    return WEFT_TLS_STEP_DONE;
  /* a warning alert is not fatal: go on, a bounded number of times */
  for (guint i = 0; i < 4; i++)
    {
      ret = gnutls_handshake (t->s);
      if (ret == 0)
        return weft_tls_session_finished (t);
      if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
        return gnutls_record_get_direction (t->s) ? WEFT_TLS_STEP_WANT_WRITE
                                                  : WEFT_TLS_STEP_WANT_READ;
      if (gnutls_error_is_fatal (ret))
        break;
    }
  t->failure = weft_tls_classify (t, ret);
  /* tell the peer why, best effort: the socket is non-blocking */
  gnutls_alert_send_appropriate (t->s, ret);
  g_clear_pointer (&t->peer_id, g_free);
  return WEFT_TLS_STEP_FAILED;
}

WeftTlsFailure
weft_tls_session_get_failure (WeftTlsSession *t)
{
  return t->failure;
}

const char *
weft_tls_session_get_detail (WeftTlsSession *t)
{
  return t->detail;
}

const char *
weft_tls_session_get_peer_id (WeftTlsSession *t)
{
  return t->done ? t->peer_id : NULL;
}

gboolean
weft_tls_session_is_resumed (WeftTlsSession *t)
{
  return gnutls_session_is_resumed (t->s) != 0;
}

GBytes *
weft_tls_session_take_resume_data (WeftTlsSession *t)
{
  gnutls_datum_t d = { NULL, 0 };
  GBytes *bytes;

  /* TLS 1.3 tickets come after the handshake; without one there is
   * nothing to resume */
  if (!t->done || t->server ||
      (gnutls_protocol_get_version (t->s) == GNUTLS_TLS1_3 &&
       !(gnutls_session_get_flags (t->s) & GNUTLS_SFLAGS_SESSION_TICKET)))
    return NULL;
  if (gnutls_session_get_data2 (t->s, &d) < 0)
    return NULL;
  bytes = g_bytes_new (d.data, d.size);
  weft_tls_datum_clear (&d);
  return bytes;
}

/* ------------------------------------------------------------------ */
/* moving bytes                                                         */

gssize
weft_tls_session_recv (WeftTlsSession *t, void *buf, gsize len)
{
  for (;;)
    {
      ssize_t ret = gnutls_record_recv (t->s, buf, len);

      if (ret >= 0)
        return ret;
      if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
        {
          errno = EAGAIN;
          return -1;
        }
      /* a peer that closes without close_notify: an end like a FIN */
      if (ret == GNUTLS_E_PREMATURE_TERMINATION)
        return 0;
      if (!gnutls_error_is_fatal ((int) ret))
        continue;
      errno = ECONNRESET;
      return -1;
    }
}

gboolean
weft_tls_session_has_pending (WeftTlsSession *t)
{
  return gnutls_record_check_corked (t->s) > 0;
}

int
weft_tls_session_flush (WeftTlsSession *t)
{
  ssize_t ret;

  if (gnutls_record_check_corked (t->s) == 0)
    return 1;
  ret = gnutls_record_uncork (t->s, 0);
  if (ret >= 0)
    return 1;
  return ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED ? 0 : -1;
}

gssize
weft_tls_session_writev (WeftTlsSession *t, const struct iovec *iov, int n_iov)
{
  gsize taken = 0;
  int flushed = weft_tls_session_flush (t);
  ssize_t ret;

  /* what an earlier call left goes first, resent exactly as GnuTLS wants */
  if (flushed <= 0)
    {
      errno = flushed == 0 ? EAGAIN : EPIPE;
      return -1;
    }
  gnutls_record_cork (t->s);
  for (int i = 0; i < n_iov && taken < WEFT_TLS_CORK_MAX; i++)
    {
      gsize len = MIN (iov[i].iov_len, WEFT_TLS_CORK_MAX - taken);
      ret = gnutls_record_send (t->s, iov[i].iov_base, len);
      if (ret < 0)
        break;
      taken += (gsize) ret;
    }
  ret = gnutls_record_uncork (t->s, 0);
  if (ret >= 0 || ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
    return (gssize) taken;
  errno = EPIPE;
  return -1;
}

void
weft_tls_session_bye (WeftTlsSession *t)
{
  if (t != NULL && t->done && gnutls_record_check_corked (t->s) == 0)
    gnutls_bye (t->s, GNUTLS_SHUT_WR);
}
