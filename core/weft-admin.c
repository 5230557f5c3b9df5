/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-admin-private.h"
#include "weft-config-private.h"
#include "weft-http-parser-private.h"
#include "weft-log-private.h"
#include "weft-request-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WEFT_ADMIN_MAX_REQUEST 16384
#define WEFT_ADMIN_IDLE_MS 30000
/* out of fds, the admin socket is not watched for this long */
#define WEFT_ADMIN_ACCEPT_PAUSE_MS 100

struct _WeftAdmin {
  WeftServer *server;
  int         fd;
  guint       accept_id;
  guint       resume_id;   /* out of fds: the timer that watches the socket again */
  gint64      logged_us;   /* the last out-of-fds line */
  GList      *conns;
};

typedef struct {
  WeftAdmin *admin;
  int        fd;
  guint      io_id;
  guint      idle_id;
  GString   *in;
  GString   *out;
  gsize      out_sent;
  guint64    skip_body;    /* request body bytes still to discard */
  gboolean   close_after;
  gboolean   drain_after;
} WeftAdminConn;

int
weft_listen_socket (const char *address, gboolean reuseport, GError **error)
{
  g_autofree char *host = NULL;
  struct sockaddr_storage ss = { 0 };
  struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
  socklen_t len;
  guint16 port = 0;
  int one = 1;
  int fd;

  if (!weft_config_split_host_port (address, &host, &port))
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_BIND, _("bad address '%s'"), address);
      return -1;
    }
  if (inet_pton (AF_INET, host, &sin->sin_addr) == 1)
    {
      sin->sin_family = AF_INET;
      sin->sin_port = htons (port);
      len = sizeof *sin;
    }
  else if (inet_pton (AF_INET6, host, &sin6->sin6_addr) == 1)
    {
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons (port);
      len = sizeof *sin6;
    }
  else
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_BIND, _("'%s' is not an IP address"), host);
      return -1;
    }
  fd = socket (ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_BIND, _("cannot create a socket for %s: %s"),
                   address, g_strerror (errno));
      return -1;
    }
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* set on the raw fd: g_socket_bind() would clear SO_REUSEPORT again */
  if (reuseport)
    setsockopt (fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind (fd, (struct sockaddr *) &ss, len) < 0 || listen (fd, 4096) < 0)
    {
      int err = errno;
      close (fd);
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_BIND, _("cannot listen on %s: %s"), address,
                   g_strerror (err));
      return -1;
    }
  return fd;
}

static void
weft_admin_conn_free (WeftAdminConn *ac)
{
  ac->admin->conns = g_list_remove (ac->admin->conns, ac);
  if (ac->io_id != 0)
    g_source_remove (ac->io_id);
  if (ac->idle_id != 0)
    g_source_remove (ac->idle_id);
  close (ac->fd);
  g_string_free (ac->in, TRUE);
  g_string_free (ac->out, TRUE);
  g_free (ac);
}

static void
weft_admin_respond (WeftAdminConn *ac, guint status, const char *content_type,
                    const char *extra_headers, const char *body, gsize body_len)
{
  g_string_append_printf (ac->out,
                          "HTTP/1.1 %u %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                          "cache-control: no-store\r\n%s%s\r\n",
                          status, weft_http_status_phrase (status), content_type, body_len,
                          extra_headers ? extra_headers : "",
                          ac->close_after ? "connection: close\r\n" : "");
  g_string_append_len (ac->out, body, (gssize) body_len);
}

static void
weft_admin_text (WeftAdminConn *ac, guint status, const char *text, const char *extra)
{
  weft_admin_respond (ac, status, "text/plain; charset=utf-8", extra, text, strlen (text));
}

static void
weft_admin_route (WeftAdminConn *ac, const char *method, const char *target)
{
  static const char *const paths[] = { "/ready", "/live", "/metrics", "/config", "/drain", NULL };
  WeftServer *server = ac->admin->server;
  g_autofree char *path = g_strndup (target, strcspn (target, "?"));
  gboolean is_get = strcmp (method, "GET") == 0 || strcmp (method, "HEAD") == 0;
  g_autoptr(GString) body = NULL;

  if (!g_strv_contains (paths, path))
    {
      weft_admin_text (ac, 404, "not found\n", NULL);
      return;
    }
  if (strcmp (path, "/drain") == 0)
    {
      if (strcmp (method, "POST") != 0)
        {
          weft_admin_text (ac, 405, "method not allowed\n", "allow: POST\r\n");
          return;
        }
      weft_admin_text (ac, 202, "draining\n", NULL);
      ac->drain_after = TRUE;
      return;
    }
  if (!is_get)
    {
      weft_admin_text (ac, 405, "method not allowed\n", "allow: GET, HEAD\r\n");
      return;
    }
  if (strcmp (path, "/live") == 0)
    weft_admin_text (ac, 200, "live\n", NULL);
  else if (strcmp (path, "/ready") == 0)
    {
      gboolean ready = weft_server_is_ready (server);
      weft_admin_text (ac, ready ? 200 : 503, ready ? "ready\n" : "not ready\n", NULL);
    }
  else if (strcmp (path, "/metrics") == 0)
    {
      body = g_string_new (NULL);
      weft_server_render_metrics (server, body);
      weft_admin_respond (ac, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, body->str,
                          body->len);
    }
  else
    {
      body = g_string_new (NULL);
      weft_server_render_config (server, body);
      weft_admin_respond (ac, 200, "application/json", NULL, body->str, body->len);
    }
  /* HEAD: the head only */
  if (strcmp (method, "HEAD") == 0 && body != NULL)
    g_string_truncate (ac->out, ac->out->len - body->len);
}

static gboolean weft_admin_conn_io (gint fd, GIOCondition cond, gpointer data);

static void
weft_admin_watch (WeftAdminConn *ac, GIOCondition cond)
{
  if (ac->io_id != 0)
    g_source_remove (ac->io_id);
  ac->io_id = g_unix_fd_add (ac->fd, cond, weft_admin_conn_io, ac);
}

/* handles every complete request in the input; FALSE to close */
static gboolean
weft_admin_process (WeftAdminConn *ac)
{
  WeftHttpLimits limits;
  WeftHttpError err;

  weft_http_limits_init_default (&limits);
  while (ac->in->len > 0 && !ac->close_after)
    {
      g_autofree WeftHttpHead *head = g_new0 (WeftHttpHead, 1);
      WeftHttpParseStatus st;
      gsize take;

      if (ac->skip_body > 0)
        {
          take = (gsize) MIN ((guint64) ac->in->len, ac->skip_body);
          g_string_erase (ac->in, 0, (gssize) take);
          ac->skip_body -= take;
          continue;
        }
      st = weft_http_parse_request (ac->in->str, ac->in->len, &limits, head, &err);
      if (st == WEFT_HTTP_PARSE_INCOMPLETE)
        return ac->in->len < WEFT_ADMIN_MAX_REQUEST;
      if (st == WEFT_HTTP_PARSE_ERROR || head->body_kind == WEFT_HTTP_BODY_CHUNKED)
        {
          ac->close_after = TRUE;
          weft_admin_text (ac, st == WEFT_HTTP_PARSE_ERROR ? weft_http_error_status (err) : 411,
                           "bad request\n", NULL);
          g_string_truncate (ac->in, 0);
          return TRUE;
        }
      ac->close_after = !head->keep_alive;
      weft_admin_route (ac, head->method, head->target);
      ac->skip_body = head->body_kind == WEFT_HTTP_BODY_LENGTH ? head->content_length : 0;
      g_string_erase (ac->in, 0, (gssize) head->head_len);
    }
  return TRUE;
}

static gboolean
weft_admin_flush (WeftAdminConn *ac)
{
  while (ac->out_sent < ac->out->len)
    {
      gssize n = send (ac->fd, ac->out->str + ac->out_sent, ac->out->len - ac->out_sent,
                       MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN)
        return TRUE;
      if (n <= 0)
        return FALSE;
      ac->out_sent += (gsize) n;
    }
  g_string_truncate (ac->out, 0);
  ac->out_sent = 0;
  return TRUE;
}

static gboolean
weft_admin_idle_timeout (gpointer data)
{
  WeftAdminConn *ac = data;

  ac->idle_id = 0;
  weft_admin_conn_free (ac);
  return G_SOURCE_REMOVE;
}

static gboolean
weft_admin_conn_io (gint fd, GIOCondition cond, gpointer data)
{
  WeftAdminConn *ac = data;
  WeftServer *server = ac->admin->server;
  char buf[4096];
  gssize n;

  (void) cond;
  while ((n = recv (fd, buf, sizeof buf, 0)) > 0)
    g_string_append_len (ac->in, buf, n);
  if ((n == 0 || (n < 0 && errno != EAGAIN)) && ac->in->len == 0 && ac->out->len == 0)
    {
      ac->io_id = 0;
      weft_admin_conn_free (ac);
      return G_SOURCE_REMOVE;
    }
  if (!weft_admin_process (ac) || !weft_admin_flush (ac) || n == 0 ||
      (ac->close_after && ac->out->len == 0))
    {
      gboolean drain = ac->drain_after;
      ac->io_id = 0;
      weft_admin_conn_free (ac);
      if (drain)
        weft_server_drain (server);
      return G_SOURCE_REMOVE;
    }
  if (ac->drain_after && ac->out->len == 0)
    {
      ac->drain_after = FALSE;
      weft_server_drain (server);
    }
  if (ac->idle_id != 0)
    g_source_remove (ac->idle_id);
  ac->idle_id = g_timeout_add (WEFT_ADMIN_IDLE_MS, weft_admin_idle_timeout, ac);
  /* G_IO_OUT only while output waits */
  weft_admin_watch (ac, ac->out->len > 0 ? G_IO_IN | G_IO_OUT : G_IO_IN);
  return G_SOURCE_REMOVE;
}

static gboolean weft_admin_accept (gint fd, GIOCondition cond, gpointer data);

static gboolean
weft_admin_resume (gpointer data)
{
  WeftAdmin *admin = data;

  admin->resume_id = 0;
  admin->accept_id = g_unix_fd_add (admin->fd, G_IO_IN, weft_admin_accept, admin);
  return G_SOURCE_REMOVE;
}

/* out of fds: the socket stays readable, so watching it again at once would
 * spin the main thread; it rests, and its clients wait in the backlog */
static gboolean
weft_admin_pause (WeftAdmin *admin, int err)
{
  gint64 now = g_get_monotonic_time ();

  if (now - admin->logged_us >= G_USEC_PER_SEC)
    {
      weft_log (WEFT_LOG_WARNING, "admin", "accept: %s: pausing accepts for %d ms",
                g_strerror (err), WEFT_ADMIN_ACCEPT_PAUSE_MS);
      admin->logged_us = now;
    }
  admin->accept_id = 0;
  admin->resume_id = g_timeout_add (WEFT_ADMIN_ACCEPT_PAUSE_MS, weft_admin_resume, admin);
  return G_SOURCE_REMOVE;
}

static gboolean
weft_admin_accept (gint fd, GIOCondition cond, gpointer data)
{
  WeftAdmin *admin = data;
  int cfd;

  (void) cond;
  while ((cfd = accept4 (fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
    {
      WeftAdminConn *ac = g_new0 (WeftAdminConn, 1);
      ac->admin = admin;
      ac->fd = cfd;
      ac->in = g_string_new (NULL);
      ac->out = g_string_new (NULL);
      admin->conns = g_list_prepend (admin->conns, ac);
      ac->idle_id = g_timeout_add (WEFT_ADMIN_IDLE_MS, weft_admin_idle_timeout, ac);
      weft_admin_watch (ac, G_IO_IN);
    }
  if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
    return weft_admin_pause (admin, errno);
  return G_SOURCE_CONTINUE;
}

WeftAdmin *
weft_admin_new (WeftServer *server, const char *address, GError **error)
{
  WeftAdmin *admin;
  int fd = weft_listen_socket (address, FALSE, error);

  if (fd < 0)
    {
      g_prefix_error (error, _("admin: "));
      return NULL;
    }
  admin = g_new0 (WeftAdmin, 1);
  admin->server = server;
  admin->fd = fd;
  admin->accept_id = g_unix_fd_add (fd, G_IO_IN, weft_admin_accept, admin);
  return admin;
}

void
weft_admin_free (WeftAdmin *admin)
{
  if (admin == NULL)
    return;
  while (admin->conns != NULL)
    weft_admin_conn_free (admin->conns->data);
  if (admin->accept_id != 0)
    g_source_remove (admin->accept_id);
  if (admin->resume_id != 0)
    g_source_remove (admin->resume_id);
  close (admin->fd);
  g_free (admin);
}
