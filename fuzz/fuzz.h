/* fuzz/fuzz.h: what every libFuzzer target here shares.
 *
 * Owns: the entry point's prototype, FUZZ_CHECK (a property that must hold
 * for any input: a trap, which both libFuzzer and the corpus replay report
 * as a crash with the input that caused it), the check that an error
 * message is short and printable, and a NUL-terminated copy of the input.
 */
#ifndef MIKA_FUZZ_H
#define MIKA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* A refusal explains itself: a message of 1..max_len-1 printable ASCII
 * bytes, as it may go back to a client or into a log line. */
static inline void fuzz_check_message(const struct mk_errbuf *eb, size_t max_len)
{
    size_t n = strnlen(eb->msg, sizeof(eb->msg));
    FUZZ_CHECK(n > 0 && n < max_len);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(eb->msg[i] >= 0x20 && eb->msg[i] < 0x7f);
    }
}

/* The input as a C string in an exact-size heap block (size + 1), so that
 * reading past its end is caught; the caller frees it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    if (size) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

/* A refused DSN's message never quotes its password: for an input of the
 * shape "scheme://[user]:PASSWORD@..." whose password holds a '$' (a byte no
 * message of ours contains), msg must not contain the password. */
static inline void fuzz_check_password_hidden(const char *dsn, const char *msg)
{
    const char *colon = strlen(dsn) > 8 ? strchr(dsn + 8, ':') : NULL;
    const char *at = colon ? strrchr(colon, '@') : NULL;
    if (at && memchr(colon, '$', (size_t)(at - colon))) {
        char *pw = strndup(colon + 1, (size_t)(at - colon - 1));
        FUZZ_CHECK(pw != NULL);
        FUZZ_CHECK(strstr(msg, pw) == NULL);
        free(pw);
    }
}

#endif
