/* proto/bencode.c: writing bencoded values into a caller's fixed buffer.
 *
 * Owns: the byte layout of integers, strings, lists and dicts (BEP 3).
 * Not here: key order (callers put dict keys sorted), choosing what to write.
 * Invariants: never writes at or past mem + cap; each put is all or nothing,
 * so after an overflow len still marks the end of the last complete value;
 * once overflow is set every later put is a no-op.
 */
#include "proto/bencode.h"

#include <string.h>

void bencode_init(struct bencode *b, uint8_t *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = mem ? cap : 0;
    b->overflow = false;
}

/* Room for n more bytes, or set the sticky overflow flag. */
static bool bencode_room(struct bencode *b, size_t n)
{
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = true;
        return false;
    }
    return true;
}

/* Decimal digits of v, written backwards ending at end; returns the start. */
static char *bencode_digits(char *end, uint64_t v)
{
    char *s = end;
    do {
        *--s = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return s;
}

void bencode_int(struct bencode *b, int64_t v)
{
    char tmp[24]; /* 'i' '-' 19 digits 'e' */
    char *end = tmp + sizeof(tmp);
    *--end = 'e';
    /* Negate in unsigned arithmetic: -INT64_MIN does not fit an int64_t. */
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *s = bencode_digits(end, mag);
    if (v < 0) {
        *--s = '-';
    }
    *--s = 'i';
    size_t n = (size_t)(tmp + sizeof(tmp) - s);
    if (bencode_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

uint8_t *bencode_str_reserve(struct bencode *b, size_t len)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    *--end = ':';
    char *s = bencode_digits(end, len);
    size_t head = (size_t)(tmp + sizeof(tmp) - s);
    if (len > SIZE_MAX - head || !bencode_room(b, head + len)) {
        b->overflow = true;
        return NULL;
    }
    memcpy(b->p + b->len, s, head);
    uint8_t *data = b->p + b->len + head;
    b->len += head + len;
    return data;
}

void bencode_str(struct bencode *b, const void *s, size_t len)
{
    uint8_t *dst = bencode_str_reserve(b, len);
    if (dst && len) {
        memcpy(dst, s, len);
    }
}

void bencode_cstr(struct bencode *b, const char *s)
{
    bencode_str(b, s, strlen(s));
}

static void bencode_byte(struct bencode *b, uint8_t c)
{
    if (bencode_room(b, 1)) {
        b->p[b->len++] = c;
    }
}

void bencode_dict(struct bencode *b)
{
    bencode_byte(b, 'd');
}

void bencode_list(struct bencode *b)
{
    bencode_byte(b, 'l');
}

void bencode_end(struct bencode *b)
{
    bencode_byte(b, 'e');
}

/* Replaces whatever b held: a failure is the whole answer, even when it
 * interrupts an answer that was half built or overflowed. */
void bencode_failure(struct bencode *b, const char *msg)
{
    b->len = 0;
    b->overflow = false;
    bencode_dict(b);
    bencode_cstr(b, "failure reason");
    bencode_cstr(b, msg ? msg : "");
    bencode_end(b);
}
