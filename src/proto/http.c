/* proto/http.c: a strict, bounded, zero-copy HTTP/1.x request-head parser.
 *
 * Owns: finding the end of one request head as bytes arrive, then judging it
 * once: request line, header syntax, the few headers a tracker cares about
 * (Connection, Content-Length, Transfer-Encoding, the real-IP header).
 * Not here: sockets, buffers, routing, query parsing, bodies.
 *
 * How it stays linear: until the head is complete, a call only looks for its
 * end (LF, optional CR, LF) from ps->scanned, the first byte that could still
 * begin it, plus two checks that look at a bounded prefix: the request line
 * limit (decided by its first max_request_line + 2 bytes, examined only by
 * the few calls that reach that point) and the head limit. Everything else
 * is judged once, when the whole head is there, so the answer never depends
 * on how the bytes were split. An early error is returned only when every
 * longer input would get the same answer.
 *
 * Invariants: reads only buf[0..len); views in *req point into buf; nothing
 * is allocated and nothing is kept between calls except ps->scanned.
 */
#include "proto/http.h"

#include <stdint.h>
#include <string.h>

enum http_status {
    HTTP_BAD_REQUEST = 400,
    HTTP_METHOD_NOT_ALLOWED = 405,
    HTTP_URI_TOO_LONG = 414,
    HTTP_HEADERS_TOO_LARGE = 431,
    HTTP_VERSION_NOT_SUPPORTED = 505,
};

/* RFC 9110 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~, as a bitmap of the 128
 * ASCII bytes (bit c of lo for c < 64, bit c - 64 of hi): every byte of
 * every method and header name goes through here. */
static bool http_is_tchar(unsigned char c)
{
    static const uint64_t lo = 0x3ff6cfa00000000ull, hi = 0x57ffffffc7fffffeull;
    if (c >= 128) {
        return false;
    }
    return ((c < 64 ? lo >> c : hi >> (c - 64)) & 1) != 0;
}

/* Bytes allowed in a request-target: visible ASCII. Clients escape the rest. */
static bool http_is_target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '#';
}

/* How many of buf[0..n) from the start are request-target bytes. Eight at
 * a time while none of them is out: the target is most of a request head
 * (an announce's is ~300 bytes), and a byte at a time cost ~9 instructions
 * a byte. In each 64-bit word, a high bit of "lt" marks a byte below 0x21,
 * of "gt" one above 0x7e (both exact for the word as a whole, whatever the
 * bytes), and of "hash" a '#'; a word with any of them is judged byte by byte. */
static size_t http_target_span(const char *buf, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, buf + i, 8);
        uint64_t lt = (w - ones * 0x21) & ~w & highs;
        uint64_t gt = ((w + ones * (0x7f - 0x7e)) | w) & highs;
        uint64_t x = w ^ (ones * '#');
        uint64_t hash = (x - ones) & ~x & highs;
        if ((lt | gt | hash) != 0) {
            break;
        }
        i += 8;
    }
    while (i < n && http_is_target_char((unsigned char)buf[i])) {
        i++;
    }
    return i;
}

/* Field-value bytes: VCHAR, obs-text, SP, HTAB; no other control byte. */
static bool http_is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool http_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static unsigned char http_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool http_eq_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) {
        return false;
    }
    for (size_t i = 0; i < alen; i++) {
        if (http_lower((unsigned char)a[i]) != http_lower((unsigned char)b[i])) {
            return false;
        }
    }
    return true;
}

static bool http_eq_lit(struct mk_str s, const char *lit)
{
    return http_eq_nocase(s.p, s.len, lit, strlen(lit));
}

static enum http_parse_result http_fail(struct http_request *req, int status)
{
    req->status = status;
    return HTTP_PARSE_ERROR;
}

/* Whether the request line exceeds max, from its first max + 2 bytes: 1 too
 * long, 0 within the limit, -1 not decidable yet. Called with len > max. */
static int http_line_too_long(const char *buf, size_t len, size_t max)
{
    size_t win = len - max >= 2 ? max + 2 : len;
    const char *lf = memchr(buf, '\n', win);
    if (lf) {
        size_t f = (size_t)(lf - buf);
        size_t content = f - (f > 0 && buf[f - 1] == '\r');
        return content > max;
    }
    if (win == max + 2 || buf[max] != '\r') {
        return 1;
    }
    return -1;
}

/* Finds the blank line ending the head within buf[0..lim). Returns the head
 * length, or 0 with *resume set to the first byte a later call must look at. */
static size_t http_find_end(const char *buf, size_t lim, size_t from, size_t *resume)
{
    size_t i = from;
    while (i < lim) {
        const char *lf = memchr(buf + i, '\n', lim - i);
        if (!lf) {
            i = lim;
            break;
        }
        i = (size_t)(lf - buf);
        if (i + 1 >= lim) {
            break;
        }
        if (buf[i + 1] == '\n') {
            return i + 2;
        }
        if (buf[i + 1] == '\r') {
            if (i + 2 >= lim) {
                break;
            }
            if (buf[i + 2] == '\n') {
                return i + 3;
            }
        }
        i++;
    }
    *resume = i;
    return 0;
}

/* Origin-form "/p?q", or absolute-form "http://authority/p?q" reduced to the
 * former. False for anything else (asterisk-form, authority-form, no path). */
static bool http_target(const char *t, size_t len, struct http_request *req)
{
    static const char scheme[] = "http://";
    const size_t slen = sizeof(scheme) - 1;
    if (len > 0 && t[0] != '/') {
        if (len <= slen || !http_eq_nocase(t, slen, scheme, slen)) {
            return false;
        }
        const char *auth = t + slen;
        size_t alen = 0;
        while (slen + alen < len && auth[alen] != '/' && auth[alen] != '?') {
            alen++;
        }
        if (alen == 0 || slen + alen == len || auth[alen] != '/') {
            return false;
        }
        t = auth + alen;
        len -= slen + alen;
    }
    req->target = (struct mk_str){t, len};
    const char *q = memchr(t, '?', len);
    size_t plen = q ? (size_t)(q - t) : len;
    req->path = (struct mk_str){t, plen};
    req->query = q ? (struct mk_str){q + 1, len - plen - 1} : (struct mk_str){t + len, 0};
    return true;
}

/* The request line buf[0..n), line ending removed. Returns 0 or a status. */
static int http_request_line(const char *buf, size_t n, struct http_request *req)
{
    size_t i = 0;
    while (i < n && http_is_tchar((unsigned char)buf[i])) {
        i++;
    }
    if (i == 0 || i == n || buf[i] != ' ') {
        return HTTP_BAD_REQUEST;
    }
    size_t mlen = i;
    size_t t0 = ++i;
    i += http_target_span(buf + i, n - i);
    /* i == n: no version, which is HTTP/0.9; we do not speak it. */
    if (i == t0 || i == n || buf[i] != ' ') {
        return HTTP_BAD_REQUEST;
    }
    size_t tlen = i - t0;
    const char *v = buf + i + 1;
    size_t vlen = n - i - 1;
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9') {
        return HTTP_BAD_REQUEST;
    }
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
        return HTTP_VERSION_NOT_SUPPORTED;
    }
    req->minor = v[7] - '0';
    if (mlen != 3 || memcmp(buf, "GET", 3) != 0) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!http_target(buf + t0, tlen, req)) {
        return HTTP_BAD_REQUEST;
    }
    return 0;
}

struct http_conn_tokens {
    bool close;
    bool keep_alive;
};

/* Connection: a comma list of tokens; only close and keep-alive matter. */
static void http_connection(struct mk_str v, struct http_conn_tokens *ct)
{
    size_t i = 0;
    while (i < v.len) {
        size_t start = i;
        while (i < v.len && v.p[i] != ',') {
            i++;
        }
        size_t end = i;
        while (start < end && http_is_ows((unsigned char)v.p[start])) {
            start++;
        }
        while (end > start && http_is_ows((unsigned char)v.p[end - 1])) {
            end--;
        }
        struct mk_str tok = {v.p + start, end - start};
        if (http_eq_lit(tok, "close")) {
            ct->close = true;
        } else if (http_eq_lit(tok, "keep-alive")) {
            ct->keep_alive = true;
        }
        i++;
    }
}

/* A tracker takes no bodies; only an explicit zero length is harmless. */
static bool http_content_length_is_zero(struct mk_str v)
{
    if (v.len == 0) {
        return false;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] != '0') {
            return false;
        }
    }
    return true;
}

/* Header lines buf[from..end), the last being the blank line. Returns 0 or a status. */
static int http_headers(const char *buf, size_t from, size_t end, const struct http_limits *lim,
                        struct mk_str real_ip_header, struct http_request *req)
{
    struct http_conn_tokens ct = {false, false};
    size_t count = 0;
    size_t pos = from;
    for (;;) {
        const char *lf = memchr(buf + pos, '\n', end - pos);
        size_t n = (size_t)(lf - (buf + pos)); /* lf exists: the head ends with one */
        if (n > 0 && buf[pos + n - 1] == '\r') {
            n--;
        }
        const char *line = buf + pos;
        pos = (size_t)(lf - buf) + 1;
        if (n == 0) {
            break;
        }
        if (++count > lim->max_headers) {
            return HTTP_HEADERS_TOO_LARGE;
        }
        /* A leading SP/HTAB is obs-fold (RFC 9112 5.2): refused. */
        size_t i = 0;
        while (i < n && http_is_tchar((unsigned char)line[i])) {
            i++;
        }
        if (i == 0 || i == n || line[i] != ':') {
            return HTTP_BAD_REQUEST;
        }
        struct mk_str name = {line, i};
        i++;
        while (i < n && http_is_ows((unsigned char)line[i])) {
            i++;
        }
        size_t vend = n;
        while (vend > i && http_is_ows((unsigned char)line[vend - 1])) {
            vend--;
        }
        for (size_t k = i; k < vend; k++) {
            if (!http_is_value_char((unsigned char)line[k])) {
                return HTTP_BAD_REQUEST;
            }
        }
        struct mk_str value = {line + i, vend - i};
        if (http_eq_lit(name, "connection")) {
            http_connection(value, &ct);
        } else if (http_eq_lit(name, "content-length")) {
            if (!http_content_length_is_zero(value)) {
                return HTTP_BAD_REQUEST;
            }
        } else if (http_eq_lit(name, "transfer-encoding")) {
            return HTTP_BAD_REQUEST;
        }
        /* The last one wins: proxies append theirs after the client's. */
        if (real_ip_header.len > 0 &&
            http_eq_nocase(name.p, name.len, real_ip_header.p, real_ip_header.len)) {
            req->real_ip = value;
        }
    }
    req->keep_alive = req->minor >= 1;
    if (ct.keep_alive) {
        req->keep_alive = true;
    }
    if (ct.close) {
        req->keep_alive = false;
    }
    return 0;
}

enum http_parse_result http_parse_request(const char *buf, size_t len, struct http_parser *ps,
                                          const struct http_limits *lim,
                                          struct mk_str real_ip_header, struct http_request *req)
{
    memset(req, 0, sizeof(*req));
    req->real_ip = (struct mk_str){buf, 0};
    if (len == 0) {
        return HTTP_PARSE_AGAIN;
    }
    /* Cheap and split-proof: a head starts with a method token. This turns
     * away TLS handshakes and stray blank lines at once. */
    if (!http_is_tchar((unsigned char)buf[0])) {
        return http_fail(req, HTTP_BAD_REQUEST);
    }
    const size_t max_rl = lim->max_request_line;
    size_t from = ps->scanned <= len ? ps->scanned : 0;
    /* Decidable only once len > max_rl; and once a call has returned AGAIN
     * with more than max_rl + 1 bytes, it was decided, so later calls skip it. */
    if (len > max_rl && (from <= max_rl || from - max_rl <= 1) &&
        http_line_too_long(buf, len, max_rl) == 1) {
        return http_fail(req, HTTP_URI_TOO_LONG);
    }
    size_t lim_len = len < lim->max_head ? len : lim->max_head;
    size_t resume = from;
    size_t end = http_find_end(buf, lim_len, from, &resume);
    if (end == 0) {
        if (len >= lim->max_head) {
            return http_fail(req, HTTP_HEADERS_TOO_LARGE);
        }
        ps->scanned = resume;
        return HTTP_PARSE_AGAIN;
    }

    const char *lf = memchr(buf, '\n', end);
    size_t f = (size_t)(lf - buf);
    size_t rl = f - (f > 0 && buf[f - 1] == '\r');
    /* The early check above has already caught this whenever the caller
     * reset the parser per request; repeated here so the rule holds even for
     * a stale resume offset. */
    if (rl > max_rl) {
        return http_fail(req, HTTP_URI_TOO_LONG);
    }
    int status = http_request_line(buf, rl, req);
    if (status == 0) {
        status = http_headers(buf, f + 1, end, lim, real_ip_header, req);
    }
    if (status != 0) {
        return http_fail(req, status);
    }
    req->head_len = end;
    return HTTP_PARSE_DONE;
}
