/* tests/unit/test_udp.c: BEP 15 packets (proto/udp.c) and connection ids
 * (net/udp.c). Every packet ends at a guard page; error messages are checked
 * verbatim because clients get them in error packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <sys/socket.h>

#include "guard.h"
#include "net/udp.h"
#include "proto/udp.h"

/* Packet builder: big-endian fields appended to a buffer. */
struct pkt {
    uint8_t b[4096];
    size_t len;
};

static void put(struct pkt *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p->b[p->len++] = (uint8_t)(v >> (8 * i));
    }
}

static void put_bytes(struct pkt *p, const void *s, size_t n)
{
    memcpy(p->b + p->len, s, n);
    p->len += n;
}

/* A 98-byte announce: hash 0x11.., peer id 0x22.., the given counters. */
static struct pkt announce_pkt(uint64_t down, uint64_t left, uint64_t up, uint32_t event,
                               uint32_t ip, int32_t numwant, uint16_t port)
{
    struct pkt p = {.len = 0};
    uint8_t ih[20], pid[20];
    memset(ih, 0x11, 20);
    memset(pid, 0x22, 20);
    put(&p, 0x0102030405060708ULL, 8);
    put(&p, UDP_ANNOUNCE, 4);
    put(&p, 0xcafe, 4);
    put_bytes(&p, ih, 20);
    put_bytes(&p, pid, 20);
    put(&p, down, 8);
    put(&p, left, 8);
    put(&p, up, 8);
    put(&p, event, 4);
    put(&p, ip, 4);
    put(&p, 0xabcdef01, 4);
    put(&p, (uint32_t)numwant, 4);
    put(&p, port, 2);
    return p;
}

struct result {
    int rc;
    struct udp_announce a;
    struct mk_errbuf eb;
};

static struct result parse(const struct pkt *p)
{
    static struct result r;
    memset(&r, 0, sizeof(r));
    char *g = guard_dup(p->b, p->len);
    r.rc = udp_parse_announce((const uint8_t *)g, p->len, &r.a, &r.eb);
    guard_free(g, p->len);
    return r;
}

static void test_head_needs_16_bytes(void **state)
{
    struct pkt p = {.len = 0};
    put(&p, UDP_PROTOCOL_ID, 8);
    put(&p, UDP_CONNECT, 4);
    put(&p, 0x01020304, 4);
    struct udp_head h;
    for (size_t n = 0; n < 16; n++) {
        char *g = guard_dup(p.b, n);
        assert_int_equal(udp_parse_head((const uint8_t *)g, n, &h), MK_EINVAL);
        guard_free(g, n);
    }
    char *g = guard_dup(p.b, 16);
    assert_int_equal(udp_parse_head((const uint8_t *)g, 16, &h), MK_OK);
    guard_free(g, 16);
    assert_true(h.connection_id == UDP_PROTOCOL_ID);
    assert_int_equal(h.action, UDP_CONNECT);
    assert_int_equal(h.transaction_id, 0x01020304);
}

static void test_announce_fields(void **state)
{
    struct pkt p = announce_pkt(100, 200, 300, 2, 0x7f000001, 50, 6881);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_OK);
    assert_int_equal(r.a.req.downloaded, 100);
    assert_int_equal(r.a.req.left, 200);
    assert_int_equal(r.a.req.uploaded, 300);
    assert_int_equal(r.a.req.event, EVENT_STARTED);
    assert_true(r.a.req.has_ipv4);
    assert_memory_equal(r.a.req.ipv4, "\x7f\x00\x00\x01", 4);
    assert_int_equal(r.a.req.key, 0xabcdef01);
    assert_true(r.a.req.has_numwant);
    assert_int_equal(r.a.req.numwant, 50);
    assert_int_equal(r.a.req.port, 6881);
    assert_int_equal(r.a.req.info_hash[19], 0x11);
    assert_int_equal(r.a.req.peer_id[0], 0x22);
    assert_int_equal(r.a.url_len, 0);
}

static void test_announce_events_and_numwant_default(void **state)
{
    static const enum announce_event want[] = {EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED,
                                               EVENT_STOPPED};
    for (uint32_t e = 0; e < 4; e++) {
        struct pkt p = announce_pkt(0, 0, 0, e, 0, -1, 1);
        struct result r = parse(&p);
        assert_int_equal(r.rc, MK_OK);
        assert_int_equal(r.a.req.event, want[e]);
        assert_false(r.a.req.has_numwant);
        assert_false(r.a.req.has_ipv4);
    }
    struct pkt p = announce_pkt(0, 0, 0, 4, 0, -1, 1);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "event: unknown value 4");
}

static void test_announce_rejects_port_0_and_huge_counters(void **state)
{
    struct pkt p = announce_pkt(0, 0, 0, 0, 0, -1, 0);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "port: must be 1..65535");
    p = announce_pkt(0, (uint64_t)INT64_MAX + 1, 0, 0, 0, -1, 1);
    r = parse(&p);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "left: out of range");
    p = announce_pkt(0, 0, UINT64_MAX, 0, 0, -1, 1);
    r = parse(&p);
    assert_string_equal(r.eb.msg, "uploaded: out of range");
    p = announce_pkt((uint64_t)INT64_MAX, 0, 0, 0, 0, -1, 1);
    assert_int_equal(parse(&p).rc, MK_OK);
}

static void test_truncated_announce_is_refused_at_every_length(void **state)
{
    struct pkt full = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    for (size_t n = 0; n < UDP_ANNOUNCE_LEN; n++) {
        struct pkt p = full;
        p.len = n;
        struct result r = parse(&p);
        assert_int_equal(r.rc, MK_EINVAL);
        char want[64];
        snprintf(want, sizeof(want), "announce: %zu bytes, need 98", n);
        assert_string_equal(r.eb.msg, want);
    }
}

static void test_url_data_joined_across_options(void **state)
{
    struct pkt p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    put_bytes(&p, "\x01\x02\x05/abc/\x01\x02\x08" "announce\x00", 19);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_OK);
    assert_int_equal(r.a.url_len, 13);
    assert_memory_equal(r.a.url, "/abc/announce", 13);
}

static void test_url_data_without_end_of_options(void **state)
{
    /* python3-libtorrent 2.0.8 sends no end-of-options byte. */
    struct pkt p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    put_bytes(&p, "\x02\x0d/abc/announce", 15);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_OK);
    assert_int_equal(r.a.url_len, 13);
}

static void test_options_after_end_are_ignored(void **state)
{
    struct pkt p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    put_bytes(&p, "\x02\x02/a\x00\x02\x05/junk\x02\xff", 13);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_OK);
    assert_int_equal(r.a.url_len, 2);
    assert_memory_equal(r.a.url, "/a", 2);
}

static void test_unknown_option_is_skipped_by_length(void **state)
{
    struct pkt p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    put_bytes(&p, "\x07\x03xyz\x02\x02/b", 9);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_OK);
    assert_memory_equal(r.a.url, "/b", 2);
}

static void test_bad_option_lengths(void **state)
{
    struct pkt p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    put_bytes(&p, "\x02", 1);
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "option 2: missing length");
    p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    put_bytes(&p, "\x02\x05/ab", 5);
    r = parse(&p);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_string_equal(r.eb.msg, "option 2: length 5 past the packet");
    p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    put_bytes(&p, "\x09\x01", 2);
    r = parse(&p);
    assert_string_equal(r.eb.msg, "option 9: length 1 past the packet");
}

static void test_oversized_url_data_is_limited(void **state)
{
    struct pkt p = announce_pkt(0, 0, 0, 0, 0, -1, 1);
    uint8_t piece[255];
    memset(piece, 'a', sizeof(piece));
    for (int i = 0; i < 5; i++) { /* 1275 bytes > UDP_URL_MAX */
        put_bytes(&p, "\x02\xff", 2);
        put_bytes(&p, piece, sizeof(piece));
    }
    struct result r = parse(&p);
    assert_int_equal(r.rc, MK_ELIMIT);
    assert_string_equal(r.eb.msg, "url data: longer than 1024 bytes");
}

static int scrape(const struct pkt *p, size_t max, size_t *n, struct mk_errbuf *eb)
{
    char *g = guard_dup(p->b, p->len);
    const uint8_t *hashes = NULL;
    int rc = udp_parse_scrape((const uint8_t *)g, p->len, max, &hashes, n, eb);
    if (rc == MK_OK) {
        assert_ptr_equal(hashes, (const uint8_t *)g + 16);
    }
    guard_free(g, p->len);
    return rc;
}

static void test_scrape_counts_hashes_in_order(void **state)
{
    struct pkt p = {.len = 0};
    put(&p, 1, 8);
    put(&p, UDP_SCRAPE, 4);
    put(&p, 7, 4);
    struct mk_errbuf eb = {{0}};
    size_t n = 0;
    assert_int_equal(scrape(&p, 10, &n, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "info_hash: missing");
    for (int i = 0; i < 3; i++) {
        uint8_t h[20];
        memset(h, i, 20);
        put_bytes(&p, h, 20);
    }
    assert_int_equal(scrape(&p, 10, &n, &eb), MK_OK);
    assert_int_equal(n, 3);
    assert_int_equal(scrape(&p, 2, &n, &eb), MK_ELIMIT);
    assert_string_equal(eb.msg, "info_hash: more than 2");
    p.len -= 1;
    assert_int_equal(scrape(&p, 10, &n, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "info_hash: must be 20 bytes");
}

static void test_scrape_is_capped_at_74(void **state)
{
    struct pkt p = {.len = 0};
    put(&p, 1, 8);
    put(&p, UDP_SCRAPE, 4);
    put(&p, 7, 4);
    uint8_t h[20] = {0};
    for (int i = 0; i < 75; i++) {
        put_bytes(&p, h, 20);
    }
    size_t n;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(scrape(&p, 1000, &n, &eb), MK_ELIMIT);
    assert_string_equal(eb.msg, "info_hash: more than 74");
    p.len -= 20;
    assert_int_equal(scrape(&p, 1000, &n, &eb), MK_OK);
    assert_int_equal(n, 74);
}

static void test_writers_are_byte_exact_and_bounded(void **state)
{
    uint8_t out[64];
    assert_int_equal(udp_put_connect(out, 15, 1, 2), 0);
    assert_int_equal(udp_put_connect(out, 16, 0x01020304, 0x1112131415161718ULL), 16);
    assert_memory_equal(out, "\0\0\0\0\x01\x02\x03\x04\x11\x12\x13\x14\x15\x16\x17\x18", 16);
    assert_int_equal(udp_put_announce_head(out, 19, 1, 2, 3, 4), 0);
    assert_int_equal(udp_put_announce_head(out, 20, 9, 1800, 3, 4), 20);
    assert_memory_equal(out, "\0\0\0\x01\0\0\0\x09\0\0\x07\x08\0\0\0\x03\0\0\0\x04", 20);
    assert_int_equal(udp_put_scrape_head(out, 8, 5), 8);
    assert_memory_equal(out, "\0\0\0\x02\0\0\0\x05", 8);
    assert_int_equal(udp_put_scrape_entry(out, 11, 1, 2, 3), 0);
    assert_int_equal(udp_put_scrape_entry(out, 12, 1, 2, 3), 12);
    assert_memory_equal(out, "\0\0\0\x01\0\0\0\x02\0\0\0\x03", 12);
    assert_int_equal(udp_put_error(out, 10, 6, "abc"), 0);
    assert_int_equal(udp_put_error(out, 11, 6, "abc"), 11);
    assert_memory_equal(out, "\0\0\0\x03\0\0\0\x06" "abc", 11);
}

static void test_connection_id_depends_on_address_window_and_key(void **state)
{
    struct tracker t;
    memset(&t, 0, sizeof(t));
    memset(t.udp_key, 7, sizeof(t.udp_key));
    struct tracker_addr a = {.family = AF_INET, .ip = {127, 0, 0, 1}};
    struct tracker_addr b = a;
    b.ip[3] = 2;
    uint64_t id = udp_connection_id(&t, 10, &a);
    assert_true(id == udp_connection_id(&t, 10, &a));
    assert_true(id != udp_connection_id(&t, 11, &a));
    assert_true(id != udp_connection_id(&t, 10, &b));
    struct tracker_addr v6 = a;
    v6.family = AF_INET6;
    assert_true(id != udp_connection_id(&t, 10, &v6));
    t.udp_key[0] = 8;
    assert_true(id != udp_connection_id(&t, 10, &a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_needs_16_bytes),
        cmocka_unit_test(test_announce_fields),
        cmocka_unit_test(test_announce_events_and_numwant_default),
        cmocka_unit_test(test_announce_rejects_port_0_and_huge_counters),
        cmocka_unit_test(test_truncated_announce_is_refused_at_every_length),
        cmocka_unit_test(test_url_data_joined_across_options),
        cmocka_unit_test(test_url_data_without_end_of_options),
        cmocka_unit_test(test_options_after_end_are_ignored),
        cmocka_unit_test(test_unknown_option_is_skipped_by_length),
        cmocka_unit_test(test_bad_option_lengths),
        cmocka_unit_test(test_oversized_url_data_is_limited),
        cmocka_unit_test(test_scrape_counts_hashes_in_order),
        cmocka_unit_test(test_scrape_is_capped_at_74),
        cmocka_unit_test(test_writers_are_byte_exact_and_bounded),
        cmocka_unit_test(test_connection_id_depends_on_address_window_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
