/* SPDX-License-Identifier: LGPL-2.1-or-later
 * WeftTlsSession: a server and a client session on the two ends of a
 * non-blocking socketpair, their handshakes driven in turn until each is
 * done or refused. What a good handshake gives (the peers' SPIFFE IDs,
 * bytes both ways, a write larger than the socket holds, a resumption),
 * and the reason each bad peer is refused with. Where weft itself would
 * never send what is tested (no certificate, a leaf without a SPIFFE ID,
 * TLS 1.1), the client is a plain GnuTLS session driven by the test. */
#include "weft-tls-session-private.h"
#include "weft-test-certs.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SERVER_ID "spiffe://cluster.local/ns/default/sa/productpage"
#define CLIENT_ID "spiffe://cluster.local/ns/default/sa/reviews"
#define STALL_MS  5000
#define BIG       (1024 * 1024)

/* the server's and the good client's credentials, both from ca1 */
static WeftTlsCredentials *server_creds;
static WeftTlsCredentials *client_creds;

/* one end of the pair: a weft session, or a plain GnuTLS client */
typedef struct {
  int                              fd;
  WeftTlsSession                  *weft;
  gnutls_session_t                 raw;
  gnutls_certificate_credentials_t raw_creds;
  WeftTlsStep                      step;
  gboolean                         started;
} End;

typedef struct {
  End server;
  End client;
} Pair;

static WeftTlsCredentials *
load (const char *dir, const char *cert, const char *key, const char *bundle_dir)
{
  g_autofree char *cert_file = weft_test_certs_path (dir, cert);
  g_autofree char *key_file = weft_test_certs_path (dir, key);
  g_autofree char *bundle_file = weft_test_certs_path (bundle_dir, "ca.pem");
  g_autoptr(GError) error = NULL;
  WeftTlsCredentials *creds = weft_tls_credentials_load (cert_file, key_file, bundle_file,
                                                         &error);

  g_assert_no_error (error);
  return creds;
}

static void
pair_open (Pair *p)
{
  int fds[2];

  memset (p, 0, sizeof *p);
  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds));
  p->server.fd = fds[0];
  p->client.fd = fds[1];
}

/* the usual server on ca1 */
static void
pair_server (Pair *p)
{
  p->server.weft = weft_tls_session_new_server (server_creds, p->server.fd);
  g_assert_nonnull (p->server.weft);
}

static void
pair_client (Pair *p, WeftTlsCredentials *creds, const char *const *expected, GBytes *resume)
{
  p->client.weft = weft_tls_session_new_client (creds, p->client.fd, expected,
                                                "productpage.default.svc", resume);
  g_assert_nonnull (p->client.weft);
}

/* a plain GnuTLS client presenting <dir>/leaf.pem (NULL: no certificate
 * at all) and trusting anything */
static void
pair_raw_client (Pair *p, const char *dir, const char *priority)
{
  End *c = &p->client;

  g_assert_cmpint (gnutls_certificate_allocate_credentials (&c->raw_creds), ==, 0);
  if (dir != NULL)
    {
      g_autofree char *cert = weft_test_certs_path (dir, "leaf.pem");
      g_autofree char *key = weft_test_certs_path (dir, "leaf-key.pem");

      g_assert_cmpint (gnutls_certificate_set_x509_key_file (c->raw_creds, cert, key,
                                                             GNUTLS_X509_FMT_PEM), >=, 0);
    }
  g_assert_cmpint (gnutls_init (&c->raw, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL),
                   ==, 0);
  g_assert_cmpint (gnutls_priority_set_direct (c->raw, priority, NULL), ==, 0);
  g_assert_cmpint (gnutls_credentials_set (c->raw, GNUTLS_CRD_CERTIFICATE, c->raw_creds), ==, 0);
  gnutls_transport_set_int (c->raw, c->fd);
}

static void
pair_close (Pair *p)
{
  End *ends[] = { &p->server, &p->client };

  for (guint i = 0; i < G_N_ELEMENTS (ends); i++)
    {
      g_clear_pointer (&ends[i]->weft, weft_tls_session_free);
      g_clear_pointer (&ends[i]->raw, gnutls_deinit);
      g_clear_pointer (&ends[i]->raw_creds, gnutls_certificate_free_credentials);
      g_assert_no_errno (close (ends[i]->fd));
    }
}

static gboolean
end_finished (const End *e)
{
  return e->started && (e->step == WEFT_TLS_STEP_DONE || e->step == WEFT_TLS_STEP_FAILED);
}

static WeftTlsStep
raw_handshake (gnutls_session_t s)
{
  int ret = gnutls_handshake (s);

  if (ret == 0)
    return WEFT_TLS_STEP_DONE;
  if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
    return gnutls_record_get_direction (s) ? WEFT_TLS_STEP_WANT_WRITE : WEFT_TLS_STEP_WANT_READ;
  if (!gnutls_error_is_fatal (ret))
    return raw_handshake (s);
  g_test_message ("plain client: %s", gnutls_strerror (ret));
  return WEFT_TLS_STEP_FAILED;
}

static void
end_step (End *e)
{
  if (end_finished (e))
    return;
  e->started = TRUE;
  e->step = e->weft != NULL ? weft_tls_session_handshake (e->weft) : raw_handshake (e->raw);
  /* weft closes a refused connection: the peer sees the end, not a stall */
  if (e->step == WEFT_TLS_STEP_FAILED)
    shutdown (e->fd, SHUT_WR);
}

/* both handshakes, in turn, until each is done or failed; a side that
 * waits STALL_MS for nothing fails the test instead of hanging it */
static void
pair_handshake (Pair *p)
{
  for (guint round = 0;; round++)
    {
      End *ends[] = { &p->server, &p->client };
      struct pollfd fds[2];
      nfds_t n = 0;

      end_step (&p->server);
      end_step (&p->client);
      if (end_finished (&p->server) && end_finished (&p->client))
        break;
      g_assert_cmpuint (round, <, 1000);
      for (guint i = 0; i < G_N_ELEMENTS (ends); i++)
        if (!end_finished (ends[i]))
          fds[n++] = (struct pollfd) {
            .fd = ends[i]->fd,
            .events = ends[i]->step == WEFT_TLS_STEP_WANT_WRITE ? POLLOUT : POLLIN,
          };
      g_assert_cmpint (poll (fds, n, STALL_MS), >, 0);
    }
  if (p->server.weft != NULL && p->server.step == WEFT_TLS_STEP_FAILED)
    g_test_message ("server refused: %s (%s)",
                    weft_tls_failure_to_string (weft_tls_session_get_failure (p->server.weft)),
                    weft_tls_session_get_detail (p->server.weft));
  if (p->client.weft != NULL && p->client.step == WEFT_TLS_STEP_FAILED)
    g_test_message ("client refused: %s (%s)",
                    weft_tls_failure_to_string (weft_tls_session_get_failure (p->client.weft)),
                    weft_tls_session_get_detail (p->client.weft));
}

static void
wait_fd (int fd, short events)
{
  struct pollfd pfd = { .fd = fd, .events = events };

  g_assert_cmpint (poll (&pfd, 1, STALL_MS), ==, 1);
}

/* exactly @len bytes from @t, waiting for them */
static void
recv_all (WeftTlsSession *t, int fd, guint8 *buf, gsize len)
{
  gsize got = 0;

  while (got < len)
    {
      gssize n = weft_tls_session_recv (t, buf + got, len - got);

      if (n < 0)
        {
          g_assert_cmpint (errno, ==, EAGAIN);
          wait_fd (fd, POLLIN);
          continue;
        }
      g_assert_cmpint (n, >, 0);
      got += (gsize) n;
    }
}

/* what a session sees after its peer refused it: an end, not EAGAIN */
static void
assert_ended (WeftTlsSession *t, int fd)
{
  guint8 b[64];
  gssize n;

  for (;;)
    {
      n = weft_tls_session_recv (t, b, sizeof b);
      if (n >= 0 || errno != EAGAIN)
        break;
      wait_fd (fd, POLLIN);
    }
  g_assert_cmpint (n, <=, 0);
  if (n < 0)
    g_assert_cmpint (errno, ==, ECONNRESET);
}

static void
assert_server_refused (Pair *p, WeftTlsFailure failure)
{
  g_assert_cmpint (p->server.step, ==, WEFT_TLS_STEP_FAILED);
  g_assert_cmpstr (weft_tls_failure_to_string (weft_tls_session_get_failure (p->server.weft)),
                   ==, weft_tls_failure_to_string (failure));
  g_assert_null (weft_tls_session_get_peer_id (p->server.weft));
  g_assert_cmpstr (weft_tls_session_get_detail (p->server.weft), !=, NULL);
}

/* ------------------------------------------------------------------ */

static void
test_good_handshake (void)
{
  static const char head[] = "GET / HTTP/1.1\r\n";
  static const char rest[] = "host: productpage\r\n\r\n";
  struct iovec iov[2] = { { (void *) head, strlen (head) }, { (void *) rest, strlen (rest) } };
  g_autofree char *sent = g_strconcat (head, rest, NULL);
  guint8 buf[256];
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, NULL, NULL);
  g_assert_null (weft_tls_session_get_peer_id (p.server.weft));
  pair_handshake (&p);

  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (weft_tls_session_get_failure (p.server.weft), ==, WEFT_TLS_FAIL_NONE);
  g_assert_cmpint (weft_tls_session_get_failure (p.client.weft), ==, WEFT_TLS_FAIL_NONE);
  g_assert_cmpstr (weft_tls_session_get_peer_id (p.server.weft), ==, CLIENT_ID);
  g_assert_cmpstr (weft_tls_session_get_peer_id (p.client.weft), ==, SERVER_ID);
  g_assert_false (weft_tls_session_is_resumed (p.server.weft));
  g_assert_false (weft_tls_session_is_resumed (p.client.weft));
  /* a done handshake stays done */
  g_assert_cmpint (weft_tls_session_handshake (p.server.weft), ==, WEFT_TLS_STEP_DONE);

  /* nothing to read yet: EAGAIN, as recv() says it */
  g_assert_cmpint (weft_tls_session_recv (p.server.weft, buf, sizeof buf), ==, -1);
  g_assert_cmpint (errno, ==, EAGAIN);

  /* a head and a body in one call, then the answer the other way */
  g_assert_cmpint (weft_tls_session_writev (p.client.weft, iov, 2), ==, strlen (sent));
  g_assert_false (weft_tls_session_has_pending (p.client.weft));
  g_assert_cmpint (weft_tls_session_flush (p.client.weft), ==, 1);
  recv_all (p.server.weft, p.server.fd, buf, strlen (sent));
  g_assert_cmpmem (buf, strlen (sent), sent, strlen (sent));
  iov[0] = (struct iovec) { (void *) "HTTP/1.1 200 OK\r\n", 17 };
  g_assert_cmpint (weft_tls_session_writev (p.server.weft, iov, 1), ==, 17);
  recv_all (p.client.weft, p.client.fd, buf, 17);
  g_assert_cmpmem (buf, 17, "HTTP/1.1 200 OK\r\n", 17);

  /* a close_notify reads as the end */
  weft_tls_session_bye (p.server.weft);
  wait_fd (p.client.fd, POLLIN);
  g_assert_cmpint (weft_tls_session_recv (p.client.weft, buf, sizeof buf), ==, 0);
  pair_close (&p);
}

static gboolean
readable_now (int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  return poll (&pfd, 1, 0) == 1;
}

/* reads whatever @t has now, checking it against @data at *@got. GnuTLS
 * says EAGAIN after a post-handshake message (the TLS 1.3 ticket) with
 * more in the socket: weft's epoll is level-triggered and comes back, so
 * does this */
static void
drain (WeftTlsSession *t, int fd, const guint8 *data, gsize *got, guint8 *buf, gsize len)
{
  for (;;)
    {
      gssize n = weft_tls_session_recv (t, buf, len);

      if (n > 0)
        {
          g_assert_cmpuint (*got + (gsize) n, <=, BIG);
          g_assert_cmpmem (buf, n, data + *got, n);
          *got += (gsize) n;
          continue;
        }
      g_assert_cmpint (n, ==, -1);
      g_assert_cmpint (errno, ==, EAGAIN);
      if (!readable_now (fd))
        return;
    }
}

/* bytes in flight: the client can read, or the server write again */
static void
wait_transfer (Pair *p)
{
  struct pollfd fds[2] = {
    { .fd = p->client.fd, .events = POLLIN },
    { .fd = p->server.fd, .events = POLLOUT },
  };

  g_assert_cmpint (poll (fds, weft_tls_session_has_pending (p->server.weft) ? 2 : 1, STALL_MS),
                   >, 0);
}

/* 1 MiB to a client that does not read: the socket fills, a write is
 * taken but left pending, and once the client reads, the rest goes out;
 * every byte arrives once and in order */
static void
test_partial_write (void)
{
  g_autofree guint8 *data = g_malloc (BIG);
  g_autofree guint8 *buf = g_malloc (65536);
  g_autoptr(GRand) rand = g_rand_new_with_seed (6);
  gsize sent = 0, got = 0;
  struct iovec more;
  gssize n;
  Pair p;

  for (gsize i = 0; i < BIG; i += sizeof (guint32))
    {
      guint32 r = g_rand_int (rand);
      memcpy (data + i, &r, sizeof r);
    }
  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, NULL, NULL);
  pair_handshake (&p);
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_DONE);

  /* fill the socket: pieces of two iovecs until one is left pending */
  while (!weft_tls_session_has_pending (p.server.weft))
    {
      gsize head = MIN (10000, BIG - sent);
      struct iovec iov[2] = {
        { data + sent, head },
        { data + sent + head, MIN (20000, BIG - sent - head) },
      };

      g_assert_cmpuint (sent, <, BIG);
      n = weft_tls_session_writev (p.server.weft, iov, 2);
      g_assert_cmpint (n, >, 0);
      g_assert_cmpint (n, <=, iov[0].iov_len + iov[1].iov_len);
      sent += (gsize) n;
    }
  g_test_message ("the socket filled after %" G_GSIZE_FORMAT " bytes", sent);
  g_assert_cmpuint (sent, <, BIG);
  /* still full: nothing moves, and a new write is refused like writev's */
  g_assert_cmpint (weft_tls_session_flush (p.server.weft), ==, 0);
  g_assert_true (weft_tls_session_has_pending (p.server.weft));
  more = (struct iovec) { data + sent, 100 };
  g_assert_cmpint (weft_tls_session_writev (p.server.weft, &more, 1), ==, -1);
  g_assert_cmpint (errno, ==, EAGAIN);

  /* the client reads: the pending bytes go out */
  drain (p.client.weft, p.client.fd, data, &got, buf, 65536);
  g_assert_cmpuint (got, >, 0);
  g_assert_cmpint (weft_tls_session_flush (p.server.weft), ==, 1);
  g_assert_false (weft_tls_session_has_pending (p.server.weft));

  /* and the rest, the client reading as it comes */
  while (got < BIG)
    {
      int flushed = weft_tls_session_flush (p.server.weft);

      g_assert_cmpint (flushed, >=, 0);
      if (flushed == 1 && sent < BIG)
        {
          more = (struct iovec) { data + sent, MIN (48000, BIG - sent) };
          n = weft_tls_session_writev (p.server.weft, &more, 1);
          g_assert_cmpint (n, !=, 0);
          if (n > 0)
            sent += (gsize) n;
          else
            g_assert_cmpint (errno, ==, EAGAIN);
        }
      drain (p.client.weft, p.client.fd, data, &got, buf, 65536);
      g_assert_cmpuint (got, <=, sent);
      if (got < sent || weft_tls_session_has_pending (p.server.weft))
        wait_transfer (&p);
    }
  g_assert_cmpuint (sent, ==, BIG);
  g_assert_cmpuint (got, ==, BIG);
  g_assert_false (weft_tls_session_has_pending (p.server.weft));
  pair_close (&p);
}

/* the client wants another server: refused, and the log can say who */
static void
test_wrong_server_id (void)
{
  const char *const expected[] = { "spiffe://cluster.local/ns/default/sa/zzz", NULL };
  const char *detail;
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, expected, NULL);
  pair_handshake (&p);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_FAILED);
  g_assert_cmpint (weft_tls_session_get_failure (p.client.weft), ==,
                   WEFT_TLS_FAIL_WRONG_SPIFFE_ID);
  g_assert_null (weft_tls_session_get_peer_id (p.client.weft));
  detail = weft_tls_session_get_detail (p.client.weft);
  g_assert_nonnull (strstr (detail, SERVER_ID));
  g_assert_nonnull (strstr (detail, expected[0]));
  /* the server never finishes with a client that walked away */
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_FAILED);
  pair_close (&p);
}

/* any one of the listed IDs will do */
static void
test_expected_list (void)
{
  const char *const expected[] = { "spiffe://cluster.local/ns/default/sa/zzz", SERVER_ID, NULL };
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, expected, NULL);
  pair_handshake (&p);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpstr (weft_tls_session_get_peer_id (p.client.weft), ==, SERVER_ID);
  pair_close (&p);
}

/* a client weft trusts no more than the server does; handshake with
 * @creds and check the server's reason */
static void
refused_weft_client (WeftTlsCredentials *creds, WeftTlsFailure failure)
{
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, creds, NULL, NULL);
  pair_handshake (&p);
  assert_server_refused (&p, failure);
  /* TLS 1.3: the client finished first; the refusal ends its connection */
  if (p.client.step == WEFT_TLS_STEP_DONE)
    assert_ended (p.client.weft, p.client.fd);
  pair_close (&p);
}

static void
test_client_other_ca (void)
{
  /* trusts both CAs, so it takes the server's certificate; the server
   * knows only ca1 */
  g_autoptr(WeftTlsCredentials) creds = load ("foreign", "reviews.pem", "reviews-key.pem",
                                              "both");

  refused_weft_client (creds, WEFT_TLS_FAIL_UNKNOWN_CA);
}

static void
test_server_other_ca (void)
{
  g_autoptr(WeftTlsCredentials) creds = load ("foreign", "reviews.pem", "reviews-key.pem",
                                              "ca2");
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, creds, NULL, NULL);
  pair_handshake (&p);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_FAILED);
  g_assert_cmpint (weft_tls_session_get_failure (p.client.weft), ==, WEFT_TLS_FAIL_UNKNOWN_CA);
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_FAILED);
  pair_close (&p);
}

static void
test_client_expired (void)
{
  g_autoptr(WeftTlsCredentials) creds = load ("expired", "leaf.pem", "leaf-key.pem", "ca1");

  refused_weft_client (creds, WEFT_TLS_FAIL_EXPIRED);
}

static void
test_client_not_yet_valid (void)
{
  g_autoptr(WeftTlsCredentials) creds = load ("future", "leaf.pem", "leaf-key.pem", "ca1");

  refused_weft_client (creds, WEFT_TLS_FAIL_NOT_YET_VALID);
}

static void
test_client_other_trust_domain (void)
{
  g_autoptr(WeftTlsCredentials) creds = load ("othertd", "leaf.pem", "leaf-key.pem", "ca1");
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, creds, NULL, NULL);
  pair_handshake (&p);
  assert_server_refused (&p, WEFT_TLS_FAIL_WRONG_SPIFFE_ID);
  g_assert_nonnull (strstr (weft_tls_session_get_detail (p.server.weft),
                            "spiffe://other.example/ns/default/sa/x"));
  pair_close (&p);
}

/* a plain client presenting <dir>/leaf.pem with @priority */
static void
refused_raw_client (const char *dir, const char *priority, WeftTlsFailure failure)
{
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_raw_client (&p, dir, priority);
  pair_handshake (&p);
  assert_server_refused (&p, failure);
  pair_close (&p);
}

/* no URI SAN at all, none with spiffe://, two, and one not of the form */
static void
test_client_no_spiffe_id (void)
{
  const char *const dirs[] = { "nosan", "httpsan", "twosan", "oddsan" };

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_test_message ("client leaf %s", dirs[i]);
      refused_raw_client (dirs[i], "NORMAL", WEFT_TLS_FAIL_NO_SPIFFE_ID);
    }
}

static void
test_client_no_certificate (void)
{
  refused_raw_client (NULL, "NORMAL", WEFT_TLS_FAIL_NO_CLIENT_CERTIFICATE);
  /* the same over TLS 1.2 */
  refused_raw_client (NULL, "NORMAL:-VERS-ALL:+VERS-TLS1.2", WEFT_TLS_FAIL_NO_CLIENT_CERTIFICATE);
}

static void
test_client_tls11 (void)
{
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_raw_client (&p, "good-raw", "NORMAL:-VERS-ALL:+VERS-TLS1.1");
  pair_handshake (&p);
  assert_server_refused (&p, WEFT_TLS_FAIL_PROTOCOL_VERSION);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_FAILED);
  pair_close (&p);
}

/* a plain TLS 1.2 client with a good certificate gets in: 1.2 is allowed */
static void
test_client_tls12 (void)
{
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_raw_client (&p, "good-raw", "NORMAL:-VERS-ALL:+VERS-TLS1.2");
  pair_handshake (&p);
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (gnutls_protocol_get_version (p.client.raw), ==, GNUTLS_TLS1_2);
  g_assert_cmpstr (weft_tls_session_get_peer_id (p.server.weft), ==, CLIENT_ID);
  pair_close (&p);
}

/* the client goes away without a close_notify: the server reads an end
 * like a FIN, and a write is a broken pipe (never a SIGPIPE) */
static void
test_peer_gone (void)
{
  struct iovec iov = { (void *) "late", 4 };
  guint8 b[16];
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, NULL, NULL);
  pair_handshake (&p);
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_DONE);
  g_clear_pointer (&p.client.weft, weft_tls_session_free);
  g_assert_no_errno (shutdown (p.client.fd, SHUT_RDWR));
  wait_fd (p.server.fd, POLLIN);
  g_assert_cmpint (weft_tls_session_recv (p.server.weft, b, sizeof b), ==, 0);
  g_assert_cmpint (weft_tls_session_writev (p.server.weft, &iov, 1), ==, -1);
  g_assert_cmpint (errno, ==, EPIPE);
  pair_close (&p);
}

/* what is not a TLS client: silence then a close, plaintext, a
 * handshake record of garbage. Each is refused, none hangs */
static void
test_not_a_client (void)
{
#define BYTES(s) { s, sizeof s - 1 }
  static const struct { const char *bytes; gsize len; } sends[] = {
    BYTES (""),
    BYTES ("GET / HTTP/1.1\r\nhost: x\r\n\r\n"),
    BYTES ("\x16garbage, and more garbage than a record header"),
    BYTES ("\x16\x03\x01\x00\x05hello"),
  };
#undef BYTES

  for (guint i = 0; i < G_N_ELEMENTS (sends); i++)
    {
      Pair p;

      pair_open (&p);
      pair_server (&p);
      g_test_message ("sending %" G_GSIZE_FORMAT " bytes", sends[i].len);
      g_assert_cmpint (write (p.client.fd, sends[i].bytes, sends[i].len), ==, sends[i].len);
      g_assert_no_errno (shutdown (p.client.fd, SHUT_WR));
      /* the client side is the test itself: nothing to drive */
      p.client.started = TRUE;
      p.client.step = WEFT_TLS_STEP_DONE;
      pair_handshake (&p);
      g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_FAILED);
      g_assert_cmpint (weft_tls_session_get_failure (p.server.weft), !=, WEFT_TLS_FAIL_NONE);
      g_assert_null (weft_tls_session_get_peer_id (p.server.weft));
      pair_close (&p);
    }
}

/* a full handshake, one answer so the ticket arrives, then a second
 * connection resumed with it */
static void
test_resumption (void)
{
  const char *const expected[] = { "spiffe://cluster.local/ns/default/sa/zzz", NULL };
  g_autoptr(GBytes) resume = NULL;
  struct iovec iov = { (void *) "x", 1 };
  guint8 b;
  Pair p;

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, NULL, NULL);
  pair_handshake (&p);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_DONE);
  /* TLS 1.3: no ticket until the client has read past the handshake */
  g_assert_null (weft_tls_session_take_resume_data (p.client.weft));
  g_assert_cmpint (weft_tls_session_writev (p.server.weft, &iov, 1), ==, 1);
  recv_all (p.client.weft, p.client.fd, &b, 1);
  g_assert_cmpint (b, ==, 'x');
  resume = weft_tls_session_take_resume_data (p.client.weft);
  g_assert_nonnull (resume);
  g_assert_cmpuint (g_bytes_get_size (resume), >, 0);
  g_assert_null (weft_tls_session_take_resume_data (p.server.weft));
  pair_close (&p);

  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, NULL, resume);
  pair_handshake (&p);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_cmpint (p.server.step, ==, WEFT_TLS_STEP_DONE);
  g_assert_true (weft_tls_session_is_resumed (p.client.weft));
  g_assert_true (weft_tls_session_is_resumed (p.server.weft));
  /* no certificate crossed the wire, yet both still know who the peer is */
  g_assert_cmpstr (weft_tls_session_get_peer_id (p.server.weft), ==, CLIENT_ID);
  g_assert_cmpstr (weft_tls_session_get_peer_id (p.client.weft), ==, SERVER_ID);
  /* bytes still move on the resumed session */
  g_assert_cmpint (weft_tls_session_writev (p.client.weft, &iov, 1), ==, 1);
  recv_all (p.server.weft, p.server.fd, &b, 1);
  g_assert_cmpint (b, ==, 'x');
  pair_close (&p);

  /* resuming skips no check: a client that wants another server still
   * refuses this one */
  pair_open (&p);
  pair_server (&p);
  pair_client (&p, client_creds, expected, resume);
  pair_handshake (&p);
  g_assert_cmpint (p.client.step, ==, WEFT_TLS_STEP_FAILED);
  g_assert_cmpint (weft_tls_session_get_failure (p.client.weft), ==,
                   WEFT_TLS_FAIL_WRONG_SPIFFE_ID);
  pair_close (&p);
}

/* the metric's reason labels, exactly as docs/design/mtls.md lists them */
static void
test_failure_names (void)
{
  static const struct { WeftTlsFailure failure; const char *label; } names[] = {
    { WEFT_TLS_FAIL_UNKNOWN_CA, "unknown_ca" },
    { WEFT_TLS_FAIL_EXPIRED, "expired" },
    { WEFT_TLS_FAIL_NOT_YET_VALID, "not_yet_valid" },
    { WEFT_TLS_FAIL_NO_SPIFFE_ID, "no_spiffe_id" },
    { WEFT_TLS_FAIL_WRONG_SPIFFE_ID, "wrong_spiffe_id" },
    { WEFT_TLS_FAIL_NO_CLIENT_CERTIFICATE, "no_client_certificate" },
    { WEFT_TLS_FAIL_PLAINTEXT_ON_STRICT, "plaintext_on_strict" },
    { WEFT_TLS_FAIL_PROTOCOL_VERSION, "protocol_version" },
    { WEFT_TLS_FAIL_BAD_CERTIFICATE, "bad_certificate" },
    { WEFT_TLS_FAIL_HANDSHAKE_ERROR, "handshake_error" },
    { WEFT_TLS_FAIL_TIMEOUT, "timeout" },
  };
  g_autoptr(GHashTable) texts = g_hash_table_new (g_str_hash, g_str_equal);

  /* every refusal has a label: NONE and the count are the only others */
  g_assert_cmpuint (G_N_ELEMENTS (names), ==, WEFT_TLS_FAIL_COUNT - 1);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const char *text = weft_tls_failure_describe (names[i].failure);

      g_assert_cmpstr (weft_tls_failure_to_string (names[i].failure), ==, names[i].label);
      g_assert_nonnull (text);
      g_assert_cmpuint (strlen (text), >, 0);
      /* one sentence per reason */
      g_assert_false (g_hash_table_contains (texts, text));
      g_hash_table_add (texts, (gpointer) text);
    }
  g_assert_cmpstr (weft_tls_failure_to_string (WEFT_TLS_FAIL_COUNT), ==, "handshake_error");
  g_assert_nonnull (weft_tls_failure_describe (WEFT_TLS_FAIL_COUNT));
}

/* ------------------------------------------------------------------ */

static void
make_certs (void)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *const good[] = { CLIENT_ID, NULL };
  const char *const old[] = { "spiffe://cluster.local/ns/default/sa/old", NULL };
  const char *const none[] = { NULL };
  const char *const https[] = { "https://example.com/x", NULL };
  const char *const two[] = { "spiffe://cluster.local/ns/default/sa/a",
                              "spiffe://cluster.local/ns/default/sa/b", NULL };
  const char *const odd[] = { "spiffe://cluster.local/workload/a", NULL };
  const char *const other_td[] = { "spiffe://other.example/ns/default/sa/x", NULL };
  g_autofree char *ca1 = weft_test_certs_path ("ca1", "ca.pem");
  g_autofree char *ca2 = weft_test_certs_path ("ca2", "ca.pem");
  g_autofree char *both = weft_test_certs_path ("both", "ca.pem");
  g_autofree char *both_dir = weft_test_certs_path ("both", NULL);
  g_autofree char *a = NULL, *b = NULL, *pem = NULL;

  /* ca1 is the bundle; ca2 a stranger with the same trust domain */
  weft_test_make_ca ("ca1");
  weft_test_make_ca ("ca2");
  weft_test_issue ("ca1", "good", "productpage");
  weft_test_issue ("ca1", "good", "reviews");
  weft_test_issue ("ca2", "foreign", "reviews");
  g_assert_true (g_file_get_contents (ca1, &a, NULL, NULL));
  g_assert_true (g_file_get_contents (ca2, &b, NULL, NULL));
  pem = g_strconcat (a, b, NULL);
  g_assert_cmpint (g_mkdir_with_parents (both_dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (both, pem, -1, NULL));

  weft_test_make_leaf ("ca1", "good-raw", good, now - 60, now + WEFT_TEST_DAY);
  weft_test_make_leaf ("ca1", "expired", old, now - 3 * WEFT_TEST_DAY, now - WEFT_TEST_DAY);
  weft_test_make_leaf ("ca1", "future", old, now + WEFT_TEST_DAY, now + 3 * WEFT_TEST_DAY);
  weft_test_make_leaf ("ca1", "nosan", none, now - 60, now + WEFT_TEST_DAY);
  weft_test_make_leaf ("ca1", "httpsan", https, now - 60, now + WEFT_TEST_DAY);
  weft_test_make_leaf ("ca1", "twosan", two, now - 60, now + WEFT_TEST_DAY);
  weft_test_make_leaf ("ca1", "oddsan", odd, now - 60, now + WEFT_TEST_DAY);
  weft_test_make_leaf ("ca1", "othertd", other_td, now - 60, now + WEFT_TEST_DAY);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  weft_test_certs_init ("weft-tls-session");
  make_certs ();
  server_creds = load ("good", "productpage.pem", "productpage-key.pem", "ca1");
  client_creds = load ("good", "reviews.pem", "reviews-key.pem", "ca1");

  g_test_add_func ("/tls-session/good-handshake", test_good_handshake);
  g_test_add_func ("/tls-session/partial-write", test_partial_write);
  g_test_add_func ("/tls-session/wrong-server-id", test_wrong_server_id);
  g_test_add_func ("/tls-session/expected-list", test_expected_list);
  g_test_add_func ("/tls-session/client-other-ca", test_client_other_ca);
  g_test_add_func ("/tls-session/server-other-ca", test_server_other_ca);
  g_test_add_func ("/tls-session/client-expired", test_client_expired);
  g_test_add_func ("/tls-session/client-not-yet-valid", test_client_not_yet_valid);
  g_test_add_func ("/tls-session/client-other-trust-domain", test_client_other_trust_domain);
  g_test_add_func ("/tls-session/client-no-spiffe-id", test_client_no_spiffe_id);
  g_test_add_func ("/tls-session/client-no-certificate", test_client_no_certificate);
  g_test_add_func ("/tls-session/client-tls11", test_client_tls11);
  g_test_add_func ("/tls-session/client-tls12", test_client_tls12);
  g_test_add_func ("/tls-session/peer-gone", test_peer_gone);
  g_test_add_func ("/tls-session/not-a-client", test_not_a_client);
  g_test_add_func ("/tls-session/resumption", test_resumption);
  g_test_add_func ("/tls-session/failure-names", test_failure_names);
  ret = g_test_run ();

  weft_tls_credentials_unref (server_creds);
  weft_tls_credentials_unref (client_creds);
  weft_test_certs_cleanup ();
  return ret;
}
