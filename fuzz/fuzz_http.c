/* fuzz/fuzz_http.c: http_parse_request fed as a socket would feed it.
 *
 * Owns: driving the parser over a stream of pipelined requests in chunks of
 * arbitrary size (derived from a hash of the input, so corpus files stay
 * plain HTTP), and the properties checked on every call:
 *   - the answer for the bytes received so far equals a one-shot parse of
 *     the same bytes with a fresh parser (splitting never changes results);
 *   - DONE views lie inside the head, the target is origin-form, the path
 *     is its prefix and the query follows '?'; ERROR carries a known status;
 *   - the resume offset never passes the bytes received.
 * Every call sees an exact-size heap copy, so reading past what has arrived
 * is caught. Limits come from a small table picked by the input length, so
 * the fuzzer meets tight and realistic bounds alike.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"

#include "fuzz.h"

static const struct http_limits fuzz_limits[] = {
    {.max_request_line = 1024, .max_head = 4096, .max_headers = 32},
    {.max_request_line = 64, .max_head = 256, .max_headers = 8},
    {.max_request_line = 24, .max_head = 64, .max_headers = 2},
    {.max_request_line = 8192, .max_head = 16384, .max_headers = 100},
};

struct fuzz_result {
    enum http_parse_result rc;
    int status;
    size_t head_len;
    size_t target[2], path[2], query[2], real_ip[2]; /* offset, length */
    int minor;
    bool keep_alive;
};

static void fuzz_view(const char *base, size_t head_len, struct mk_str v, size_t out[2])
{
    FUZZ_CHECK(v.p != NULL || v.len == 0);
    if (v.p == NULL) {
        out[0] = out[1] = 0;
        return;
    }
    FUZZ_CHECK(v.p >= base && (size_t)(v.p - base) <= head_len);
    FUZZ_CHECK(v.len <= head_len - (size_t)(v.p - base));
    out[0] = (size_t)(v.p - base);
    out[1] = v.len;
}

/* One call on an exact-size copy of stream[0..len). */
static struct fuzz_result fuzz_call(const uint8_t *stream, size_t len, struct http_parser *ps,
                                    const struct http_limits *lim)
{
    char *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    if (len) {
        memcpy(buf, stream, len);
    }
    struct http_request req;
    struct fuzz_result r;
    memset(&r, 0, sizeof(r));
    r.rc = http_parse_request(buf, len, ps, lim, MK_STR_LIT("X-Real-IP"), &req);
    switch (r.rc) {
    case HTTP_PARSE_AGAIN:
        FUZZ_CHECK(ps->scanned <= len);
        break;
    case HTTP_PARSE_ERROR:
        r.status = req.status;
        FUZZ_CHECK(r.status == 400 || r.status == 405 || r.status == 414 || r.status == 431 ||
                   r.status == 501 || r.status == 505);
        break;
    case HTTP_PARSE_DONE:
        r.head_len = req.head_len;
        FUZZ_CHECK(r.head_len >= 4 && r.head_len <= len && r.head_len <= lim->max_head);
        fuzz_view(buf, r.head_len, req.target, r.target);
        fuzz_view(buf, r.head_len, req.path, r.path);
        fuzz_view(buf, r.head_len, req.query, r.query);
        fuzz_view(buf, r.head_len, req.real_ip, r.real_ip);
        FUZZ_CHECK(req.target.len >= 1 && req.target.p[0] == '/');
        FUZZ_CHECK(req.path.p == req.target.p && req.path.len <= req.target.len);
        FUZZ_CHECK(memchr(req.path.p, '?', req.path.len) == NULL);
        if (req.path.len < req.target.len) {
            FUZZ_CHECK(req.query.p == req.path.p + req.path.len + 1);
            FUZZ_CHECK(req.query.p + req.query.len == req.target.p + req.target.len);
        } else {
            FUZZ_CHECK(req.query.len == 0);
        }
        FUZZ_CHECK(req.minor == 0 || req.minor == 1);
        r.minor = req.minor;
        r.keep_alive = req.keep_alive;
        break;
    }
    free(buf);
    return r;
}

static bool fuzz_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
    return a->rc == b->rc && a->status == b->status && a->head_len == b->head_len &&
           memcmp(a->target, b->target, sizeof(a->target)) == 0 &&
           memcmp(a->path, b->path, sizeof(a->path)) == 0 &&
           memcmp(a->query, b->query, sizeof(a->query)) == 0 &&
           memcmp(a->real_ip, b->real_ip, sizeof(a->real_ip)) == 0 && a->minor == b->minor &&
           a->keep_alive == b->keep_alive;
}

static uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < size; i++) {
        h = (h ^ data[i]) * 0x100000001b3u;
    }
    return h;
}

static size_t fuzz_next_chunk(uint64_t *rng)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    switch (*rng % 8) {
    case 0:
        return 1 + (size_t)(*rng >> 8) % 512;
    case 1:
    case 2:
        return 1;
    default:
        return 1 + (size_t)(*rng >> 8) % 16;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct http_limits *lim = &fuzz_limits[size % 4];
    uint64_t rng = fuzz_hash(data, size) | 1;
    struct http_parser ps;
    http_parser_reset(&ps);
    size_t at = 0;    /* where the current request starts */
    size_t avail = 0; /* bytes received so far */
    while (avail < size) {
        size_t chunk = fuzz_next_chunk(&rng);
        avail = chunk < size - avail ? avail + chunk : size;
        for (;;) {
            struct fuzz_result r = fuzz_call(data + at, avail - at, &ps, lim);
            struct http_parser fresh;
            http_parser_reset(&fresh);
            struct fuzz_result once = fuzz_call(data + at, avail - at, &fresh, lim);
            FUZZ_CHECK(fuzz_same(&r, &once));
            if (r.rc == HTTP_PARSE_ERROR) {
                return 0;
            }
            if (r.rc == HTTP_PARSE_AGAIN) {
                break;
            }
            /* DONE: the next pipelined request may already be here. */
            at += r.head_len;
            http_parser_reset(&ps);
            if (at == avail) {
                break;
            }
        }
    }
    return 0;
}
