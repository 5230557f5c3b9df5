/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * tls-handshake: what a full and a resumed mTLS handshake cost. Connects
 * N times to HOST:PORT with a client certificate, each time a fresh session
 * with a full handshake, then N times resuming (the session data of the
 * connection before, read after its response, since TLS 1.3 tickets arrive
 * after the handshake; --reuse-ticket: always the first one). Every
 * connection sends `GET / HTTP/1.1`, reads the whole response and closes.
 * With --plain HOST:PORT it first does the same N times without TLS, the
 * baseline the handshakes add to.
 *
 *   build/bench/tls-handshake --cert a.pem --key a-key.pem --ca ca.pem \
 *       -n 500 [--server-pid PID] [--plain 127.0.0.1:15007] 127.0.0.1:15006
 *
 * Prints per mode the median and p99 wall time of the handshake (connect()
 * to handshake done) and of the whole connection (to the last response
 * byte), how many connections were really resumed
 * (gnutls_session_is_resumed), this client's CPU per connection
 * (getrusage), and with --server-pid the server's CPU per connection
 * (utime+stime of /proc/PID/stat, all its threads). The last lines are
 * machine-readable: `BENCH mode=full n=... hs_p50_us=...`.
 *
 * The server's chain is verified against --ca (not against a host name:
 * mesh certificates carry a SPIFFE ID; --spiffe-id checks that too).
 *
 * Exit status: 0 when every connection got a 2xx answer and, in the
 * resumed mode, every connection was resumed; 1 otherwise; 2 on bad usage.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define BENCH_IO_TIMEOUT_MS 5000
#define BENCH_RESPONSE_MAX (1024 * 1024)

typedef struct {
  const char *mode;
  guint       n;
  double     *hs_us;        /* per connection: connect() to handshake done */
  double     *total_us;     /* per connection: connect() to last response byte */
  guint       resumed;
  guint       ok;           /* 2xx answers */
  guint       failed;       /* connect, handshake or read failures, non-2xx */
  double      client_cpu_us;
  double      server_cpu_us; /* < 0: not measured */
  char       *desc;         /* what the first measured connection negotiated */
} BenchResult;

typedef struct {
  struct addrinfo                  *addr;
  struct addrinfo                  *plain_addr;  /* --plain, or NULL */
  gnutls_certificate_credentials_t  creds;
  const char                       *priority;
  const char                       *sni;
  const char                       *spiffe_id;
  gint                              server_pid;
  gboolean                          reuse_ticket;
  gboolean                          verbose;
} BenchClient;

static gboolean
bench_fail (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
bench_fail (GError **error, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, g_quark_from_static_string ("tls-handshake"), 0, msg);
  return FALSE;
}

static double
bench_now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static double
bench_client_cpu_us (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
         (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* utime+stime of a whole process (all threads) in µs, or -1 */
static double
bench_server_cpu_us (gint pid)
{
  g_autofree char *path = NULL, *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  if (pid <= 0)
    return -1;
  path = g_strdup_printf ("/proc/%d/stat", pid);
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return -1;
  /* the command name may hold spaces: fields count from after its ')' */
  after = strrchr (text, ')');
  if (after == NULL)
    return -1;
  fields = g_strsplit (after + 2, " ", 0);
  if (g_strv_length (fields) < 13)
    return -1;
  /* after "pid (comm) ", field 0 is the state; utime and stime are 11, 12 */
  return (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12], NULL)) *
         1e6 / (double) sysconf (_SC_CLK_TCK);
}

static int
bench_connect (const struct addrinfo *addr, GError **error)
{
  struct timeval tv = { BENCH_IO_TIMEOUT_MS / 1000, 0 };
  int one = 1;
  int fd;

  fd = socket (addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return bench_fail (error, "socket: %s", g_strerror (errno)), -1;
  /* blocking with timeouts: a stuck server makes an error, never a hang */
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect (fd, addr->ai_addr, addr->ai_addrlen) < 0)
    {
      bench_fail (error, "connect: %s", g_strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

/* the peer's certificate carries exactly the expected URI SAN */
static gboolean
bench_check_spiffe_id (gnutls_session_t session, const char *want, GError **error)
{
  const gnutls_datum_t *certs;
  unsigned int n_certs = 0;
  gnutls_x509_crt_t crt;
  gboolean found = FALSE;
  char san[1024];

  certs = gnutls_certificate_get_peers (session, &n_certs);
  if (certs == NULL || n_certs == 0)
    return bench_fail (error, "the server sent no certificate");
  if (gnutls_x509_crt_init (&crt) < 0)
    return bench_fail (error, "gnutls_x509_crt_init failed");
  if (gnutls_x509_crt_import (crt, &certs[0], GNUTLS_X509_FMT_DER) == 0)
    {
      for (unsigned int i = 0; !found; i++)
        {
          size_t len = sizeof san;
          unsigned int critical;
          int type = gnutls_x509_crt_get_subject_alt_name (crt, i, san, &len, &critical);

          if (type < 0)
            break;
          found = type == GNUTLS_SAN_URI && len == strlen (want) && memcmp (san, want, len) == 0;
        }
    }
  gnutls_x509_crt_deinit (crt);
  return found ? TRUE : bench_fail (error, "the server's certificate is not %s", want);
}

static gboolean
bench_handshake (const BenchClient *client, gnutls_session_t session, GError **error)
{
  unsigned int status = 0;
  int ret;

  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));
  if (ret < 0)
    return bench_fail (error, "handshake: %s", gnutls_strerror (ret));
  /* a resumed session's chain was verified when its ticket was issued */
  if (gnutls_session_is_resumed (session))
    return TRUE;
  /* the chain must verify against --ca; the name is a SPIFFE ID, not a
   * host name, so it is checked on its own below */
  ret = gnutls_certificate_verify_peers3 (session, NULL, &status);
  if (ret < 0)
    return bench_fail (error, "verify: %s", gnutls_strerror (ret));
  if (status != 0)
    {
      gnutls_datum_t out = { NULL, 0 };
      g_autofree char *why = NULL;

      gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509, &out, 0);
      why = g_strndup ((const char *) out.data, out.size);
      gnutls_free (out.data);
      return bench_fail (error, "server certificate: %s", why);
    }
  if (client->spiffe_id != NULL)
    return bench_check_spiffe_id (session, client->spiffe_id, error);
  return TRUE;
}

/* where the body ends, once the head is complete: Content-Length, chunked,
 * or (neither) at the close; -1 while the head is incomplete */
static gssize
bench_response_end (const char *buf, gsize len, gboolean *chunked, int *status)
{
  const char *head_end = g_strstr_len (buf, len, "\r\n\r\n");
  g_autofree char *head = NULL;
  g_auto(GStrv) lines = NULL;
  gssize body = -1;

  if (head_end == NULL)
    return -1;
  head = g_strndup (buf, head_end - buf);
  lines = g_strsplit (head, "\r\n", 0);
  *status = 0;
  if (lines[0] != NULL && strlen (lines[0]) >= 12 && g_str_has_prefix (lines[0], "HTTP/1."))
    *status = atoi (lines[0] + 9);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      if (g_ascii_strncasecmp (lines[i], "content-length:", 15) == 0)
        body = g_ascii_strtoll (lines[i] + 15, NULL, 10);
      else if (g_ascii_strncasecmp (lines[i], "transfer-encoding:", 18) == 0 &&
               strstr (lines[i] + 18, "chunked") != NULL)
        *chunked = TRUE;
    }
  if (*chunked || body < 0)
    return G_MAXSSIZE;
  return (head_end - buf) + 4 + body;
}

/* one write of the request: TLS when session is set, else plain */
static gboolean
bench_send (gnutls_session_t session, int fd, const char *data, gsize len, GError **error)
{
  ssize_t ret;

  if (session == NULL)
    {
      ret = send (fd, data, len, MSG_NOSIGNAL);
      return ret == (ssize_t) len ? TRUE : bench_fail (error, "send: %s", g_strerror (errno));
    }
  do
    ret = gnutls_record_send (session, data, len);
  while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
  return ret == (ssize_t) len ? TRUE : bench_fail (error, "send: %s", gnutls_strerror ((int) ret));
}

/* bytes read, 0 at a close (a TLS close without close_notify included),
 * or -1 with error set */
static gssize
bench_recv (gnutls_session_t session, int fd, char *buf, gsize len, GError **error)
{
  ssize_t ret;

  if (session == NULL)
    {
      do
        ret = recv (fd, buf, len, 0);
      while (ret < 0 && errno == EINTR);
      if (ret < 0)
        return bench_fail (error, "recv: %s", g_strerror (errno)), -1;
      return ret;
    }
  do
    ret = gnutls_record_recv (session, buf, len);
  while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
  if (ret == GNUTLS_E_PREMATURE_TERMINATION)
    return 0;
  if (ret < 0)
    return bench_fail (error, "recv: %s", gnutls_strerror ((int) ret)), -1;
  return ret;
}

/* sends GET / and reads the whole response; the HTTP status, or -1 */
static int
bench_request (gnutls_session_t session, int fd, GError **error)
{
  static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  g_autofree char *buf = g_malloc (BENCH_RESPONSE_MAX);
  gsize len = 0;
  gssize end = -1, ret;
  gboolean chunked = FALSE;
  int status = 0;

  if (!bench_send (session, fd, req, sizeof req - 1, error))
    return -1;
  while (end < 0 || (gssize) len < end)
    {
      if (len == BENCH_RESPONSE_MAX)
        return bench_fail (error, "response larger than %d bytes", BENCH_RESPONSE_MAX), -1;
      ret = bench_recv (session, fd, buf + len, BENCH_RESPONSE_MAX - len, error);
      if (ret < 0)
        return -1;
      /* a close ends a body of no declared length */
      if (ret == 0 && end == G_MAXSSIZE)
        break;
      if (ret == 0)
        return bench_fail (error, "the server closed after %zu bytes", len), -1;
      len += (gsize) ret;
      if (end < 0)
        end = bench_response_end (buf, len, &chunked, &status);
      if (chunked && len >= 5 && memcmp (buf + len - 5, "0\r\n\r\n", 5) == 0)
        break;
    }
  return status;
}

/* a client session on fd, set up to resume from ticket_in when given */
static gboolean
bench_session_new (const BenchClient *client, int fd, const gnutls_datum_t *ticket_in,
                   gnutls_session_t *out, GError **error)
{
  static const gnutls_datum_t alpn = { (unsigned char *) "http/1.1", 8 };
  const char *err_pos = NULL;
  int ret;

  gnutls_init (out, GNUTLS_CLIENT);
  ret = gnutls_priority_set_direct (*out, client->priority, &err_pos);
  if (ret < 0)
    return bench_fail (error, "priority '%s' at '%s': %s", client->priority,
                       err_pos ? err_pos : "", gnutls_strerror (ret));
  gnutls_credentials_set (*out, GNUTLS_CRD_CERTIFICATE, client->creds);
  gnutls_alpn_set_protocols (*out, &alpn, 1, 0);
  if (client->sni != NULL)
    gnutls_server_name_set (*out, GNUTLS_NAME_DNS, client->sni, strlen (client->sni));
  if (ticket_in != NULL)
    gnutls_session_set_data (*out, ticket_in->data, ticket_in->size);
  gnutls_transport_set_int (*out, fd);
  gnutls_handshake_set_timeout (*out, BENCH_IO_TIMEOUT_MS);
  return TRUE;
}

/* the session's data for a later resumption; left empty when a TLS 1.3
 * server sent no NewSessionTicket (such data cannot resume) */
static gboolean
bench_session_ticket (gnutls_session_t session, gnutls_datum_t *ticket_out, GError **error)
{
  int ret;

  if (gnutls_protocol_get_version (session) == GNUTLS_TLS1_3 &&
      !(gnutls_session_get_flags (session) & GNUTLS_SFLAGS_SESSION_TICKET))
    return TRUE;
  ret = gnutls_session_get_data2 (session, ticket_out);
  if (ret < 0)
    return bench_fail (error, "gnutls_session_get_data2: %s", gnutls_strerror (ret));
  return TRUE;
}

/* one plaintext connection: GET /, response, close; the baseline */
static gboolean
bench_one_plain (const BenchClient *client, double *total_us, int *status, GError **error)
{
  double t0 = bench_now_us ();
  int fd = bench_connect (client->plain_addr, error);

  if (fd < 0)
    return FALSE;
  *status = bench_request (NULL, fd, error);
  close (fd);
  *total_us = bench_now_us () - t0;
  return *status >= 0;
}

/* one connection: handshake, GET /, response, close. ticket_in: session
 * data to resume from (NULL: a full handshake); ticket_out: the session's
 * data after the response, for the next resumption */
static gboolean
bench_one (const BenchClient *client, const gnutls_datum_t *ticket_in,
           gnutls_datum_t *ticket_out, double *hs_us, double *total_us,
           gboolean *resumed, int *status, char **desc, GError **error)
{
  gnutls_session_t session = NULL;
  gboolean ok;
  double t0;
  int fd;

  t0 = bench_now_us ();
  fd = bench_connect (client->addr, error);
  if (fd < 0)
    return FALSE;
  ok = bench_session_new (client, fd, ticket_in, &session, error) &&
       bench_handshake (client, session, error);
  if (ok)
    {
      *hs_us = bench_now_us () - t0;
      *resumed = gnutls_session_is_resumed (session) != 0;
      if (desc != NULL && *desc == NULL)
        {
          char *d = gnutls_session_get_desc (session);
          const gnutls_datum_t *proto = NULL;
          gnutls_datum_t alpn = { NULL, 0 };

          if (gnutls_alpn_get_selected_protocol (session, &alpn) == 0)
            proto = &alpn;
          *desc = g_strdup_printf ("%s, ALPN %.*s", d, proto ? (int) proto->size : 4,
                                   proto ? (const char *) proto->data : "none");
          gnutls_free (d);
        }
      *status = bench_request (session, fd, error);
      ok = *status >= 0;
    }
  if (ok)
    {
      *total_us = bench_now_us () - t0;
      ok = ticket_out == NULL || bench_session_ticket (session, ticket_out, error);
    }
  if (ok)
    gnutls_bye (session, GNUTLS_SHUT_WR);
  gnutls_deinit (session);
  close (fd);
  return ok;
}

static int
bench_cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

/* nearest-rank percentile of the first n values (sorts them) */
static double
bench_percentile (double *v, guint n, double p)
{
  guint rank;

  if (n == 0)
    return 0;
  qsort (v, n, sizeof *v, bench_cmp_double);
  rank = (guint) (p / 100.0 * n + 0.999999);
  return v[CLAMP (rank, 1, n) - 1];
}

/* n connections; resume: each resumes from the last ticket (--reuse-ticket:
 * always the first one) */
static void
bench_mode (const BenchClient *client, const char *mode, guint n, guint warmup,
            BenchResult *r)
{
  gboolean resume = g_str_equal (mode, "resumed");
  gboolean plain = g_str_equal (mode, "plain");
  gnutls_datum_t ticket = { NULL, 0 };
  double cpu0 = 0, scpu0 = 0;
  guint done = 0, failures = 0, in_a_row = 0;

  memset (r, 0, sizeof *r);
  r->mode = mode;
  r->hs_us = g_new0 (double, n);
  r->total_us = g_new0 (double, n);
  r->server_cpu_us = -1;

  if (resume)
    {
      /* a first full connection gives the ticket */
      double hs, total;
      gboolean resumed;
      int status;
      g_autoptr(GError) error = NULL;

      if (!bench_one (client, NULL, &ticket, &hs, &total, &resumed, &status, NULL, &error) ||
          ticket.data == NULL)
        {
          g_printerr ("tls-handshake: resumed: the first connection gave no ticket: %s\n",
                      error ? error->message : "the server sent no session ticket");
          r->failed = n;
          return;
        }
    }

  for (guint i = 0; i < warmup + n; i++)
    {
      g_autoptr(GError) error = NULL;
      gnutls_datum_t next = { NULL, 0 };
      double hs = 0, total = 0;
      gboolean resumed = FALSE, counted = i >= warmup;
      int status = 0;

      if (i == warmup)
        {
          cpu0 = bench_client_cpu_us ();
          scpu0 = bench_server_cpu_us (client->server_pid);
        }
      if (plain ? !bench_one_plain (client, &total, &status, &error)
                : !bench_one (client, resume ? &ticket : NULL,
                              resume && !client->reuse_ticket ? &next : NULL,
                              &hs, &total, &resumed, &status,
                              counted ? &r->desc : NULL, &error))
        {
          if (client->verbose || failures++ < 3)
            g_printerr ("tls-handshake: %s #%u: %s\n", mode, i, error->message);
          r->failed += counted;
          gnutls_free (next.data);
          /* a server that refuses everything: say so once, not N times */
          if (++in_a_row == 10)
            {
              g_printerr ("tls-handshake: %s: 10 failures in a row, giving up\n", mode);
              r->failed = n;
              break;
            }
          continue;
        }
      in_a_row = 0;
      if (next.data != NULL)
        {
          gnutls_free (ticket.data);
          ticket = next;
        }
      if (!counted)
        continue;
      r->hs_us[done] = hs;
      r->total_us[done] = total;
      done++;
      r->resumed += resumed;
      if (status >= 200 && status < 300)
        r->ok++;
      else
        {
          r->failed++;
          if (r->failed <= 3)
            g_printerr ("tls-handshake: %s #%u: HTTP status %d\n", mode, i, status);
        }
    }
  r->client_cpu_us = (bench_client_cpu_us () - cpu0) / MAX (done, 1);
  if (client->server_pid > 0)
    r->server_cpu_us = (bench_server_cpu_us (client->server_pid) - scpu0) / MAX (done, 1);
  r->n = done;
  gnutls_free (ticket.data);
}

static void
bench_print (const BenchResult *results, guint n_results, gboolean machine)
{
  for (guint i = 0; i < n_results; i++)
    {
      const BenchResult *r = &results[i];
      double hs50 = bench_percentile (r->hs_us, r->n, 50);
      double hs99 = bench_percentile (r->hs_us, r->n, 99);
      double t50 = bench_percentile (r->total_us, r->n, 50);
      double t99 = bench_percentile (r->total_us, r->n, 99);

      if (machine && r->desc != NULL)
        g_print ("session %s: %s\n", r->mode, r->desc);
      if (machine)
        g_print ("BENCH mode=%s n=%u ok=%u failed=%u resumed=%u hs_p50_us=%.1f hs_p99_us=%.1f "
                 "conn_p50_us=%.1f conn_p99_us=%.1f client_cpu_us=%.1f server_cpu_us=%.1f\n",
                 r->mode, r->n, r->ok, r->failed, r->resumed, hs50, hs99, t50, t99,
                 r->client_cpu_us, r->server_cpu_us);
      else
        {
          gboolean plain = g_str_equal (r->mode, "plain");
          char server[32] = "-", resumed[32] = "-", h50[32] = "-", h99[32] = "-";

          if (r->server_cpu_us >= 0)
            g_snprintf (server, sizeof server, "%.1f", r->server_cpu_us);
          if (!plain)
            {
              g_snprintf (resumed, sizeof resumed, "%u/%u", r->resumed, r->n);
              g_snprintf (h50, sizeof h50, "%.1f", hs50);
              g_snprintf (h99, sizeof h99, "%.1f", hs99);
            }
          g_print ("%-8s %6u %13s %10s %10s %10.1f %10.1f %10.1f %10s\n",
                   r->mode, r->n, resumed, h50, h99, t50, t99, r->client_cpu_us, server);
        }
    }
}

static gboolean
bench_resolve (const char *target, struct addrinfo **out, GError **error)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
  g_autofree char *host = NULL;
  const char *colon = strrchr (target, ':');
  int ret;

  if (colon == NULL || colon == target || colon[1] == '\0')
    return bench_fail (error, "'%s' is not HOST:PORT", target);
  host = g_strndup (target, colon - target);
  if (host[0] == '[' && host[strlen (host) - 1] == ']')
    {
      memmove (host, host + 1, strlen (host));
      host[strlen (host) - 1] = '\0';
    }
  ret = getaddrinfo (host, colon + 1, &hints, out);
  if (ret != 0)
    return bench_fail (error, "%s: %s", target, gai_strerror (ret));
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *cert = NULL, *key = NULL, *ca = NULL, *modes = NULL;
  g_autofree char *priority = NULL, *sni = NULL, *spiffe_id = NULL, *plain = NULL;
  gint n = 200, warmup = 5, server_pid = 0;
  gboolean reuse_ticket = FALSE, verbose = FALSE;
  const GOptionEntry entries[] = {
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "client certificate chain (PEM)", "FILE" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key, "client private key (PEM)", "FILE" },
    { "ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "trust bundle the server must chain to (PEM)", "FILE" },
    { "count", 'n', 0, G_OPTION_ARG_INT, &n, "connections per mode (default 200)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "unmeasured connections before each mode (default 5)", "N" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &modes, "full, resumed or both (default both)", "MODE" },
    { "server-pid", 0, 0, G_OPTION_ARG_INT, &server_pid, "also report this process's CPU per connection", "PID" },
    { "priority", 0, 0, G_OPTION_ARG_STRING, &priority, "GnuTLS priority string (default NORMAL)", "STR" },
    { "sni", 0, 0, G_OPTION_ARG_STRING, &sni, "server name to send", "NAME" },
    { "spiffe-id", 0, 0, G_OPTION_ARG_STRING, &spiffe_id, "require this URI SAN in the server's certificate", "URI" },
    { "reuse-ticket", 0, 0, G_OPTION_ARG_NONE, &reuse_ticket, "resume every time from the first ticket (default: the newest)", NULL },
    { "plain", 0, 0, G_OPTION_ARG_STRING, &plain, "first time plaintext connections (GET /, close) to this address: the baseline", "HOST:PORT" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "print every failure", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("HOST:PORT");
  g_autoptr(GError) error = NULL;
  BenchClient client = { 0 };
  BenchResult results[3];
  guint n_results = 0, bad = 0;
  int ret;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_summary (ctx, "Times full and resumed mTLS handshakes against HOST:PORT.");
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("tls-handshake: %s\n", error->message);
      return 2;
    }
  if (argc != 2 || cert == NULL || key == NULL || ca == NULL || n < 1 || warmup < 0)
    {
      g_printerr ("usage: tls-handshake --cert FILE --key FILE --ca FILE [-n N] HOST:PORT\n");
      return 2;
    }
  if (modes == NULL)
    modes = g_strdup ("both");
  if (!g_str_equal (modes, "full") && !g_str_equal (modes, "resumed") && !g_str_equal (modes, "both"))
    {
      g_printerr ("tls-handshake: --mode must be full, resumed or both\n");
      return 2;
    }
  if (!bench_resolve (argv[1], &client.addr, &error) ||
      (plain != NULL && !bench_resolve (plain, &client.plain_addr, &error)))
    {
      g_printerr ("tls-handshake: %s\n", error->message);
      return 2;
    }

  gnutls_global_init ();
  gnutls_certificate_allocate_credentials (&client.creds);
  ret = gnutls_certificate_set_x509_trust_file (client.creds, ca, GNUTLS_X509_FMT_PEM);
  if (ret <= 0)
    {
      g_printerr ("tls-handshake: %s: %s\n", ca, ret < 0 ? gnutls_strerror (ret) : "no certificate");
      return 2;
    }
  ret = gnutls_certificate_set_x509_key_file (client.creds, cert, key, GNUTLS_X509_FMT_PEM);
  if (ret < 0)
    {
      g_printerr ("tls-handshake: %s, %s: %s\n", cert, key, gnutls_strerror (ret));
      return 2;
    }
  client.priority = priority ? priority : "NORMAL";
  client.sni = sni;
  client.spiffe_id = spiffe_id;
  client.server_pid = server_pid;
  client.reuse_ticket = reuse_ticket;
  client.verbose = verbose;

  if (client.plain_addr != NULL)
    bench_mode (&client, "plain", n, warmup, &results[n_results++]);
  if (!g_str_equal (modes, "resumed"))
    bench_mode (&client, "full", n, warmup, &results[n_results++]);
  if (!g_str_equal (modes, "full"))
    bench_mode (&client, "resumed", n, warmup, &results[n_results++]);

  g_print ("%-8s %6s %13s %10s %10s %10s %10s %10s %10s\n", "mode", "conns", "resumed",
           "hs p50 us", "hs p99 us", "conn p50", "conn p99", "client CPU", "server CPU");
  bench_print (results, n_results, FALSE);
  bench_print (results, n_results, TRUE);

  for (guint i = 0; i < n_results; i++)
    {
      bad += results[i].failed;
      if (g_str_equal (results[i].mode, "resumed") && results[i].resumed != results[i].n)
        {
          g_printerr ("tls-handshake: only %u of %u connections were resumed\n",
                      results[i].resumed, results[i].n);
          bad++;
        }
      g_free (results[i].desc);
      g_free (results[i].hs_us);
      g_free (results[i].total_us);
    }
  freeaddrinfo (client.addr);
  if (client.plain_addr != NULL)
    freeaddrinfo (client.plain_addr);
  gnutls_certificate_free_credentials (client.creds);
  gnutls_global_deinit ();
  return bad ? 1 : 0;
}
