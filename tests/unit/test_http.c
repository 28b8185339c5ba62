/* tests/unit/test_http.c: http_parse_request.
 *
 * Every buffer handed to the parser ends at a guard page, and every prefix
 * fed while a request "arrives" is a fresh guarded copy, so reading past the
 * bytes received so far faults. Results are compared as offsets into the
 * buffer, which lets whole, split and byte-by-byte feeds be compared exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/http.h"

static const struct http_limits lim_default = {
    .max_request_line = 1024,
    .max_head = 4096,
    .max_headers = 32,
};

/* A view as an offset into the buffer; off = -1 when p is NULL. */
struct span {
    long off;
    size_t len;
};

struct parsed {
    enum http_parse_result rc;
    int status;
    size_t head_len;
    struct span target, path, query, real_ip;
    int minor;
    bool keep_alive;
    size_t calls;
};

static struct span span_of(const char *base, struct mk_str s)
{
    return (struct span){s.p ? (long)(s.p - base) : -1, s.len};
}

static struct parsed snapshot(const char *base, enum http_parse_result rc,
                              const struct http_request *req)
{
    struct parsed p;
    memset(&p, 0, sizeof(p));
    p.rc = rc;
    if (rc == HTTP_PARSE_ERROR) {
        p.status = req->status;
    }
    if (rc == HTTP_PARSE_DONE) {
        p.head_len = req->head_len;
        p.target = span_of(base, req->target);
        p.path = span_of(base, req->path);
        p.query = span_of(base, req->query);
        p.real_ip = span_of(base, req->real_ip);
        p.minor = req->minor;
        p.keep_alive = req->keep_alive;
    }
    return p;
}

/* One call on a guarded copy of s[0..len). */
static struct parsed feed(const char *s, size_t len, struct http_parser *ps,
                          const struct http_limits *lim, const char *rip)
{
    struct http_request req;
    char *g = guard_dup(s, len);
    enum http_parse_result rc =
        http_parse_request(g, len, ps, lim, (struct mk_str){rip, strlen(rip)}, &req);
    struct parsed p = snapshot(g, rc, &req);
    guard_free(g, len);
    return p;
}

static struct parsed parse_lim(const char *s, size_t len, const struct http_limits *lim,
                               const char *rip)
{
    struct http_parser ps;
    http_parser_reset(&ps);
    return feed(s, len, &ps, lim, rip);
}

static struct parsed parse(const char *s)
{
    return parse_lim(s, strlen(s), &lim_default, "X-Real-IP");
}

/* Feeds s[0..k) then s[0..len), as two reads from a socket would. */
static struct parsed parse_split(const char *s, size_t len, size_t k,
                                 const struct http_limits *lim, const char *rip)
{
    struct http_parser ps;
    http_parser_reset(&ps);
    struct parsed p = feed(s, k, &ps, lim, rip);
    if (p.rc != HTTP_PARSE_AGAIN) {
        return p;
    }
    return feed(s, len, &ps, lim, rip);
}

/* Feeds one more byte per call; checks after each AGAIN that at most the
 * last two bytes will be looked at again (the linear-time promise). */
static struct parsed parse_bytewise(const char *s, size_t len, const struct http_limits *lim,
                                    const char *rip)
{
    struct http_parser ps;
    http_parser_reset(&ps);
    struct parsed p = {.rc = HTTP_PARSE_AGAIN};
    for (size_t k = 1; k <= len && p.rc == HTTP_PARSE_AGAIN; k++) {
        p = feed(s, k, &ps, lim, rip);
        if (p.rc == HTTP_PARSE_AGAIN) {
            assert_true(ps.scanned <= k);
            assert_true(ps.scanned + 2 >= k || ps.scanned >= lim->max_head);
        }
    }
    return p;
}

static void assert_parsed_equal(const struct parsed *a, const struct parsed *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->head_len, b->head_len);
    assert_memory_equal(&a->target, &b->target, sizeof(a->target));
    assert_memory_equal(&a->path, &b->path, sizeof(a->path));
    assert_memory_equal(&a->query, &b->query, sizeof(a->query));
    assert_memory_equal(&a->real_ip, &b->real_ip, sizeof(a->real_ip));
    assert_int_equal(a->minor, b->minor);
    assert_int_equal(a->keep_alive, b->keep_alive);
}

static void expect_span(const char *s, struct span sp, const char *want)
{
    assert_true(sp.off >= 0);
    assert_int_equal(sp.len, strlen(want));
    assert_memory_equal(s + sp.off, want, sp.len);
}

static void expect_status(const char *s, int status)
{
    struct parsed p = parse(s);
    if (p.rc != HTTP_PARSE_ERROR || p.status != status) {
        print_error("request: %s\n  got rc %d status %d, want status %d\n", s, p.rc, p.status,
                    status);
    }
    assert_int_equal(p.rc, HTTP_PARSE_ERROR);
    assert_int_equal(p.status, status);
}

#define LT_TARGET                                                                                  \
    "/0123456789abcdef0123456789abcdef/announce?info_hash=%d8%e6%c6%5c%ad%1f%3d%b0%f9%af"          \
    "%e0%93%cb%be%e3%d5%da%c6%16%3c&peer_id=-LT2090-a1%28%a5%c1b2%8b%8e%8f%3dZ&port=6881"          \
    "&uploaded=0&downloaded=0&left=0&corrupt=0&key=6F1B3F0A&event=started&numwant=200"             \
    "&compact=1&no_peer_id=1&supportcrypto=1&redundant=0"
#define LT_REQUEST                                                                                 \
    "GET " LT_TARGET " HTTP/1.1\r\n"                                                               \
    "Host: tracker.example:6969\r\n"                                                               \
    "User-Agent: libtorrent/2.0.9.0\r\n"                                                           \
    "Accept-Encoding: gzip\r\n"                                                                    \
    "X-Real-IP:  203.0.113.9 \r\n"                                                                 \
    "Connection: close\r\n"                                                                        \
    "\r\n"

static void test_http_parses_libtorrent_announce(void **state)
{
    const char *s = LT_REQUEST;
    struct parsed p = parse(s);
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    assert_int_equal(p.head_len, strlen(s));
    expect_span(s, p.target, LT_TARGET);
    expect_span(s, p.path, "/0123456789abcdef0123456789abcdef/announce");
    assert_int_equal(p.query.off, p.path.off + (long)p.path.len + 1);
    assert_int_equal(p.query.len, strlen(LT_TARGET) - p.path.len - 1);
    expect_span(s, p.real_ip, "203.0.113.9");
    assert_int_equal(p.minor, 1);
    assert_false(p.keep_alive);
}

static void test_http_every_split_gives_the_same_result(void **state)
{
    static const char *const samples[] = {
        LT_REQUEST,
        "GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.0\nHost: t\n\n",
        "GET /a HTTP/1.1\r\nA: b\r\n\nGET /b HTTP/1.1\r\n\r\n", /* pipelined tail */
        "GET /a HTTP/1.1\r\nA: b\rc\r\n\r\n",                     /* 400 */
        "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",       /* 405 */
        "GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",  /* 400 */
    };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const char *s = samples[i];
        size_t len = strlen(s);
        struct parsed whole = parse_lim(s, len, &lim_default, "X-Real-IP");
        assert_int_not_equal(whole.rc, HTTP_PARSE_AGAIN);
        for (size_t k = 0; k <= len; k++) {
            struct parsed p = parse_split(s, len, k, &lim_default, "X-Real-IP");
            assert_parsed_equal(&p, &whole);
        }
        struct parsed b = parse_bytewise(s, len, &lim_default, "X-Real-IP");
        assert_parsed_equal(&b, &whole);
    }
}

static void test_http_byte_by_byte_matches_whole_for_limit_errors(void **state)
{
    const struct http_limits lim = {.max_request_line = 20, .max_head = 60, .max_headers = 2};
    static const char *const samples[] = {
        "GET /0123456789abc HTTP/1.1\r\n\r\n",       /* line 28 > 20: 414 */
        "GET /0123456789abcdef0123456789abcdef",     /* no LF yet: 414 */
        "GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", /* 3 headers: 431 */
        "GET /a HTTP/1.1\r\nA: 0123456789012345678901234567890123456789\r\n\r\n", /* 431 */
        "GET /a HTTP/1.1\r\nA: 0123456789012345678901234567890123456789012345", /* 431 early */
    };
    static const int want[] = {414, 414, 431, 431, 431};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const char *s = samples[i];
        size_t len = strlen(s);
        struct parsed whole = parse_lim(s, len, &lim, "");
        assert_int_equal(whole.rc, HTTP_PARSE_ERROR);
        assert_int_equal(whole.status, want[i]);
        struct parsed b = parse_bytewise(s, len, &lim, "");
        assert_parsed_equal(&b, &whole);
        for (size_t k = 0; k <= len; k++) {
            struct parsed p = parse_split(s, len, k, &lim, "");
            assert_parsed_equal(&p, &whole);
        }
    }
}

static void test_http_incomplete_head_asks_for_more(void **state)
{
    static const char *const partial[] = {
        "", "G", "GET", "GET /a HTTP/1.1", "GET /a HTTP/1.1\r", "GET /a HTTP/1.1\r\n",
        "GET /a HTTP/1.1\r\nHost: x\r\n", "GET /a HTTP/1.1\r\nHost: x\r\n\r",
        "GET /a HTTP/1.1\n",
        /* an HTTP/0.9 line is judged only with the head: nothing ends it */
        "GET /a\r\n",
    };
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        assert_int_equal(parse(partial[i]).rc, HTTP_PARSE_AGAIN);
    }
}

static void test_http_pipelined_requests_parse_one_after_another(void **state)
{
    const char *s = "GET /announce?a=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                    "GET /scrape?b=2 HTTP/1.1\nHost: t\n\n"
                    "GET /announce?c=3 HTTP/1.1\r\nHo";
    size_t len = strlen(s);
    size_t at = 0;
    static const char *const queries[] = {"a=1", "b=2"};
    for (int i = 0; i < 2; i++) {
        struct parsed p = parse_lim(s + at, len - at, &lim_default, "");
        assert_int_equal(p.rc, HTTP_PARSE_DONE);
        expect_span(s + at, p.query, queries[i]);
        assert_true(p.keep_alive);
        at += p.head_len;
    }
    assert_int_equal(at, strlen("GET /announce?a=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                                "GET /scrape?b=2 HTTP/1.1\nHost: t\n\n"));
    assert_int_equal(parse_lim(s + at, len - at, &lim_default, "").rc, HTTP_PARSE_AGAIN);
}

static void test_http_accepts_bare_lf_line_ends(void **state)
{
    const char *s = "GET /x?y HTTP/1.0\nConnection: keep-alive\n\n";
    struct parsed p = parse(s);
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    assert_int_equal(p.head_len, strlen(s));
    assert_int_equal(p.minor, 0);
    assert_true(p.keep_alive);
    expect_span(s, p.query, "y");
}

static void test_http_query_empty_without_question_mark(void **state)
{
    const char *s = "GET /announce HTTP/1.1\r\n\r\n";
    struct parsed p = parse(s);
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    expect_span(s, p.path, "/announce");
    assert_int_equal(p.query.len, 0);
    assert_true(p.query.off >= 0);
    const char *t = "GET /announce? HTTP/1.1\r\n\r\n";
    p = parse(t);
    expect_span(t, p.path, "/announce");
    assert_int_equal(p.query.len, 0);
    assert_int_equal(p.query.off, (long)strlen("GET /announce?"));
}

static void test_http_rejects_http_09_and_malformed_request_lines(void **state)
{
    static const char *const bad[] = {
        "GET /announce\r\n\r\n",           /* HTTP/0.9: no version */
        "GET\r\n\r\n",
        "GET  /a HTTP/1.1\r\n\r\n",        /* double space */
        "GET /a  HTTP/1.1\r\n\r\n",
        "GET /a HTTP/1.1 \r\n\r\n",        /* trailing space */
        "GET /a http/1.1\r\n\r\n",
        "GET /a HTTP/1\r\n\r\n",
        "GET /a HTTP/1.10\r\n\r\n",
        "GET /a HTTP/x.1\r\n\r\n",
        "GET announce HTTP/1.1\r\n\r\n",   /* not origin-form */
        "GET * HTTP/1.1\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\n\r\n",
        "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
        "GET /a HTTP/1.1\rX\r\n\r\n",     /* bare CR in the request line */
        "GET /a HTTP/1.1\r\r\n\r\n",
        "\r\nGET /a HTTP/1.1\r\n\r\n",     /* leading blank line */
        " GET /a HTTP/1.1\r\n\r\n",
        "GET https://t.example/a HTTP/1.1\r\n\r\n",
        "GET http://t.example HTTP/1.1\r\n\r\n", /* absolute-form without a path */
        "GET http://t.example?a=1 HTTP/1.1\r\n\r\n",
        "GET http:///a HTTP/1.1\r\n\r\n",
        "GET http:/ HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_status(bad[i], 400);
    }
}

/* The request-target is judged eight bytes at a time while they are all
 * good: each byte value, at each place of a 40-byte target (so in the first,
 * middle and last word and in the tail), must be judged as the byte rule
 * says: visible ASCII but '#'. A space or line end there breaks the line,
 * which is a 400 too. */
static void test_http_target_bytes_judged_alike_at_every_place(void **state)
{
    (void)state;
    static const char head[] = "GET /", tail[] = " HTTP/1.1\r\n\r\n";
    enum { TLEN = 40 };
    char req[sizeof(head) - 1 + TLEN + sizeof(tail)];
    for (size_t at = 0; at < TLEN; at++) {
        for (int b = 0; b < 256; b++) {
            memcpy(req, head, sizeof(head) - 1);
            memset(req + sizeof(head) - 1, 'a', TLEN);
            req[sizeof(head) - 1 + at] = (char)b;
            memcpy(req + sizeof(head) - 1 + TLEN, tail, sizeof(tail));
            size_t len = sizeof(req) - 1;
            struct parsed p = parse_lim(req, len, &lim_default, "X-Real-IP");
            bool good = b > 0x20 && b < 0x7f && b != '#';
            if (good != (p.rc == HTTP_PARSE_DONE)) {
                print_error("byte 0x%02x at %zu: rc %d status %d\n", b, at, p.rc, p.status);
            }
            assert_int_equal(p.rc, good ? HTTP_PARSE_DONE : HTTP_PARSE_ERROR);
            if (good) {
                assert_int_equal(p.target.len, TLEN + 1);
            } else {
                assert_int_equal(p.status, 400);
            }
        }
    }
}

static void test_http_rejects_tls_handshake_at_first_byte(void **state)
{
    const char hello[] = "\x16\x03\x01\x02\x00\x01";
    struct parsed p = parse_lim(hello, 1, &lim_default, "");
    assert_int_equal(p.rc, HTTP_PARSE_ERROR);
    assert_int_equal(p.status, 400);
    p = parse_lim(hello, sizeof(hello) - 1, &lim_default, "");
    assert_int_equal(p.status, 400);
}

static void test_http_rejects_malformed_headers(void **state)
{
    static const char *const bad[] = {
        "GET /a HTTP/1.1\r\nHost: a\rb\r\n\r\n",        /* bare CR in a value */
        "GET /a HTTP/1.1\r\nHost\r\n\r\n",              /* no colon */
        "GET /a HTTP/1.1\r\nHost : a\r\n\r\n",          /* space before colon */
        "GET /a HTTP/1.1\r\n: a\r\n\r\n",               /* empty name */
        "GET /a HTTP/1.1\r\nHo(st: a\r\n\r\n",          /* not a token */
        "GET /a HTTP/1.1\r\nA: b\r\n c\r\n\r\n",        /* obs-fold */
        "GET /a HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n",       /* obs-fold with HTAB */
        "GET /a HTTP/1.1\r\n Host: a\r\n\r\n",          /* first header folded */
        "GET /a HTTP/1.1\r\nA: b\x01\r\n\r\n",
        "GET /a HTTP/1.1\r\nA: b\x7f\r\n\r\n",
        "GET /a HTTP/1.1\r\nA: b\r\r\n\r\n",
        "GET /a HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
        "GET /a HTTP/1.1\r\ncontent-length: 1\r\n\r\n",
        "GET /a HTTP/1.1\r\nContent-Length: \r\n\r\n",
        "GET /a HTTP/1.1\r\nContent-Length: -0\r\n\r\n",
        "GET /a HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n",
        "GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /a HTTP/1.1\r\nTRANSFER-ENCODING: identity\r\n\r\n",
        "GET /a HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_status(bad[i], 400);
    }
    /* a nul byte in a value, which a C-string table cannot hold */
    static const char nul[] = "GET /a HTTP/1.1\r\nA: b\0c\r\n\r\n";
    struct parsed p = parse_lim(nul, sizeof(nul) - 1, &lim_default, "");
    assert_int_equal(p.rc, HTTP_PARSE_ERROR);
    assert_int_equal(p.status, 400);
}

static void test_http_accepts_zero_content_length_and_odd_values(void **state)
{
    const char *s = "GET /a HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 00\r\n"
                    "X-Empty:\r\nX-Utf8: caf\xc3\xa9\r\nX-Tab:\ta\tb\t\r\n\r\n";
    struct parsed p = parse(s);
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    assert_int_equal(p.head_len, strlen(s));
}

static void test_http_refuses_other_methods_with_405(void **state)
{
    expect_status("POST /announce HTTP/1.1\r\nContent-Length: 3\r\n\r\n", 405);
    expect_status("HEAD /announce HTTP/1.1\r\n\r\n", 405);
    expect_status("get /announce HTTP/1.1\r\n\r\n", 405);
    expect_status("GETS /announce HTTP/1.0\r\n\r\n", 405);
}

static void test_http_refuses_other_versions_with_505(void **state)
{
    expect_status("GET /a HTTP/2.0\r\n\r\n", 505);
    expect_status("GET /a HTTP/1.2\r\n\r\n", 505);
    expect_status("GET /a HTTP/0.9\r\n\r\n", 505);
    expect_status("GET /a HTTP/3.1\r\n\r\n", 505);
}

static void test_http_keep_alive_rules(void **state)
{
    static const struct {
        const char *req;
        bool keep_alive;
        int minor;
    } cases[] = {
        {"GET /a HTTP/1.1\r\n\r\n", true, 1},
        {"GET /a HTTP/1.0\r\n\r\n", false, 0},
        {"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", false, 1},
        {"GET /a HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", false, 1},
        {"GET /a HTTP/1.1\r\nConnection: Upgrade , close\r\n\r\n", false, 1},
        {"GET /a HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true, 1},
        {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, 0},
        {"GET /a HTTP/1.0\r\nConnection: Keep-Alive, Upgrade\r\n\r\n", true, 0},
        {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false, 0},
        {"GET /a HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false, 0},
        {"GET /a HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", false, 0},
        {"GET /a HTTP/1.1\r\nConnection: closed\r\n\r\n", true, 1},
        {"GET /a HTTP/1.1\r\nX-Connection: close\r\n\r\n", true, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p = parse(cases[i].req);
        assert_int_equal(p.rc, HTTP_PARSE_DONE);
        assert_int_equal(p.keep_alive, cases[i].keep_alive);
        assert_int_equal(p.minor, cases[i].minor);
    }
}

static void test_http_reduces_absolute_form_to_path(void **state)
{
    const char *s = "GET http://tracker.example:6969/announce?a=1&b=2 HTTP/1.1\r\n\r\n";
    struct parsed p = parse(s);
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    expect_span(s, p.target, "/announce?a=1&b=2");
    expect_span(s, p.path, "/announce");
    expect_span(s, p.query, "a=1&b=2");
    const char *t = "GET HTTP://[2001:db8::1]/ HTTP/1.1\r\n\r\n";
    p = parse(t);
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    expect_span(t, p.target, "/");
    expect_span(t, p.path, "/");
    assert_int_equal(p.query.len, 0);
}

static void test_http_captures_real_ip_header(void **state)
{
    const char *s = "GET /a HTTP/1.1\r\nx-forwarded-for:\t198.51.100.1, 10.0.0.1 \t\r\n\r\n";
    struct parsed p = parse_lim(s, strlen(s), &lim_default, "X-Forwarded-For");
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    expect_span(s, p.real_ip, "198.51.100.1, 10.0.0.1");

    /* the last one wins: a proxy appends its header after the client's */
    const char *two = "GET /a HTTP/1.1\r\nX-Real-IP: 1.1.1.1\r\nX-Real-IP: 2.2.2.2\r\n\r\n";
    p = parse(two);
    expect_span(two, p.real_ip, "2.2.2.2");

    p = parse("GET /a HTTP/1.1\r\nX-Real-IPs: 1.1.1.1\r\n\r\n");
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    assert_int_equal(p.real_ip.len, 0);

    const char *off = "GET /a HTTP/1.1\r\nX-Real-IP: 1.1.1.1\r\n\r\n";
    p = parse_lim(off, strlen(off), &lim_default, "");
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    assert_int_equal(p.real_ip.len, 0);
}

/* Builds "GET /aaa...a HTTP/1.1" whose line (without CRLF) is n bytes. */
static void request_line_of(char *out, size_t n)
{
    size_t fixed = strlen("GET / HTTP/1.1");
    strcpy(out, "GET /");
    memset(out + 5, 'a', n - fixed);
    strcpy(out + 5 + (n - fixed), " HTTP/1.1");
}

static void test_http_request_line_limit_at_and_past_bound(void **state)
{
    const struct http_limits lim = {.max_request_line = 100, .max_head = 4096, .max_headers = 8};
    char line[256], req[300];
    request_line_of(line, 100);
    snprintf(req, sizeof(req), "%s\r\n\r\n", line);
    assert_int_equal(parse_lim(req, strlen(req), &lim, "").rc, HTTP_PARSE_DONE);
    snprintf(req, sizeof(req), "%s\n\n", line);
    assert_int_equal(parse_lim(req, strlen(req), &lim, "").rc, HTTP_PARSE_DONE);

    request_line_of(line, 101);
    snprintf(req, sizeof(req), "%s\r\n\r\n", line);
    struct parsed p = parse_lim(req, strlen(req), &lim, "");
    assert_int_equal(p.rc, HTTP_PARSE_ERROR);
    assert_int_equal(p.status, 414);
    snprintf(req, sizeof(req), "%s\n\n", line);
    assert_int_equal(parse_lim(req, strlen(req), &lim, "").status, 414);
}

static void test_http_request_line_limit_before_lf_arrives(void **state)
{
    const struct http_limits lim = {.max_request_line = 100, .max_head = 4096, .max_headers = 8};
    char line[256];
    request_line_of(line, 101);
    /* 100 bytes could still be a whole line; the 101st proves it is not */
    assert_int_equal(parse_lim(line, 100, &lim, "").rc, HTTP_PARSE_AGAIN);
    struct parsed p = parse_lim(line, 101, &lim, "");
    assert_int_equal(p.rc, HTTP_PARSE_ERROR);
    assert_int_equal(p.status, 414);

    /* 100 bytes and a CR: still undecided until the next byte */
    request_line_of(line, 100);
    strcat(line, "\r");
    assert_int_equal(parse_lim(line, 101, &lim, "").rc, HTTP_PARSE_AGAIN);
    strcat(line, "X");
    assert_int_equal(parse_lim(line, 102, &lim, "").status, 414);
}

static void test_http_head_limit_at_and_past_bound(void **state)
{
    const struct http_limits lim = {.max_request_line = 100, .max_head = 64, .max_headers = 8};
    /* "GET /a HTTP/1.1\r\n" (17) + "A: " (3) + v + "\r\n\r\n" (4) = 64 with a 40-byte value */
    char req[128];
    snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\nA: %.*s\r\n\r\n", 40,
             "0123456789012345678901234567890123456789");
    assert_int_equal(strlen(req), 64);
    struct parsed p = parse_lim(req, strlen(req), &lim, "");
    assert_int_equal(p.rc, HTTP_PARSE_DONE);
    assert_int_equal(p.head_len, 64);
    /* pipelined bytes after the head do not count */
    char more[160];
    snprintf(more, sizeof(more), "%sGET /b HTTP/1.1\r\n", req);
    assert_int_equal(parse_lim(more, strlen(more), &lim, "").rc, HTTP_PARSE_DONE);

    snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\nA: %.*s\r\n\r\n", 41,
             "01234567890123456789012345678901234567890");
    p = parse_lim(req, strlen(req), &lim, "");
    assert_int_equal(p.rc, HTTP_PARSE_ERROR);
    assert_int_equal(p.status, 431);
    /* 63 bytes without the end may still finish at 64; 64 without it cannot */
    assert_int_equal(parse_lim(req, 63, &lim, "").rc, HTTP_PARSE_AGAIN);
    assert_int_equal(parse_lim(req, 64, &lim, "").status, 431);
}

static void test_http_header_count_limit_at_and_past_bound(void **state)
{
    const struct http_limits lim = {.max_request_line = 100, .max_head = 4096, .max_headers = 3};
    const char *three = "GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_int_equal(parse_lim(three, strlen(three), &lim, "").rc, HTTP_PARSE_DONE);
    const char *four = "GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    struct parsed p = parse_lim(four, strlen(four), &lim, "");
    assert_int_equal(p.rc, HTTP_PARSE_ERROR);
    assert_int_equal(p.status, 431);
    const struct http_limits none = {.max_request_line = 100, .max_head = 4096, .max_headers = 0};
    assert_int_equal(parse_lim("GET / HTTP/1.1\r\n\r\n", 18, &none, "").rc, HTTP_PARSE_DONE);
    assert_int_equal(parse_lim("GET / HTTP/1.1\r\nA:\r\n\r\n", 22, &none, "").status, 431);
}

/* Byte-by-byte feeding of a 64 KiB head must stay linear: after every
 * AGAIN the resume offset is at most two bytes behind what was fed and never
 * moves back, so no byte is examined more than a bounded number of times. */
static void test_http_byte_feed_resume_offset_never_goes_back(void **state)
{
    const struct http_limits lim = {.max_request_line = 8192, .max_head = 65536,
                                    .max_headers = 4096};
    char *s = malloc(70000);
    assert_non_null(s);
    size_t len = (size_t)sprintf(s, "GET /announce HTTP/1.1\r\n");
    for (int i = 0; len < 65000; i++) {
        /* alternate line ends so both resume cases are crossed */
        len += (size_t)sprintf(s + len, "X-Pad-%d: aaaaaaaaaaaaaaaa%s", i, i % 2 ? "\n" : "\r\n");
    }
    len += (size_t)sprintf(s + len, "\r\n");
    struct http_parser ps;
    http_parser_reset(&ps);
    size_t prev = 0;
    struct http_request req;
    enum http_parse_result rc = HTTP_PARSE_AGAIN;
    size_t k = 0;
    while (k < len && rc == HTTP_PARSE_AGAIN) {
        k++;
        rc = http_parse_request(s, k, &ps, &lim, (struct mk_str){"", 0}, &req);
        if (rc == HTTP_PARSE_AGAIN) {
            assert_true(ps.scanned >= prev);
            assert_true(ps.scanned + 2 >= k);
            prev = ps.scanned;
        }
    }
    assert_int_equal(rc, HTTP_PARSE_DONE);
    assert_int_equal(k, len);
    assert_int_equal(req.head_len, len);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_parses_libtorrent_announce),
        cmocka_unit_test(test_http_target_bytes_judged_alike_at_every_place),
        cmocka_unit_test(test_http_every_split_gives_the_same_result),
        cmocka_unit_test(test_http_byte_by_byte_matches_whole_for_limit_errors),
        cmocka_unit_test(test_http_incomplete_head_asks_for_more),
        cmocka_unit_test(test_http_pipelined_requests_parse_one_after_another),
        cmocka_unit_test(test_http_accepts_bare_lf_line_ends),
        cmocka_unit_test(test_http_query_empty_without_question_mark),
        cmocka_unit_test(test_http_rejects_http_09_and_malformed_request_lines),
        cmocka_unit_test(test_http_rejects_tls_handshake_at_first_byte),
        cmocka_unit_test(test_http_rejects_malformed_headers),
        cmocka_unit_test(test_http_accepts_zero_content_length_and_odd_values),
        cmocka_unit_test(test_http_refuses_other_methods_with_405),
        cmocka_unit_test(test_http_refuses_other_versions_with_505),
        cmocka_unit_test(test_http_keep_alive_rules),
        cmocka_unit_test(test_http_reduces_absolute_form_to_path),
        cmocka_unit_test(test_http_captures_real_ip_header),
        cmocka_unit_test(test_http_request_line_limit_at_and_past_bound),
        cmocka_unit_test(test_http_request_line_limit_before_lf_arrives),
        cmocka_unit_test(test_http_head_limit_at_and_past_bound),
        cmocka_unit_test(test_http_header_count_limit_at_and_past_bound),
        cmocka_unit_test(test_http_byte_feed_resume_offset_never_goes_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
