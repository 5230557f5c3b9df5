/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-sd-notify-private.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

gboolean
weft_sd_notify (const char *state)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  struct sockaddr_un sun = { .sun_family = AF_UNIX };
  gsize len;
  socklen_t addr_len;
  int fd;
  gssize n;

  if (path == NULL || *path == '\0')
    return TRUE;
  len = strlen (path);
  /* a path, or an abstract name written with a leading '@' */
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof sun.sun_path)
    return FALSE;
  memcpy (sun.sun_path, path, len);
  if (path[0] == '@')
    sun.sun_path[0] = '\0';
  addr_len = (socklen_t) (G_STRUCT_OFFSET (struct sockaddr_un, sun_path) + len);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return FALSE;
  n = sendto (fd, state, strlen (state), MSG_NOSIGNAL, (struct sockaddr *) &sun, addr_len);
  close (fd);
  return n == (gssize) strlen (state);
}

gboolean
weft_sd_notify_reloading (void)
{
  struct timespec ts;
  char state[96];

  clock_gettime (CLOCK_MONOTONIC, &ts);
  g_snprintf (state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%" G_GUINT64_FORMAT,
              (guint64) ts.tv_sec * G_USEC_PER_SEC + (guint64) ts.tv_nsec / 1000);
  return weft_sd_notify (state);
}
