/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <weft/plugin.h>

G_DEFINE_QUARK (weft-error-quark, weft_error)
