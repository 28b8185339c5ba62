/* proto/metainfo.c: a strict bencode decoder and the .torrent walk on it.
 *
 * Owns: validating and skipping any bencoded value (bdec_*), and reading the
 * keys a tracker needs from the top-level and info dictionaries.
 * Not here: SHA-1 (the caller's), building bencode (bencode.c).
 * Invariants: every read checks pos < len first; recursion depth is at most
 * METAINFO_MAX_DEPTH; integers are checked for overflow before they grow.
 */
#include "proto/metainfo.h"

#include <string.h>

struct bdec {
    const uint8_t *p;
    size_t len;
    size_t pos;
    struct mk_errbuf *eb;
};

static int bdec_fail(struct bdec *d, const char *what)
{
    return mk_fail(d->eb, MK_EINVAL, "at byte %zu: %s", d->pos, what);
}

/* Writes *c on every path (0 at the end of input) so that a caller's
 * `bdec_peek(d, &c) && c == ...` never reads an unset byte. */
static bool bdec_peek(const struct bdec *d, uint8_t *c)
{
    if (d->pos >= d->len) {
        *c = 0;
        return false;
    }
    *c = d->p[d->pos];
    return true;
}

/* Digits up to the terminator `end`, canonical, into *out (at most max). */
static int bdec_digits(struct bdec *d, uint8_t end, uint64_t max, uint64_t *out)
{
    size_t start = d->pos;
    uint64_t v = 0;
    uint8_t c;
    while (bdec_peek(d, &c) && c >= '0' && c <= '9') {
        uint64_t digit = (uint64_t)(c - '0');
        if (digit > max || v > (max - digit) / 10) {
            return bdec_fail(d, "number out of range");
        }
        v = v * 10 + digit;
        d->pos++;
    }
    if (d->pos == start) {
        return bdec_fail(d, "expected a digit");
    }
    if (d->p[start] == '0' && d->pos - start > 1) {
        d->pos = start;
        return bdec_fail(d, "leading zero");
    }
    if (!bdec_peek(d, &c) || c != end) {
        return bdec_fail(d, end == 'e' ? "expected 'e' after an integer"
                                       : "expected ':' after a string length");
    }
    d->pos++;
    *out = v;
    return 0;
}

static int bdec_int(struct bdec *d, int64_t *out)
{
    d->pos++; /* 'i' */
    uint8_t c;
    bool neg = bdec_peek(d, &c) && c == '-';
    if (neg) {
        d->pos++;
    }
    size_t digits_at = d->pos;
    uint64_t v = 0;
    int rc = bdec_digits(d, 'e', neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v);
    if (rc != 0) {
        return rc;
    }
    if (neg && v == 0) {
        d->pos = digits_at;
        return bdec_fail(d, "negative zero");
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

static int bdec_str(struct bdec *d, struct mk_str *out)
{
    uint64_t n = 0;
    int rc = bdec_digits(d, ':', d->len, &n);
    if (rc != 0) {
        return rc;
    }
    if (n > d->len - d->pos) {
        return bdec_fail(d, "string runs past the end");
    }
    out->p = (const char *)d->p + d->pos;
    out->len = (size_t)n;
    d->pos += (size_t)n;
    return 0;
}

/* BEP 3: keys are strings, sorted as raw bytes; equal keys are duplicates. */
static int bdec_key(struct bdec *d, struct mk_str *key, const struct mk_str *prev)
{
    uint8_t c;
    if (!bdec_peek(d, &c) || c < '0' || c > '9') {
        return bdec_fail(d, "dictionary key is not a string");
    }
    size_t at = d->pos;
    int rc = bdec_str(d, key);
    if (rc != 0) {
        return rc;
    }
    if (prev->p) {
        size_t n = prev->len < key->len ? prev->len : key->len;
        int cmp = memcmp(prev->p, key->p, n);
        if (cmp > 0 || (cmp == 0 && prev->len >= key->len)) {
            d->pos = at;
            return bdec_fail(d, cmp == 0 && prev->len == key->len ? "duplicate dictionary key"
                                                                   : "dictionary keys not sorted");
        }
    }
    return 0;
}

static int bdec_value(struct bdec *d, int depth);

static int bdec_list_or_dict(struct bdec *d, int depth, bool dict)
{
    if (depth >= METAINFO_MAX_DEPTH) {
        return bdec_fail(d, "nested too deep");
    }
    d->pos++; /* 'l' or 'd' */
    struct mk_str prev = {NULL, 0};
    for (;;) {
        uint8_t c;
        if (!bdec_peek(d, &c)) {
            return bdec_fail(d, dict ? "unterminated dictionary" : "unterminated list");
        }
        if (c == 'e') {
            d->pos++;
            return 0;
        }
        if (dict) {
            struct mk_str key = {NULL, 0};
            int rc = bdec_key(d, &key, &prev);
            if (rc != 0) {
                return rc;
            }
            prev = key;
        }
        int rc = bdec_value(d, depth + 1);
        if (rc != 0) {
            return rc;
        }
    }
}

/* Validates and skips one value of any type. */
static int bdec_value(struct bdec *d, int depth)
{
    uint8_t c;
    if (!bdec_peek(d, &c)) {
        return bdec_fail(d, "truncated");
    }
    if (c == 'i') {
        int64_t v;
        return bdec_int(d, &v);
    }
    if (c >= '0' && c <= '9') {
        struct mk_str s;
        return bdec_str(d, &s);
    }
    if (c == 'l' || c == 'd') {
        return bdec_list_or_dict(d, depth, c == 'd');
    }
    return bdec_fail(d, "not a bencoded value");
}

/* ---- the walk ------------------------------------------------------------ */

/* Calls on_key for every key of the dictionary at d->pos with the reader
 * positioned at its value; on_key must consume the value (or skip it). */
typedef int (*metainfo_key_fn)(struct bdec *d, struct mk_str key, int depth, void *arg);

static int metainfo_dict(struct bdec *d, int depth, const char *what, metainfo_key_fn on_key,
                         void *arg)
{
    uint8_t c;
    if (!bdec_peek(d, &c) || c != 'd') {
        return mk_fail(d->eb, MK_EINVAL, "%s: not a dictionary", what);
    }
    if (depth >= METAINFO_MAX_DEPTH) {
        return bdec_fail(d, "nested too deep");
    }
    d->pos++;
    struct mk_str prev = {NULL, 0};
    for (;;) {
        if (!bdec_peek(d, &c)) {
            return bdec_fail(d, "unterminated dictionary");
        }
        if (c == 'e') {
            d->pos++;
            return 0;
        }
        struct mk_str key = {NULL, 0};
        int rc = bdec_key(d, &key, &prev);
        if (rc == 0) {
            rc = on_key(d, key, depth + 1, arg);
        }
        if (rc != 0) {
            return rc;
        }
        prev = key;
    }
}

static int metainfo_want_int(struct bdec *d, const char *what, int64_t *out)
{
    uint8_t c;
    if (!bdec_peek(d, &c) || c != 'i') {
        return mk_fail(d->eb, MK_EINVAL, "%s: not an integer", what);
    }
    return bdec_int(d, out);
}

static int metainfo_want_str(struct bdec *d, const char *what, struct mk_str *out)
{
    uint8_t c;
    if (!bdec_peek(d, &c) || c < '0' || c > '9') {
        return mk_fail(d->eb, MK_EINVAL, "%s: not a string", what);
    }
    return bdec_str(d, out);
}

struct file_walk {
    bool has_length;
    int64_t length;
    bool has_path;
};

static int metainfo_file_key(struct bdec *d, struct mk_str key, int depth, void *arg)
{
    struct file_walk *f = arg;
    if (mk_str_eq(key, "length")) {
        f->has_length = true;
        int rc = metainfo_want_int(d, "info.files[].length", &f->length);
        if (rc == 0 && f->length < 0) {
            return mk_fail(d->eb, MK_EINVAL, "info.files[].length: negative");
        }
        return rc;
    }
    if (mk_str_eq(key, "path")) {
        uint8_t c;
        if (!bdec_peek(d, &c) || c != 'l') {
            return mk_fail(d->eb, MK_EINVAL, "info.files[].path: not a list");
        }
        f->has_path = true;
    }
    return bdec_value(d, depth);
}

struct info_walk {
    struct metainfo *m;
    bool has_name, has_length, has_files, has_piece_length, has_pieces;
};

static int metainfo_files(struct bdec *d, int depth, struct info_walk *w)
{
    uint8_t c;
    if (!bdec_peek(d, &c) || c != 'l') {
        return mk_fail(d->eb, MK_EINVAL, "info.files: not a list");
    }
    d->pos++;
    for (;;) {
        if (!bdec_peek(d, &c)) {
            return bdec_fail(d, "unterminated list");
        }
        if (c == 'e') {
            d->pos++;
            break;
        }
        struct file_walk f = {0};
        int rc = metainfo_dict(d, depth + 1, "info.files[]", metainfo_file_key, &f);
        if (rc != 0) {
            return rc;
        }
        if (!f.has_length || !f.has_path) {
            return mk_fail(d->eb, MK_EINVAL, "info.files[]: %s missing",
                           f.has_length ? "path" : "length");
        }
        if ((uint64_t)f.length > UINT64_MAX - w->m->total_length) {
            return mk_fail(d->eb, MK_EINVAL, "info.files: total length out of range");
        }
        w->m->total_length += (uint64_t)f.length;
        if (w->m->files < UINT32_MAX) {
            w->m->files++;
        }
    }
    if (w->m->files == 0) {
        return mk_fail(d->eb, MK_EINVAL, "info.files: empty");
    }
    return 0;
}

static int metainfo_info_key(struct bdec *d, struct mk_str key, int depth, void *arg)
{
    struct info_walk *w = arg;
    int64_t v;
    int rc;
    if (mk_str_eq(key, "name")) {
        w->has_name = true;
        return metainfo_want_str(d, "info.name", &w->m->name);
    }
    if (mk_str_eq(key, "length")) {
        w->has_length = true;
        rc = metainfo_want_int(d, "info.length", &v);
        if (rc != 0) {
            return rc;
        }
        if (v < 0) {
            return mk_fail(d->eb, MK_EINVAL, "info.length: negative");
        }
        w->m->total_length = (uint64_t)v;
        w->m->files = 1;
        return 0;
    }
    if (mk_str_eq(key, "files")) {
        w->has_files = true;
        return metainfo_files(d, depth, w);
    }
    if (mk_str_eq(key, "piece length")) {
        w->has_piece_length = true;
        rc = metainfo_want_int(d, "info.piece length", &v);
        if (rc == 0 && v <= 0) {
            return mk_fail(d->eb, MK_EINVAL, "info.piece length: must be positive");
        }
        return rc;
    }
    if (mk_str_eq(key, "pieces")) {
        struct mk_str pieces;
        w->has_pieces = true;
        rc = metainfo_want_str(d, "info.pieces", &pieces);
        if (rc == 0 && pieces.len % 20 != 0) {
            return mk_fail(d->eb, MK_EINVAL, "info.pieces: length %zu is not a multiple of 20",
                           pieces.len);
        }
        return rc;
    }
    if (mk_str_eq(key, "private")) {
        w->m->has_private = true;
        rc = metainfo_want_int(d, "info.private", &v);
        if (rc != 0) {
            return rc;
        }
        if (v != 0 && v != 1) {
            return mk_fail(d->eb, MK_EINVAL, "info.private: must be 0 or 1");
        }
        w->m->is_private = v == 1;
        return 0;
    }
    return bdec_value(d, depth);
}

struct top_walk {
    struct metainfo *m;
    bool has_info;
};

static int metainfo_top_key(struct bdec *d, struct mk_str key, int depth, void *arg)
{
    struct top_walk *t = arg;
    if (!mk_str_eq(key, "info")) {
        return bdec_value(d, depth);
    }
    t->has_info = true;
    size_t start = d->pos;
    struct info_walk w = {.m = t->m};
    int rc = metainfo_dict(d, depth, "info", metainfo_info_key, &w);
    if (rc != 0) {
        return rc;
    }
    t->m->info.p = (const char *)d->p + start;
    t->m->info.len = d->pos - start;
    const char *missing = !w.has_name               ? "info.name"
                          : !w.has_piece_length     ? "info.piece length"
                          : !w.has_pieces           ? "info.pieces"
                          : !w.has_length && !w.has_files ? "info.length or info.files"
                                                          : NULL;
    if (missing) {
        return mk_fail(d->eb, MK_EINVAL, "%s: missing", missing);
    }
    if (w.has_length && w.has_files) {
        return mk_fail(d->eb, MK_EINVAL, "info: both length and files");
    }
    return 0;
}

int metainfo_parse(const uint8_t *buf, size_t len, struct metainfo *out, struct mk_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    struct bdec d = {.p = buf, .len = len, .eb = eb};
    if (len == 0) {
        return mk_fail(eb, MK_EINVAL, "empty file");
    }
    struct top_walk t = {.m = out};
    int rc = metainfo_dict(&d, 0, "metainfo", metainfo_top_key, &t);
    if (rc == 0 && !t.has_info) {
        rc = mk_fail(eb, MK_EINVAL, "info: missing");
    }
    if (rc == 0 && d.pos != len) {
        rc = bdec_fail(&d, "trailing bytes after the metainfo dictionary");
    }
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
