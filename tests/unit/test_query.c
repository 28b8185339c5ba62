/* tests/unit/test_query.c: announce_parse and scrape_parse.
 * Every query ends at a guard page; messages are checked verbatim because
 * clients see them as the failure reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/query.h"

/* Hash d8e6c65cad1f3db0f9afe093cbbee3d5dac6163c, escaped byte by byte. */
#define IH "%d8%e6%c6%5c%ad%1f%3d%b0%f9%af%e0%93%cb%be%e3%d5%da%c6%16%3c"
static const uint8_t ih_bytes[20] = {0xd8, 0xe6, 0xc6, 0x5c, 0xad, 0x1f, 0x3d, 0xb0, 0xf9, 0xaf,
                                     0xe0, 0x93, 0xcb, 0xbe, 0xe3, 0xd5, 0xda, 0xc6, 0x16, 0x3c};
/* "-LT2090-" then 12 bytes, unreserved ones raw as libtorrent sends them. */
#define PID "-LT2090-a1%28%a5%c1b2%8b%8e%8f%3dZ"
static const uint8_t pid_bytes[20] = {'-', 'L',  'T',  '2',  '0', '9', '0',  '-',  'a',  '1',
                                      0x28, 0xa5, 0xc1, 'b', '2', 0x8b, 0x8e, 0x8f, 0x3d, 'Z'};
#define REQ "info_hash=" IH "&peer_id=" PID "&port=6881&uploaded=0&downloaded=0&left=0"

struct result {
    int rc;
    struct announce_req req;
    struct mk_errbuf eb;
};

static struct result announce(const char *q)
{
    struct result r;
    memset(&r, 0, sizeof(r));
    size_t len = strlen(q);
    char *g = guard_dup(q, len);
    r.rc = announce_parse(g, len, QUERY_MAX_PARAMS, &r.req, &r.eb);
    guard_free(g, len);
    return r;
}

static void expect_fail(const char *q, int rc, const char *msg)
{
    struct result r = announce(q);
    if (r.rc != rc || strcmp(r.eb.msg, msg) != 0) {
        print_error("query: %s\n  got %d \"%s\", want %d \"%s\"\n", q, r.rc, r.eb.msg, rc, msg);
    }
    assert_int_equal(r.rc, rc);
    assert_string_equal(r.eb.msg, msg);
}

static struct result expect_ok(const char *q)
{
    struct result r = announce(q);
    if (r.rc != 0) {
        print_error("query: %s\n  failed: %s\n", q, r.eb.msg);
    }
    assert_int_equal(r.rc, 0);
    return r;
}

static void test_announce_parses_full_libtorrent_request(void **state)
{
    struct result r = expect_ok(
        "info_hash=" IH "&peer_id=" PID "&port=6881&uploaded=1024&downloaded=2048"
        "&left=1048576&corrupt=7&key=6F1B3F0A&event=started&numwant=200&compact=1"
        "&no_peer_id=1&supportcrypto=1&redundant=0&ipv6=2001%3Adb8%3A%3A1");
    assert_memory_equal(r.req.info_hash, ih_bytes, 20);
    assert_memory_equal(r.req.peer_id, pid_bytes, 20);
    assert_int_equal(r.req.port, 6881);
    assert_int_equal(r.req.uploaded, 1024);
    assert_int_equal(r.req.downloaded, 2048);
    assert_int_equal(r.req.left, 1048576);
    assert_int_equal(r.req.corrupt, 7);
    assert_true(r.req.has_key);
    assert_int_equal(r.req.key, 0x6F1B3F0A);
    assert_int_equal(r.req.event, EVENT_STARTED);
    assert_true(r.req.has_numwant);
    assert_int_equal(r.req.numwant, 200);
    assert_true(r.req.compact);
    assert_true(r.req.no_peer_id);
    assert_false(r.req.has_ipv4);
    assert_true(r.req.has_ipv6);
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(r.req.ipv6, v6, 16);
}

/* Captured from libtorrent 2.0.8 announcing to a local tracker. */
static void test_announce_parses_captured_libtorrent_2_0_8_query(void **state)
{
    static const uint8_t ih[20] = {0xf0, 0x92, 's',  0x2f, 0x5c, 'q',  'o',  'D',  0xe6, 0xd7,
                                   0x95, 0xae, 0xe0, 0x8d, '5',  0xca, 0x9f, 0x9c, 0xd3, 'b'};
    struct result r = expect_ok(
        "info_hash=%f0%92s%2f%5cqoD%e6%d7%95%ae%e0%8d5%ca%9f%9c%d3b&peer_id=-LT2080-xvjl_Ww(_(HB"
        "&port=34697&uploaded=0&downloaded=0&left=300000&corrupt=0&key=6992661F&event=started"
        "&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0");
    assert_memory_equal(r.req.info_hash, ih, 20);
    assert_memory_equal(r.req.peer_id, "-LT2080-xvjl_Ww(_(HB", 20);
    assert_int_equal(r.req.port, 34697);
    assert_int_equal(r.req.left, 300000);
    assert_int_equal(r.req.key, 0x6992661F);
    assert_int_equal(r.req.event, EVENT_STARTED);
    assert_int_equal(r.req.numwant, 200);
}

static void test_announce_parses_transmission_request(void **state)
{
    struct result r = expect_ok("info_hash=" IH "&peer_id=-TR4050-abcdefghijkl&port=51413"
                                "&uploaded=0&downloaded=0&left=0&numwant=80&key=1a2b3c4d"
                                "&compact=1&supportcrypto=1&event=completed");
    assert_memory_equal(r.req.peer_id, "-TR4050-abcdefghijkl", 20);
    assert_int_equal(r.req.port, 51413);
    assert_int_equal(r.req.numwant, 80);
    assert_int_equal(r.req.key, 0x1a2b3c4d);
    assert_int_equal(r.req.event, EVENT_COMPLETED);
}

static void test_announce_defaults_for_optional_keys(void **state)
{
    struct result r = expect_ok(REQ);
    assert_int_equal(r.req.event, EVENT_NONE);
    assert_false(r.req.has_numwant);
    assert_false(r.req.has_key);
    assert_false(r.req.compact);
    assert_false(r.req.no_peer_id);
    assert_int_equal(r.req.corrupt, 0);
    assert_false(r.req.has_ipv4);
    assert_false(r.req.has_ipv6);
}

static void test_announce_reports_each_missing_required_key(void **state)
{
    static const char *const keys[] = {"info_hash", "peer_id",    "port",
                                       "uploaded",  "downloaded", "left"};
    static const char *const parts[] = {"info_hash=" IH, "peer_id=" PID, "port=6881",
                                        "uploaded=0",    "downloaded=0", "left=0"};
    for (size_t skip = 0; skip < 6; skip++) {
        char q[512] = "";
        for (size_t i = 0; i < 6; i++) {
            if (i != skip) {
                strcat(q, "&");
                strcat(q, parts[i]);
            }
        }
        char msg[64];
        snprintf(msg, sizeof(msg), "%s: missing", keys[skip]);
        expect_fail(q, MK_EINVAL, msg);
    }
    expect_fail("", MK_EINVAL, "info_hash: missing");
}

static void test_announce_rejects_19_and_21_byte_hashes(void **state)
{
    expect_fail("info_hash=1234567890123456789&peer_id=" PID
                "&port=1&uploaded=0&downloaded=0&left=0",
                MK_EINVAL, "info_hash: must be 20 bytes");
    expect_fail("info_hash=" IH "%00&peer_id=" PID "&port=1&uploaded=0&downloaded=0&left=0",
                MK_EINVAL, "info_hash: must be 20 bytes");
    expect_fail("info_hash=&peer_id=" PID "&port=1&uploaded=0&downloaded=0&left=0", MK_EINVAL,
                "info_hash: must be 20 bytes");
    expect_fail("info_hash=" IH "&peer_id=1234567890123456789&port=1&uploaded=0&downloaded=0"
                "&left=0",
                MK_EINVAL, "peer_id: must be 20 bytes");
    expect_fail("info_hash=" IH "&peer_id=123456789012345678901&port=1&uploaded=0&downloaded=0"
                "&left=0",
                MK_EINVAL, "peer_id: must be 20 bytes");
}

static void test_announce_accepts_hash_with_plus_and_nul(void **state)
{
    struct result r = expect_ok("info_hash=%00+++++++++++++++++++&peer_id=" PID
                                "&port=1&uploaded=0&downloaded=0&left=0");
    assert_int_equal(r.req.info_hash[0], 0);
    assert_int_equal(r.req.info_hash[1], '+');
    assert_int_equal(r.req.info_hash[19], '+');
}

static void test_announce_rejects_bad_escape_in_hash(void **state)
{
    expect_fail("info_hash=%d8%e6%c6%5c%ad%1f%3d%b0%f9%af%e0%93%cb%be%e3%d5%da%c6%16%3", MK_EINVAL,
                "info_hash: bad percent-encoding");
    expect_fail("info_hash=" IH "&peer_id=-LT2090-a1%28%a5%c1b2%8b%8e%8f%zz", MK_EINVAL,
                "peer_id: bad percent-encoding");
}

static void test_announce_rejects_known_key_given_twice(void **state)
{
    expect_fail(REQ "&port=6882", MK_EINVAL, "port: given twice");
    expect_fail(REQ "&info_hash=" IH, MK_EINVAL, "info_hash: given twice");
    expect_fail(REQ "&event=started&event=started", MK_EINVAL, "event: given twice");
    expect_fail(REQ "&key=1&key=2", MK_EINVAL, "key: given twice");
    /* Every name the parser knows is found (so a second one is refused),
     * and a name one byte short or long is not one of them. */
    static const char *const known[] = {"info_hash", "peer_id", "port", "uploaded", "downloaded",
                                        "left", "event", "numwant", "compact", "no_peer_id",
                                        "corrupt", "key", "ipv4", "ipv6"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        char q[512], msg[64];
        snprintf(q, sizeof(q), "%s=x&%s=y", known[i], known[i]);
        struct result r = announce(q);
        snprintf(msg, sizeof(msg), "%s: ", known[i]);
        if (r.rc == 0 || strncmp(r.eb.msg, msg, strlen(msg)) != 0) {
            print_error("key %s: got %d \"%s\"\n", known[i], r.rc, r.eb.msg);
        }
        assert_int_not_equal(r.rc, 0);
        assert_memory_equal(r.eb.msg, msg, strlen(msg));
        size_t n = strlen(known[i]);
        snprintf(q, sizeof(q), "%s&%.*s=1&%.*s=2&%s_=1&%s_=2", REQ, (int)(n - 1), known[i],
                 (int)(n - 1), known[i], known[i], known[i]);
        expect_ok(q);
    }
}

static void test_announce_ignores_unknown_keys_even_repeated(void **state)
{
    struct result r = expect_ok("supportcrypto=1&" REQ "&redundant=0&passkey=x&flag&flag"
                                "&trackerid=&&=&ip=10.0.0.1&Port=1&info_hash_=zz");
    assert_int_equal(r.req.port, 6881);
}

static void test_announce_port_bounds(void **state)
{
    #define base "info_hash=" IH "&peer_id=" PID "&uploaded=0&downloaded=0&left=0"
    expect_fail(base "&port=0", MK_EINVAL, "port: must be between 1 and 65535");
    expect_fail(base "&port=65536", MK_EINVAL, "port: must be between 1 and 65535");
    expect_fail(base "&port=99999999999999999999999", MK_EINVAL,
                "port: must be between 1 and 65535");
    expect_fail(base "&port=-1", MK_EINVAL, "port: not a number");
    expect_fail(base "&port=", MK_EINVAL, "port: not a number");
    expect_fail(base "&port=80x", MK_EINVAL, "port: not a number");
    assert_int_equal(expect_ok(base "&port=65535").req.port, 65535);
    assert_int_equal(expect_ok(base "&port=1").req.port, 1);
    assert_int_equal(expect_ok(base "&port=000080").req.port, 80);
#undef base
}

static void test_announce_counters_range_and_syntax(void **state)
{
    static const char *const keys[] = {"uploaded", "downloaded", "left", "corrupt"};
    for (size_t k = 0; k < 4; k++) {
        char q[512], msg[64];
        static const char *const bad[] = {"-1", "+1", "", " 1", "1.5", "0x10", "1e3", "%31"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            snprintf(q, sizeof(q), "%s=%s&%s", keys[k], bad[i], REQ);
            /* the parse stops at the bad value, before the duplicate in REQ */
            snprintf(msg, sizeof(msg), "%s: not a number", keys[k]);
            expect_fail(q, MK_EINVAL, msg);
        }
        static const char *const huge[] = {"9223372036854775808", "18446744073709551615",
                                           "18446744073709551616", "99999999999999999999999"};
        for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
            snprintf(q, sizeof(q), "%s=%s&%s", keys[k], huge[i], REQ);
            snprintf(msg, sizeof(msg), "%s: out of range", keys[k]);
            expect_fail(q, MK_EINVAL, msg);
        }
    }
    struct result r = expect_ok("info_hash=" IH "&peer_id=" PID "&port=1"
                                "&uploaded=9223372036854775807&downloaded=00000000000000000000001"
                                "&left=9223372036854775806&corrupt=9223372036854775807");
    assert_int_equal(r.req.uploaded, INT64_MAX);
    assert_int_equal(r.req.downloaded, 1);
    assert_int_equal(r.req.left, INT64_MAX - 1);
    assert_int_equal(r.req.corrupt, INT64_MAX);
}

static void test_announce_numwant_clamps_at_uint32_max(void **state)
{
    assert_int_equal(expect_ok(REQ "&numwant=0").req.numwant, 0);
    assert_int_equal(expect_ok(REQ "&numwant=4294967295").req.numwant, UINT32_MAX);
    assert_int_equal(expect_ok(REQ "&numwant=4294967296").req.numwant, UINT32_MAX);
    assert_int_equal(expect_ok(REQ "&numwant=999999999999999999999999999").req.numwant,
                     UINT32_MAX);
    expect_fail(REQ "&numwant=-1", MK_EINVAL, "numwant: not a number");
    expect_fail(REQ "&numwant=", MK_EINVAL, "numwant: not a number");
}

static void test_announce_events_including_paused(void **state)
{
    assert_int_equal(expect_ok(REQ "&event=").req.event, EVENT_NONE);
    assert_int_equal(expect_ok(REQ "&event").req.event, EVENT_NONE);
    assert_int_equal(expect_ok(REQ "&event=started").req.event, EVENT_STARTED);
    assert_int_equal(expect_ok(REQ "&event=stopped").req.event, EVENT_STOPPED);
    assert_int_equal(expect_ok(REQ "&event=completed").req.event, EVENT_COMPLETED);
    assert_int_equal(expect_ok(REQ "&event=paused").req.event, EVENT_PAUSED);
    expect_fail(REQ "&event=Started", MK_EINVAL, "event: unknown value");
    expect_fail(REQ "&event=update", MK_EINVAL, "event: unknown value");
    expect_fail(REQ "&event=started%00", MK_EINVAL, "event: unknown value");
}

static void test_announce_flags_must_be_0_or_1(void **state)
{
    assert_false(expect_ok(REQ "&compact=0").req.compact);
    assert_true(expect_ok(REQ "&compact=1").req.compact);
    assert_true(expect_ok(REQ "&no_peer_id=1").req.no_peer_id);
    expect_fail(REQ "&compact=2", MK_EINVAL, "compact: must be 0 or 1");
    expect_fail(REQ "&compact", MK_EINVAL, "compact: must be 0 or 1");
    expect_fail(REQ "&compact=01", MK_EINVAL, "compact: must be 0 or 1");
    expect_fail(REQ "&no_peer_id=true", MK_EINVAL, "no_peer_id: must be 0 or 1");
}

static void test_announce_key_keeps_first_8_hex_digits(void **state)
{
    struct result r = expect_ok(REQ "&key=abcdef0123");
    assert_true(r.req.has_key);
    assert_int_equal(r.req.key, 0xabcdef01);
    r = expect_ok(REQ "&key=FF");
    assert_true(r.req.has_key);
    assert_int_equal(r.req.key, 0xff);
    assert_false(expect_ok(REQ "&key=zz12ab34").req.has_key);
    assert_false(expect_ok(REQ "&key=1a2b3c4g").req.has_key);
    assert_false(expect_ok(REQ "&key=").req.has_key);
}

static void test_announce_ipv4_address_and_port(void **state)
{
    struct result r = expect_ok(REQ "&ipv4=192.0.2.7");
    assert_true(r.req.has_ipv4);
    assert_memory_equal(r.req.ipv4, "\xc0\x00\x02\x07", 4);
    r = expect_ok(REQ "&ipv4=192.0.2.8%3A6881");
    assert_memory_equal(r.req.ipv4, "\xc0\x00\x02\x08", 4);
    r = expect_ok(REQ "&ipv4=192.0.2.9:6881");
    assert_memory_equal(r.req.ipv4, "\xc0\x00\x02\x09", 4);
    expect_fail(REQ "&ipv4=192.0.2", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=192.0.2.1:0", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=192.0.2.1:65536", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=192.0.2.1:", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=::1", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=1.2.3.4%00x", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=256.1.1.1", MK_EINVAL, "ipv4: not an address");
    expect_fail(REQ "&ipv4=1.2.3.4%3", MK_EINVAL, "ipv4: bad percent-encoding");
    expect_fail(REQ "&ipv4=11111111111111111111111111111111111111111111111111111111111111111",
                MK_EINVAL, "ipv4: not an address");
}

static void test_announce_ipv6_address_and_bracketed_port(void **state)
{
    static const uint8_t loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t doc[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    assert_memory_equal(expect_ok(REQ "&ipv6=::1").req.ipv6, loop, 16);
    assert_memory_equal(expect_ok(REQ "&ipv6=%5B2001%3Adb8%3A%3A2%5D%3A6881").req.ipv6, doc, 16);
    assert_memory_equal(expect_ok(REQ "&ipv6=[2001:db8::2]:1").req.ipv6, doc, 16);
    assert_memory_equal(expect_ok(REQ "&ipv6=[::1]").req.ipv6, loop, 16);
    expect_fail(REQ "&ipv6=[::1", MK_EINVAL, "ipv6: not an address");
    expect_fail(REQ "&ipv6=[::1]:", MK_EINVAL, "ipv6: not an address");
    expect_fail(REQ "&ipv6=[::1]:0", MK_EINVAL, "ipv6: not an address");
    expect_fail(REQ "&ipv6=[::1]6881", MK_EINVAL, "ipv6: not an address");
    expect_fail(REQ "&ipv6=192.0.2.1", MK_EINVAL, "ipv6: not an address");
    expect_fail(REQ "&ipv6=fe80::1%25eth0", MK_EINVAL, "ipv6: not an address");
    expect_fail(REQ "&ipv6=%zz", MK_EINVAL, "ipv6: bad percent-encoding");
}

static void test_announce_parameter_count_limit(void **state)
{
    char q[2048];
    strcpy(q, REQ); /* 6 parameters */
    for (int i = 6; i < QUERY_MAX_PARAMS; i++) {
        strcat(q, "&x=1");
    }
    expect_ok(q);
    strcat(q, "&&&"); /* empty pieces do not count */
    expect_ok(q);
    strcat(q, "&y");
    expect_fail(q, MK_ELIMIT, "too many parameters");
}

static void test_announce_parameter_cap_is_the_callers(void **state)
{
    (void)state;
    char q[512];
    strcpy(q, REQ "&x=1&y=2"); /* 8 parameters */
    struct announce_req req;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(announce_parse(q, strlen(q), 8, &req, &eb), MK_OK);
    strcat(q, "&z=3");
    assert_int_equal(announce_parse(q, strlen(q), 8, &req, &eb), MK_ELIMIT);
    assert_string_equal(eb.msg, "too many parameters");
    assert_int_equal(announce_parse(q, strlen(q), 9, &req, &eb), MK_OK);
}

/* scrape */

struct scrape_result {
    int rc;
    uint8_t hashes[8][20];
    size_t n;
    struct mk_errbuf eb;
};

static struct scrape_result scrape(const char *q, size_t max)
{
    struct scrape_result r;
    memset(&r, 0, sizeof(r));
    size_t len = strlen(q);
    char *g = guard_dup(q, len);
    r.rc = scrape_parse(g, len, r.hashes, max, &r.n, &r.eb);
    guard_free(g, len);
    return r;
}

#define H(c) "info_hash=" c c c c c c c c c c c c c c c c c c c c

static void test_scrape_sorts_and_removes_duplicates(void **state)
{
    struct scrape_result r = scrape(H("c") "&" H("a") "&x=1&" H("%63") "&" H("b") "&" H("a"), 8);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 3);
    assert_memory_equal(r.hashes[0], "aaaaaaaaaaaaaaaaaaaa", 20);
    assert_memory_equal(r.hashes[1], "bbbbbbbbbbbbbbbbbbbb", 20);
    assert_memory_equal(r.hashes[2], "cccccccccccccccccccc", 20);
}

static void test_scrape_single_binary_hash(void **state)
{
    struct scrape_result r = scrape("info_hash=" IH, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 1);
    assert_memory_equal(r.hashes[0], ih_bytes, 20);
}

static void test_scrape_accepts_max_distinct_with_repeats(void **state)
{
    struct scrape_result r = scrape(H("b") "&" H("a") "&" H("b") "&" H("a"), 2);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 2);
}

static void test_scrape_rejects_more_than_max_distinct(void **state)
{
    struct scrape_result r = scrape(H("b") "&" H("a") "&" H("c"), 2);
    assert_int_equal(r.rc, MK_ELIMIT);
    assert_string_equal(r.eb.msg, "info_hash: more than 2 given");
    r = scrape(H("a"), 0);
    assert_int_equal(r.rc, MK_ELIMIT);
    assert_string_equal(r.eb.msg, "info_hash: more than 0 given");
}

static void test_scrape_without_hash_is_missing(void **state)
{
    static const char *const qs[] = {"", "&&", "passkey=abc", "info_hashes=x", "INFO_HASH=x"};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        struct scrape_result r = scrape(qs[i], 8);
        assert_int_equal(r.rc, MK_EINVAL);
        assert_string_equal(r.eb.msg, "info_hash: missing");
        assert_int_equal(r.n, 0);
    }
}

static void test_scrape_rejects_21_byte_hash(void **state)
{
    struct scrape_result r = scrape(H("a") "&" H("b") "b", 8);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "info_hash: must be 20 bytes");
    r = scrape("info_hash", 8);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "info_hash: must be 20 bytes");
    r = scrape("info_hash=%4", 8);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "info_hash: bad percent-encoding");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announce_parses_full_libtorrent_request),
        cmocka_unit_test(test_announce_parses_captured_libtorrent_2_0_8_query),
        cmocka_unit_test(test_announce_parses_transmission_request),
        cmocka_unit_test(test_announce_defaults_for_optional_keys),
        cmocka_unit_test(test_announce_reports_each_missing_required_key),
        cmocka_unit_test(test_announce_rejects_19_and_21_byte_hashes),
        cmocka_unit_test(test_announce_accepts_hash_with_plus_and_nul),
        cmocka_unit_test(test_announce_rejects_bad_escape_in_hash),
        cmocka_unit_test(test_announce_rejects_known_key_given_twice),
        cmocka_unit_test(test_announce_ignores_unknown_keys_even_repeated),
        cmocka_unit_test(test_announce_port_bounds),
        cmocka_unit_test(test_announce_counters_range_and_syntax),
        cmocka_unit_test(test_announce_numwant_clamps_at_uint32_max),
        cmocka_unit_test(test_announce_events_including_paused),
        cmocka_unit_test(test_announce_flags_must_be_0_or_1),
        cmocka_unit_test(test_announce_key_keeps_first_8_hex_digits),
        cmocka_unit_test(test_announce_ipv4_address_and_port),
        cmocka_unit_test(test_announce_ipv6_address_and_bracketed_port),
        cmocka_unit_test(test_announce_parameter_count_limit),
        cmocka_unit_test(test_announce_parameter_cap_is_the_callers),
        cmocka_unit_test(test_scrape_sorts_and_removes_duplicates),
        cmocka_unit_test(test_scrape_single_binary_hash),
        cmocka_unit_test(test_scrape_accepts_max_distinct_with_repeats),
        cmocka_unit_test(test_scrape_rejects_more_than_max_distinct),
        cmocka_unit_test(test_scrape_without_hash_is_missing),
        cmocka_unit_test(test_scrape_rejects_21_byte_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
