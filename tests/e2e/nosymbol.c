/* SPDX-License-Identifier: LGPL-2.1-or-later
 * nosymbol: a shared object without the entry symbol. */
int weft_nosymbol_something (void);
int weft_nosymbol_something (void) { return 1; }
