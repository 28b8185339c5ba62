/* util/text.h: copying a store's text into a fixed buffer.
 *
 * Every backend reads names, passkeys and reasons into fixed-size fields;
 * one rule for all of them: what does not fit is cut at a UTF-8 character
 * boundary, never inside a character, and the copy is NUL-terminated.
 */
#ifndef MIKA_UTIL_TEXT_H
#define MIKA_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Copies at most cap - 1 (cap >= 1) of the len bytes at p into out and
 * NUL-terminates; p may be NULL when len is 0. True if it had to cut. */
bool mk_copy_text(char *out, size_t cap, const void *p, size_t len);

#endif /* MIKA_UTIL_TEXT_H */
