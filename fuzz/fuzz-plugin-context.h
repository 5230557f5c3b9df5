/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stand-in for the plugin context of a generation, for the fuzz targets
 * that compile plugin sources (fuzz-plugin-context.c).
 */
#pragma once

#include <sys/socket.h>

#include "weft-config-private.h"

G_BEGIN_DECLS

/* knows @config's upstreams and node fields; @config must outlive it */
WeftPluginContext *weft_fuzz_context_new  (const WeftConfig *config);
void               weft_fuzz_context_free (WeftPluginContext *ctx);

/* aborts (a crash libFuzzer reports) when @cond does not hold */
#define WEFT_FUZZ_CHECK(cond) \
  do { if (!(cond)) __builtin_trap (); } while (0)

G_END_DECLS
