/* proto/bencode.h: writing bencoded answers into a caller's fixed buffer.
 *
 * A writer never allocates: it appends into mem[0..cap) and sets a sticky
 * overflow flag instead of writing past the end, so a whole answer is built
 * without checking each call and checked once with bencode_ok(). Dictionary
 * keys must be put in sorted order (BEP 3); the writer does not sort.
 */
#ifndef MIKA_PROTO_BENCODE_H
#define MIKA_PROTO_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bencode {
    uint8_t *p;
    size_t len;
    size_t cap;
    bool overflow;
};

void bencode_init(struct bencode *b, uint8_t *mem, size_t cap);
void bencode_int(struct bencode *b, int64_t v);            /* i42e */
void bencode_str(struct bencode *b, const void *s, size_t len); /* 4:spam */
void bencode_cstr(struct bencode *b, const char *s);
void bencode_dict(struct bencode *b);                       /* d */
void bencode_list(struct bencode *b);                       /* l */
void bencode_end(struct bencode *b);                        /* e */
/* Reserves a string of len bytes ("len:" written) and returns where its bytes
 * go, or NULL on overflow; lets callers write peers in place. */
uint8_t *bencode_str_reserve(struct bencode *b, size_t len);
static inline bool bencode_ok(const struct bencode *b) { return !b->overflow; }

/* A whole failure answer: d14:failure reason<len>:<msg>e. */
void bencode_failure(struct bencode *b, const char *msg);

#endif /* MIKA_PROTO_BENCODE_H */
