/* idle-conns: opens many idle keep-alive HTTP/1.1 connections to a proxy
 * from one process, for bench/idle.sh (issue 7, target 4).
 *
 * Each connection sends one `GET` and reads its whole response, then stays
 * open and silent. The tool then prints one line and waits for commands on
 * stdin, one per line:
 *
 *   check   counts the idle connections that are still open (a peek that
 *           would block), closed by the peer (EOF or an error), or that got
 *           unexpected bytes; prints "CHECK open=N closed=N data=N"
 *   verify  sends one more request on every open connection and reads the
 *           answers; prints "VERIFY ok=N failed=N ms=N"
 *   quit    (or EOF) closes every connection with a reset and exits
 *
 * Usage: idle-conns [-n 10000] [-c 256] [-s 1] [-t 60] [-p /] HOST PORT
 *   -n  connections to open
 *   -c  connections in flight at once (connecting or waiting for an answer),
 *       so the listener's accept queue never overflows
 *   -s  spread the connections over this many source addresses, HOST's
 *       network + 1, + 2, ... (127.0.0.1, 127.0.0.2, ... for 127.0.0.1)
 *   -t  seconds a phase may take before the connections not done count as
 *       failed
 *   -p  the request path
 *
 * It prints "READY open=N failed=N ms=N" when the opening phase is over.
 * Every socket gets SO_LINGER 0, so closing it (or the tool's exit, or a
 * kill) resets the connection: no TIME_WAIT is left behind between runs.
 * Plain C and Linux epoll, no dependencies; not part of weft. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { BENCH_ST_CONNECTING, BENCH_ST_READING, BENCH_ST_IDLE, BENCH_ST_DEAD };

typedef struct
{
  int fd;
  int state;
  size_t got;     /* bytes of the current response read so far */
  char head[1024];
} BenchConn;

static BenchConn *bench_conns;
static int bench_n = 10000;
static int bench_inflight_max = 256;
static int bench_sources = 1;
static int bench_timeout_s = 60;
static const char *bench_path = "/";
static struct sockaddr_in bench_dst;
static int bench_ep = -1;
static char bench_req[512];
static size_t bench_req_len;
static char bench_first_error[256];

static long long
bench_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
bench_note_error (const char *what, int err)
{
  if (bench_first_error[0] == '\0')
    snprintf (bench_first_error, sizeof bench_first_error, "%s: %s", what, strerror (err));
}

static void
bench_kill (BenchConn *c, const char *what, int err)
{
  bench_note_error (what, err);
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
  c->state = BENCH_ST_DEAD;
}

/* the response is done when its head ended and Content-Length bytes of
 * body followed, or a chunked body's last chunk arrived */
static int
bench_response_done (BenchConn *c, int *status)
{
  char *end;
  size_t head_len;
  const char *p;

  c->head[c->got] = '\0';
  end = strstr (c->head, "\r\n\r\n");
  if (end == NULL)
    return 0;
  head_len = (size_t) (end - c->head) + 4;
  *status = (c->got > 12 && strncmp (c->head, "HTTP/1.", 7) == 0) ? atoi (c->head + 9) : 0;
  p = strcasestr (c->head, "\r\ncontent-length:");
  if (p != NULL && p < end)
    return c->got >= head_len + strtoul (p + 17, NULL, 10);
  p = strcasestr (c->head, "\r\ntransfer-encoding:");
  if (p != NULL && p < end)
    return c->got >= head_len + 5 && memcmp (c->head + c->got - 5, "0\r\n\r\n", 5) == 0;
  return 1;  /* no body (a 204 or 304) */
}

static void
bench_send_request (BenchConn *c)
{
  ssize_t r = send (c->fd, bench_req, bench_req_len, MSG_NOSIGNAL);

  if (r != (ssize_t) bench_req_len)
    {
      bench_kill (c, "send", r < 0 ? errno : EIO);
      return;
    }
  c->state = BENCH_ST_READING;
  c->got = 0;
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
  if (epoll_ctl (bench_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
    bench_kill (c, "epoll_ctl", errno);
}

/* returns 1 when the connection left the in-flight set (idle or dead) */
static int
bench_on_event (BenchConn *c, uint32_t events)
{
  if (c->state == BENCH_ST_CONNECTING)
    {
      int err = 0;
      socklen_t len = sizeof err;

      getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (events & (EPOLLERR | EPOLLHUP)))
        {
          bench_kill (c, "connect", err ? err : ECONNRESET);
          return 1;
        }
      bench_send_request (c);
      return c->state == BENCH_ST_DEAD;
    }
  for (;;)
    {
      ssize_t r = recv (c->fd, c->head + c->got, sizeof c->head - 1 - c->got, 0);
      int status = 0;

      if (r < 0 && errno == EAGAIN)
        return 0;
      if (r <= 0)
        {
          bench_kill (c, r == 0 ? "response: connection closed" : "recv", r == 0 ? ECONNRESET : errno);
          return 1;
        }
      c->got += (size_t) r;
      if (bench_response_done (c, &status))
        {
          if (status != 200)
            {
              bench_kill (c, "response status not 200", EPROTO);
              return 1;
            }
          /* idle: out of epoll, so it costs this process nothing */
          epoll_ctl (bench_ep, EPOLL_CTL_DEL, c->fd, NULL);
          c->state = BENCH_ST_IDLE;
          return 1;
        }
      if (c->got >= sizeof c->head - 1)
        {
          bench_kill (c, "response larger than the buffer", EMSGSIZE);
          return 1;
        }
    }
}

static int
bench_start_connect (BenchConn *c, int i)
{
  struct linger lg = { .l_onoff = 1, .l_linger = 0 };
  int one = 1;

  c->fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    {
      bench_kill (c, "socket", errno);
      return 0;
    }
  setsockopt (c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bench_sources > 1)
    {
      struct sockaddr_in src = { .sin_family = AF_INET };
      uint32_t base = ntohl (bench_dst.sin_addr.s_addr) & 0xffffff00u;

      src.sin_addr.s_addr = htonl (base + 1 + (uint32_t) (i % bench_sources));
      setsockopt (c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (bind (c->fd, (struct sockaddr *) &src, sizeof src) < 0)
        {
          bench_kill (c, "bind", errno);
          return 0;
        }
    }
  c->state = BENCH_ST_CONNECTING;
  c->got = 0;
  if (connect (c->fd, (struct sockaddr *) &bench_dst, sizeof bench_dst) < 0 && errno != EINPROGRESS)
    {
      bench_kill (c, "connect", errno);
      return 0;
    }
  struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
  if (epoll_ctl (bench_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
    {
      bench_kill (c, "epoll_ctl", errno);
      return 0;
    }
  return 1;
}

/* runs events until no connection is in flight or the deadline passes;
 * `next` feeds new connections while there is room (NULL: none) */
static void
bench_pump (int *inflight, int (*next) (void), long long deadline)
{
  struct epoll_event evs[256];

  for (;;)
    {
      while (next != NULL && *inflight < bench_inflight_max && next ())
        (*inflight)++;
      if (*inflight == 0 || bench_now_ms () > deadline)
        return;
      int n = epoll_wait (bench_ep, evs, 256, 100);
      for (int i = 0; i < n; i++)
        if (bench_on_event (evs[i].data.ptr, evs[i].events))
          (*inflight)--;
    }
}

static int bench_next_index;

/* starts the next connection; 0 when all have been started */
static int
bench_next_connect (void)
{
  while (bench_next_index < bench_n)
    {
      int i = bench_next_index++;
      if (bench_start_connect (&bench_conns[i], i))
        return 1;
    }
  return 0;
}

/* what did not finish before the deadline counts as failed */
static void
bench_fail_unfinished (void)
{
  for (int i = 0; i < bench_n; i++)
    if (bench_conns[i].state == BENCH_ST_CONNECTING || bench_conns[i].state == BENCH_ST_READING)
      bench_kill (&bench_conns[i], "timed out", ETIMEDOUT);
}

static int
bench_count (int state)
{
  int n = 0;

  for (int i = 0; i < bench_n; i++)
    n += bench_conns[i].state == state;
  return n;
}

static void
bench_open_all (void)
{
  long long t0 = bench_now_ms ();
  int inflight = 0;

  bench_pump (&inflight, bench_next_connect, t0 + bench_timeout_s * 1000LL);
  bench_fail_unfinished ();
  printf ("READY open=%d failed=%d ms=%lld\n", bench_count (BENCH_ST_IDLE),
          bench_count (BENCH_ST_DEAD), bench_now_ms () - t0);
  if (bench_first_error[0])
    fprintf (stderr, "idle-conns: first error: %s\n", bench_first_error);
  fflush (stdout);
}

static void
bench_check (void)
{
  int open = 0, closed = 0, data = 0;

  for (int i = 0; i < bench_n; i++)
    {
      BenchConn *c = &bench_conns[i];
      char b;

      if (c->state != BENCH_ST_IDLE)
        continue;
      ssize_t r = recv (c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        open++;
      else if (r > 0)
        data++;
      else
        {
          closed++;
          bench_kill (c, "closed while idle", r == 0 ? ECONNRESET : errno);
        }
    }
  printf ("CHECK open=%d closed=%d data=%d\n", open, closed, data);
  fflush (stdout);
}

static int bench_verify_index;

/* sends the next request on an idle connection; 0 when none is left */
static int
bench_next_verify (void)
{
  while (bench_verify_index < bench_n)
    {
      BenchConn *c = &bench_conns[bench_verify_index++];
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

      if (c->state != BENCH_ST_IDLE)
        continue;
      if (epoll_ctl (bench_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        {
          bench_kill (c, "epoll_ctl", errno);
          continue;
        }
      bench_send_request (c);
      if (c->state == BENCH_ST_READING)
        return 1;
    }
  return 0;
}

static void
bench_verify (void)
{
  long long t0 = bench_now_ms ();
  int before = bench_count (BENCH_ST_IDLE), inflight = 0;

  bench_verify_index = 0;
  bench_pump (&inflight, bench_next_verify, t0 + bench_timeout_s * 1000LL);
  bench_fail_unfinished ();
  int ok = bench_count (BENCH_ST_IDLE);
  printf ("VERIFY ok=%d failed=%d ms=%lld\n", ok, before - ok, bench_now_ms () - t0);
  fflush (stdout);
}

static void
bench_usage (void)
{
  fprintf (stderr, "usage: idle-conns [-n 10000] [-c 256] [-s 1] [-t 60] [-p /] HOST PORT\n");
  exit (2);
}

static void
bench_parse_args (int argc, char **argv)
{
  int opt;

  while ((opt = getopt (argc, argv, "n:c:s:t:p:")) != -1)
    switch (opt)
      {
      case 'n': bench_n = atoi (optarg); break;
      case 'c': bench_inflight_max = atoi (optarg); break;
      case 's': bench_sources = atoi (optarg); break;
      case 't': bench_timeout_s = atoi (optarg); break;
      case 'p': bench_path = optarg; break;
      default: bench_usage ();
      }
  if (argc - optind != 2 || bench_n < 1 || bench_inflight_max < 1 || bench_sources < 1 ||
      bench_sources > 250 || bench_timeout_s < 1)
    bench_usage ();
  bench_dst.sin_family = AF_INET;
  bench_dst.sin_port = htons ((uint16_t) atoi (argv[optind + 1]));
  if (inet_pton (AF_INET, argv[optind], &bench_dst.sin_addr) != 1)
    bench_usage ();
  bench_req_len = (size_t) snprintf (bench_req, sizeof bench_req,
                                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: idle-conns\r\n\r\n",
                                     bench_path, argv[optind], argv[optind + 1]);
}

/* the fds this needs: one per connection and a few more */
static void
bench_raise_nofile (void)
{
  struct rlimit rl;
  rlim_t want = (rlim_t) bench_n + 64;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
    {
      rl.rlim_cur = want;
      if (rl.rlim_max < want)
        rl.rlim_max = want;
      if (setrlimit (RLIMIT_NOFILE, &rl) < 0)
        fprintf (stderr, "idle-conns: cannot raise RLIMIT_NOFILE to %lu: %s\n",
                 (unsigned long) want, strerror (errno));
    }
}

int
main (int argc, char **argv)
{
  char line[64];

  bench_parse_args (argc, argv);
  bench_raise_nofile ();
  bench_conns = calloc ((size_t) bench_n, sizeof *bench_conns);
  bench_ep = epoll_create1 (EPOLL_CLOEXEC);
  if (bench_conns == NULL || bench_ep < 0)
    {
      perror ("idle-conns");
      return 1;
    }
  for (int i = 0; i < bench_n; i++)
    bench_conns[i].fd = -1;
  bench_open_all ();
  while (fgets (line, sizeof line, stdin) != NULL)
    {
      if (strncmp (line, "check", 5) == 0)
        bench_check ();
      else if (strncmp (line, "verify", 6) == 0)
        bench_verify ();
      else if (strncmp (line, "quit", 4) == 0)
        break;
    }
  for (int i = 0; i < bench_n; i++)
    if (bench_conns[i].fd >= 0)
      close (bench_conns[i].fd);
  free (bench_conns);
  return 0;
}
