/* util/boolword.h: the words a person may write for a boolean.
 *
 * The config file, its environment overrides and `mika client` options all
 * take true/false, yes/no, on/off and 1/0, in any case: one list, so that
 * what one accepts the others accept too.
 */
#ifndef MIKA_UTIL_BOOLWORD_H
#define MIKA_UTIL_BOOLWORD_H

#include <stdbool.h>

/* 0 and *out set when v is one of the words; -1 (and *out untouched) if not. */
int mk_boolword_parse(const char *v, bool *out);

#endif
