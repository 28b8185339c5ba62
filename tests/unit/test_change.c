/* tests/unit/test_change.c: cluster change notices to text and back
 * (cluster/change.c), with every parsed payload ending at a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/change.h"
#include "guard.h"

static int parse(const char *text, struct change *out, struct mk_errbuf *eb)
{
    size_t len = strlen(text);
    char *g = guard_dup(text, len);
    int rc = change_parse(g, len, out, eb);
    guard_free(g, len);
    return rc;
}

static void roundtrip(const struct change *c, const char *want)
{
    char buf[CHANGE_PAYLOAD_MAX];
    int n = change_put(c, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
    struct change back;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(parse(buf, &back, &eb), 0);
    assert_int_equal(back.origin, c->origin);
    assert_int_equal(back.kind, c->kind);
    assert_int_equal(back.id, c->id);
    assert_memory_equal(back.info_hash, c->info_hash, 20);
}

static void test_each_kind_round_trips(void **state)
{
    (void)state;
    struct change c = {.origin = 1, .kind = CHANGE_USER, .id = 42};
    roundtrip(&c, "1:user:42");
    c = (struct change){.origin = 65535, .kind = CHANGE_CLASS, .id = 4294967295u};
    roundtrip(&c, "65535:class:4294967295");
    c = (struct change){.origin = 2, .kind = CHANGE_TORRENT};
    for (int i = 0; i < 20; i++) {
        c.info_hash[i] = (uint8_t)(i * 13 + 1);
    }
    roundtrip(&c, "2:torrent:010e1b2835424f5c697683909daab7c4d1deebf8");
    c.kind = CHANGE_TOKEN;
    c.id = 7;
    roundtrip(&c, "2:token:7:010e1b2835424f5c697683909daab7c4d1deebf8");
    c = (struct change){.origin = 9, .kind = CHANGE_WHITELIST};
    roundtrip(&c, "9:whitelist");
    c = (struct change){.origin = 9, .kind = CHANGE_SETTINGS};
    roundtrip(&c, "9:settings");
}

static void test_put_refuses_origin_zero_and_small_buffers(void **state)
{
    (void)state;
    char buf[CHANGE_PAYLOAD_MAX];
    struct change c = {.origin = 0, .kind = CHANGE_USER, .id = 1};
    assert_int_equal(change_put(&c, buf, sizeof(buf)), MK_EINVAL);
    c.origin = 1;
    c.kind = (enum change_kind)99;
    assert_int_equal(change_put(&c, buf, sizeof(buf)), MK_EINVAL);
    c.kind = CHANGE_USER;
    assert_int_equal(change_put(&c, buf, 5), MK_ELIMIT);
}

static void expect_bad(const char *text, const char *msg)
{
    struct change c;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(parse(text, &c, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, msg);
}

static void test_parse_rejects_malformed_payloads(void **state)
{
    (void)state;
    expect_bad("", "change: origin must be a node id 1..65535");
    expect_bad("0:user:1", "change: origin must be a node id 1..65535");
    expect_bad("65536:user:1", "change: origin must be a node id 1..65535");
    expect_bad("01:user:1", "change: origin must be a node id 1..65535");
    expect_bad("-1:user:1", "change: origin must be a node id 1..65535");
    expect_bad("1", "change: origin must be a node id 1..65535");
    expect_bad("1:", "change: unknown kind");
    expect_bad("1:users:1", "change: unknown kind");
    expect_bad("1:user", "change: malformed key of a user change");
    expect_bad("1:user:", "change: malformed key of a user change");
    expect_bad("1:user:4294967296", "change: malformed key of a user change");
    expect_bad("1:user:12x", "change: malformed key of a user change");
    expect_bad("1:class:007", "change: malformed key of a class change");
    expect_bad("1:torrent:010e1b2835424f5c697683909daab7c4d1deebf", "change: malformed key of a torrent change");
    expect_bad("1:torrent:010E1B2835424F5C697683909DAAB7C4D1DEEBF8", "change: malformed key of a torrent change");
    expect_bad("1:torrent:010e1b2835424f5c697683909daab7c4d1deebf80", "change: malformed key of a torrent change");
    expect_bad("1:token:7", "change: malformed key of a token change");
    expect_bad("1:whitelist:", "change: malformed key of a whitelist change");
    expect_bad("1:settings:x", "change: malformed key of a settings change");
    char big[200];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_bad(big, "change: 199 bytes, at most 96");
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(change_kind_name(CHANGE_TOKEN), "token");
    assert_string_equal(change_kind_name((enum change_kind)0), "?");
    assert_string_equal(change_kind_name((enum change_kind)42), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_kind_round_trips),
        cmocka_unit_test(test_put_refuses_origin_zero_and_small_buffers),
        cmocka_unit_test(test_parse_rejects_malformed_payloads),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
