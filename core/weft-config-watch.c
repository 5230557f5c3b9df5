/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "weft-config-watch-private.h"
#include "weft-log-private.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <weft/plugin.h>

#define WEFT_WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | \
                         IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct _WeftConfigWatch {
  int          fd;
  guint        io_id;
  guint        timer_id;
  guint        debounce_ms;
  char        *dir;
  char        *file;       /* watching one file: its base name, else NULL */
  int          dir_wd;
  int          data_wd;    /* the resolved target of ..data, or of a symlinked file */
  int          parent_wd;  /* the directory's parent: the directory deleted and made again */
  char        *dir_name;   /* the directory's base name in its parent */
  char        *data_target;
  GSourceFunc  changed;
  gpointer     data;
};

static gboolean
weft_config_watch_fire (gpointer data)
{
  WeftConfigWatch *watch = data;

  watch->timer_id = 0;
  watch->changed (watch->data);
  return G_SOURCE_REMOVE;
}

/* also watch where ..data (or the symlinked file) points now: an editor
 * writing through the link changes the target, not the directory */
static void
weft_config_watch_follow (WeftConfigWatch *watch)
{
  g_autofree char *link = g_build_filename (watch->dir, watch->file ? watch->file : "..data",
                                            NULL);
  g_autofree char *target = realpath (link, NULL);

  if (g_strcmp0 (target, watch->data_target) == 0)
    return;
  if (watch->data_wd >= 0)
    inotify_rm_watch (watch->fd, watch->data_wd);
  watch->data_wd = -1;
  g_free (watch->data_target);
  watch->data_target = g_strdup (target);
  if (target == NULL || g_strcmp0 (target, link) == 0)
    return;
  watch->data_wd = inotify_add_watch (watch->fd, target, WEFT_WATCH_MASK);
}

/* the directory itself came (back) under its name: watch the new one. A
 * directory deleted and made again is a new inode the old watch never sees */
static gboolean
weft_config_watch_parent_event (WeftConfigWatch *watch, const struct inotify_event *ev)
{
  if (ev->len == 0 || strcmp (ev->name, watch->dir_name) != 0)
    return FALSE;
  if (ev->mask & (IN_CREATE | IN_MOVED_TO))
    watch->dir_wd = inotify_add_watch (watch->fd, watch->dir, WEFT_WATCH_MASK | IN_DONT_FOLLOW);
  return TRUE;
}

static gboolean
weft_config_watch_relevant (WeftConfigWatch *watch, const struct inotify_event *ev)
{
  if (ev->wd == watch->parent_wd)
    return weft_config_watch_parent_event (watch, ev);
  /* removing our own watch of the old target says so; that is no change */
  if (ev->mask & IN_IGNORED)
    return FALSE;
  if (ev->wd != watch->dir_wd)
    return TRUE;   /* the target of a link changed */
  if (ev->len == 0)
    return TRUE;
  /* a directory: its YAML files, and kubelet's ..data swaps */
  if (watch->file == NULL)
    return g_str_has_suffix (ev->name, ".yaml") || g_str_has_suffix (ev->name, ".yml") ||
           g_str_has_prefix (ev->name, "..");
  /* one file: its own name, or kubelet's ..data in its directory */
  return strcmp (ev->name, watch->file) == 0 || g_str_has_prefix (ev->name, "..data");
}

static gboolean
weft_config_watch_read (gint fd, GIOCondition cond, gpointer data)
{
  WeftConfigWatch *watch = data;
  char buf[8192] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  gboolean hit = FALSE;
  gssize n;

  (void) cond;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    for (char *p = buf; p < buf + n;)
      {
        const struct inotify_event *ev = (const struct inotify_event *) p;
        if (weft_config_watch_relevant (watch, ev))
          {
            hit = TRUE;
            weft_log (WEFT_LOG_DEBUG, "watch", "event 0x%x on %s", ev->mask,
                      ev->len > 0 ? ev->name : "(target)");
          }
        p += sizeof *ev + ev->len;
      }
  if (!hit)
    return G_SOURCE_CONTINUE;
  weft_config_watch_follow (watch);
  /* restart the quiet period: a burst is one reload */
  if (watch->timer_id != 0)
    g_source_remove (watch->timer_id);
  watch->timer_id = g_timeout_add (watch->debounce_ms, weft_config_watch_fire, watch);
  return G_SOURCE_CONTINUE;
}

/* a failure here only loses the recovery of a deleted directory */
static void
weft_config_watch_watch_parent (WeftConfigWatch *watch)
{
  g_autofree char *parent = g_path_get_dirname (watch->dir);

  watch->dir_name = g_path_get_basename (watch->dir);
  if (strcmp (parent, watch->dir) == 0)
    return;
  watch->parent_wd = inotify_add_watch (watch->fd, parent, IN_CREATE | IN_MOVED_TO | IN_DELETE |
                                        IN_MOVED_FROM | IN_ONLYDIR);
}

WeftConfigWatch *
weft_config_watch_new (const char *path, guint debounce_ms, GSourceFunc changed, gpointer data,
                       GError **error)
{
  g_autoptr(WeftConfigWatch) watch = g_new0 (WeftConfigWatch, 1);
  gboolean is_dir = g_file_test (path, G_FILE_TEST_IS_DIR);

  watch->fd = -1;
  watch->dir_wd = watch->data_wd = watch->parent_wd = -1;
  watch->debounce_ms = debounce_ms;
  watch->changed = changed;
  watch->data = data;
  watch->dir = is_dir ? g_strdup (path) : g_path_get_dirname (path);
  watch->file = is_dir ? NULL : g_path_get_basename (path);
  watch->fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (watch->fd < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, _("cannot watch %s: %s"), path,
                   g_strerror (errno));
      return NULL;
    }
  watch->dir_wd = inotify_add_watch (watch->fd, watch->dir, WEFT_WATCH_MASK | IN_DONT_FOLLOW);
  if (watch->dir_wd < 0)
    {
      g_set_error (error, WEFT_ERROR, WEFT_ERROR_IO, _("cannot watch %s: %s"), watch->dir,
                   g_strerror (errno));
      return NULL;
    }
  weft_config_watch_watch_parent (watch);
  weft_config_watch_follow (watch);
  watch->io_id = g_unix_fd_add (watch->fd, G_IO_IN, weft_config_watch_read, watch);
  return g_steal_pointer (&watch);
}

void
weft_config_watch_free (WeftConfigWatch *watch)
{
  if (watch == NULL)
    return;
  if (watch->io_id != 0)
    g_source_remove (watch->io_id);
  if (watch->timer_id != 0)
    g_source_remove (watch->timer_id);
  if (watch->fd >= 0)
    close (watch->fd);
  g_free (watch->dir);
  g_free (watch->file);
  g_free (watch->dir_name);
  g_free (watch->data_target);
  g_free (watch);
}
