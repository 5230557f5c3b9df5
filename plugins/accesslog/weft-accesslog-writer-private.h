/* weft-accesslog-writer-private.h: the thread that writes access log lines
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <weft/plugin.h>

G_BEGIN_DECLS

/* the smallest ring a worker gets: two lines of the longest kind */
#define WEFT_ACCESSLOG_MIN_RING (16 * 1024)

/* how long closing a writer waits for a destination that takes nothing */
#define WEFT_ACCESSLOG_CLOSE_TIMEOUT_MS 2000

/**
 * WeftAccessLogWriter:
 *
 * One destination (stdout, stderr or a file) and the thread that writes
 * to it. Each worker has a ring of its own that only it appends to, so
 * appending takes no lock; the thread takes what the rings hold and
 * write()s it in batches, and never holds anything a worker waits for. A
 * line that does not fit in its worker's ring is refused (the caller
 * counts it as dropped); a line that was taken is written before the
 * thread ends, unless the destination takes nothing for
 * %WEFT_ACCESSLOG_CLOSE_TIMEOUT_MS, in which case it counts as dropped.
 *
 * Writers are shared by every configuration generation that logs to the
 * same destination, so a reload neither reopens the file nor loses or
 * splits a line. The control side (new, ref, unref, lookup) runs on the
 * main thread.
 */
typedef struct _WeftAccessLogWriter WeftAccessLogWriter;

/**
 * WeftAccessLogCounters:
 * @written: lines the thread wrote
 * @dropped: lines lost when a writer closed before it could write them
 * @write_errors: failed writes and reopens
 * @reopens: successful reopens (SIGUSR1)
 *
 * The series the thread counts into; each may be NULL.
 */
typedef struct {
  WeftMetricSeries *written;
  WeftMetricSeries *dropped;
  WeftMetricSeries *write_errors;
  WeftMetricSeries *reopens;
} WeftAccessLogCounters;

/* "-" and "/dev/stdout" are stdout, "/dev/stderr" is stderr, anything
 * else is a file; the key a writer is shared under ("stdout", "stderr" or
 * the absolute path) */
char                *weft_accesslog_destination_key (const char *path);

/* opens the destination @path as a writer would, so a config can report a
 * problem at load; returns the fd or -1 with @error set */
int                  weft_accesslog_destination_open (const char *path, GError **error);

/* takes @fd (closed on failure too) and starts the thread; @buffer bytes
 * are split between the workers' rings, each rounded down to a power of
 * two and at least %WEFT_ACCESSLOG_MIN_RING; @key is what the writer is
 * found under with weft_accesslog_writer_lookup() (NULL = not shared) */
WeftAccessLogWriter *weft_accesslog_writer_new    (const char *key, const char *path, int fd,
                                                   guint n_workers, gsize buffer,
                                                   const WeftAccessLogCounters *counters,
                                                   GError **error);
WeftAccessLogWriter *weft_accesslog_writer_lookup (const char *key);
WeftAccessLogWriter *weft_accesslog_writer_ref    (WeftAccessLogWriter *writer);
/* the last unref writes what is left, stops the thread and closes the fd */
void                 weft_accesslog_writer_unref  (WeftAccessLogWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (WeftAccessLogWriter, weft_accesslog_writer_unref)

/* the buffer it was made with, and the bytes each worker's ring holds */
gsize                weft_accesslog_writer_get_buffer (WeftAccessLogWriter *writer);
gsize                weft_accesslog_writer_get_ring_size (WeftAccessLogWriter *writer);
guint                weft_accesslog_writer_get_n_workers (WeftAccessLogWriter *writer);

/* worker @worker's append; FALSE when its ring has no room (the line is
 * dropped). Only that worker's thread calls it with that index. */
gboolean             weft_accesslog_writer_push   (WeftAccessLogWriter *writer, guint worker,
                                                   const char *line, gsize len);

/* asks the thread to reopen the path (a file rotated by logrotate); safe
 * from any thread and from a signal source */
void                 weft_accesslog_writer_reopen (WeftAccessLogWriter *writer);

G_END_DECLS
