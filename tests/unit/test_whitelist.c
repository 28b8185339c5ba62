/* tests/unit/test_whitelist.c: the client whitelist and workers' views (auth/whitelist.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/whitelist.h"

static struct whitelist_row row_of(const void *prefix, size_t len, const char *name)
{
    struct whitelist_row r;

    memset(&r, 0, sizeof(r));
    memcpy(r.prefix, prefix, len);
    r.prefix_len = (uint8_t)len;
    snprintf(r.name, sizeof(r.name), "%s", name);
    return r;
}

/* peer_id from a string padded with '0' to 20 bytes. */
static void peer_id_of(const char *s, uint8_t out[20])
{
    size_t n = strlen(s);

    memset(out, '0', 20);
    memcpy(out, s, n < 20 ? n : 20);
}

struct fixture {
    struct whitelist *wl;
    struct whitelist_view v;
};

static int setup(void **state)
{
    static struct fixture f;

    f.wl = whitelist_new();
    if (f.wl == NULL) {
        return -1;
    }
    whitelist_view_init(&f.v);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    whitelist_view_fini(&f->v);
    whitelist_free(f->wl);
    return 0;
}

static const char *match_name(struct fixture *f, const char *peer)
{
    uint8_t id[20];
    const struct whitelist_row *r;

    peer_id_of(peer, id);
    r = whitelist_match(&f->v, id);
    return r ? r->name : NULL;
}

static void test_empty_list_matches_nothing(void **state)
{
    struct fixture *f = *state;
    uint8_t id[20];

    assert_int_equal(whitelist_count(f->wl), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    peer_id_of("-qB4500-", id);
    assert_null(whitelist_match(&f->v, id));
    /* Replacing with an empty list is also empty. */
    assert_int_equal(whitelist_replace(f->wl, NULL, 0), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_null(whitelist_match(&f->v, id));
}

static void test_prefixes_of_length_1_3_8_20_match(void **state)
{
    struct fixture *f = *state;
    uint8_t full[20];
    struct whitelist_row rows[4];

    peer_id_of("-XX1234-abcdefghijkl", full);
    rows[0] = row_of("M", 1, "Mainline");
    rows[1] = row_of("-TR", 3, "Transmission");
    rows[2] = row_of("-DE2110-", 8, "Deluge 2.1.1");
    rows[3] = row_of(full, 20, "Exact");
    assert_int_equal(whitelist_replace(f->wl, rows, 4), 0);
    assert_int_equal(whitelist_count(f->wl), 4);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);

    assert_string_equal(match_name(f, "M7-2-3--"), "Mainline");
    assert_string_equal(match_name(f, "-TR4050-"), "Transmission");
    assert_string_equal(match_name(f, "-DE2110-"), "Deluge 2.1.1");
    assert_null(match_name(f, "-DE2100-"));
    assert_string_equal(match_name(f, "-XX1234-abcdefghijkl"), "Exact");
    assert_null(match_name(f, "-XX1234-abcdefghijkm"));
}

static void test_longest_prefix_wins_whatever_the_order(void **state)
{
    struct fixture *f = *state;
    struct whitelist_row rows[3];

    rows[0] = row_of("-qB", 3, "qBittorrent");
    rows[1] = row_of("-qB4", 4, "qBittorrent 4");
    rows[2] = row_of("-qB45", 5, "qBittorrent 4.5");
    assert_int_equal(whitelist_replace(f->wl, rows, 3), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_string_equal(match_name(f, "-qB4500-"), "qBittorrent 4.5");
    assert_string_equal(match_name(f, "-qB4600-"), "qBittorrent 4");
    assert_string_equal(match_name(f, "-qB5000-"), "qBittorrent");

    /* Same rows, longest given first. */
    rows[0] = row_of("-qB45", 5, "qBittorrent 4.5");
    rows[2] = row_of("-qB", 3, "qBittorrent");
    assert_int_equal(whitelist_replace(f->wl, rows, 3), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_string_equal(match_name(f, "-qB4500-"), "qBittorrent 4.5");
    assert_string_equal(match_name(f, "-qB4600-"), "qBittorrent 4");
    assert_string_equal(match_name(f, "-qB5000-"), "qBittorrent");
}

static void test_equal_prefixes_keep_given_order(void **state)
{
    struct fixture *f = *state;
    struct whitelist_row rows[3];

    rows[0] = row_of("-UT", 3, "first");
    rows[1] = row_of("A", 1, "other");
    rows[2] = row_of("-UT", 3, "second");
    assert_int_equal(whitelist_replace(f->wl, rows, 3), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_string_equal(match_name(f, "-UT3550-"), "first");
}

static void test_no_match_is_null(void **state)
{
    struct fixture *f = *state;
    struct whitelist_row rows[2];

    rows[0] = row_of("-TR", 3, "Transmission");
    rows[1] = row_of("-lt0D", 5, "libtorrent");
    assert_int_equal(whitelist_replace(f->wl, rows, 2), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_null(match_name(f, "-AZ5770-"));
    assert_null(match_name(f, "-tr4050-")); /* bytes, so case matters */
    assert_null(match_name(f, "-lt0C"));
    assert_null(match_name(f, "TR"));
}

static void test_raw_bytes_including_nul_match(void **state)
{
    struct fixture *f = *state;
    const uint8_t pfx[4] = {0x00, 0xff, 0x00, 0x7f};
    struct whitelist_row row = row_of(pfx, 4, "binary");
    uint8_t id[20] = {0x00, 0xff, 0x00, 0x7f, 0x01};
    uint8_t other[20] = {0x00, 0xff, 0x00, 0x7e};

    assert_int_equal(whitelist_replace(f->wl, &row, 1), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_non_null(whitelist_match(&f->v, id));
    assert_string_equal(whitelist_match(&f->v, id)->name, "binary");
    assert_null(whitelist_match(&f->v, other));
}

static void test_bad_prefix_len_is_einval_and_keeps_list(void **state)
{
    struct fixture *f = *state;
    struct whitelist_row rows[2];

    rows[0] = row_of("-TR", 3, "Transmission");
    assert_int_equal(whitelist_replace(f->wl, rows, 1), 0);
    rows[1] = row_of("-AZ", 3, "Azureus");
    rows[1].prefix_len = 0;
    assert_int_equal(whitelist_replace(f->wl, rows, 2), MK_EINVAL);
    rows[1].prefix_len = MK_PREFIX_MAX + 1;
    assert_int_equal(whitelist_replace(f->wl, rows, 2), MK_EINVAL);
    assert_int_equal(whitelist_replace(f->wl, NULL, 1), MK_EINVAL);
    assert_int_equal(whitelist_count(f->wl), 1);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_int_equal(f->v.n, 1);
    assert_string_equal(match_name(f, "-TR4050-"), "Transmission");
}

static void test_too_many_rows_is_elimit(void **state)
{
    struct fixture *f = *state;
    struct whitelist_row row = row_of("-TR", 3, "Transmission");

    /* Checked before the rows are read, so one row stands for many. */
    assert_int_equal(whitelist_replace(f->wl, &row, 1u << 20), MK_ELIMIT);
    assert_int_equal(whitelist_count(f->wl), 0);
}

static void test_view_refresh_picks_up_replace_and_skips_unchanged(void **state)
{
    struct fixture *f = *state;
    struct whitelist_row a = row_of("-TR", 3, "Transmission");
    struct whitelist_row b[2];
    const struct whitelist_row *before;
    uint64_t v1;

    assert_int_equal(whitelist_replace(f->wl, &a, 1), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    v1 = f->v.version;
    assert_int_not_equal(v1, 0);
    assert_int_equal(f->v.n, 1);
    before = f->v.rows;

    /* Unchanged: same version, and the very same copy (no new allocation). */
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_int_equal(f->v.version, v1);
    assert_ptr_equal(f->v.rows, before);

    b[0] = row_of("-DE", 3, "Deluge");
    b[1] = row_of("-qB", 3, "qBittorrent");
    assert_int_equal(whitelist_replace(f->wl, b, 2), 0);
    /* Until it refreshes, the view keeps its old copy. */
    assert_string_equal(match_name(f, "-TR4050-"), "Transmission");
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_int_equal(f->v.version, v1 + 1);
    assert_int_equal(f->v.n, 2);
    assert_null(match_name(f, "-TR4050-"));
    assert_string_equal(match_name(f, "-DE2110-"), "Deluge");
    assert_string_equal(match_name(f, "-qB4500-"), "qBittorrent");
}

static void test_view_is_independent_of_caller_rows(void **state)
{
    struct fixture *f = *state;
    struct whitelist_row a = row_of("-TR", 3, "Transmission");

    assert_int_equal(whitelist_replace(f->wl, &a, 1), 0);
    memcpy(a.prefix, "-XX", 3);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_string_equal(match_name(f, "-TR4050-"), "Transmission");
    assert_null(match_name(f, "-XX0000-"));
}

static void test_two_views_refresh_independently(void **state)
{
    struct fixture *f = *state;
    struct whitelist_view w;
    struct whitelist_row a = row_of("-TR", 3, "Transmission");
    uint8_t id[20];

    whitelist_view_init(&w);
    assert_int_equal(whitelist_replace(f->wl, &a, 1), 0);
    assert_int_equal(whitelist_view_refresh(&w, f->wl), 0);
    peer_id_of("-TR4050-", id);
    assert_non_null(whitelist_match(&w, id));
    assert_null(whitelist_match(&f->v, id)); /* not refreshed yet */
    whitelist_view_fini(&w);
    assert_int_equal(w.n, 0);
    assert_null(w.rows);
    whitelist_free(NULL);
}

/* A writer replaces the list over and over; each list of generation g has
 * g % 5 + 1 rows all named "g<g>". Readers refreshing meanwhile must always
 * hold one whole list. */
enum { CONC_ROUNDS = 3000 };

struct conc {
    struct whitelist *wl;
    atomic_bool done;
    atomic_int bad;
};

static void *conc_reader(void *arg)
{
    struct conc *c = arg;
    struct whitelist_view v;

    whitelist_view_init(&v);
    while (!atomic_load(&c->done)) {
        unsigned long g;
        if (whitelist_view_refresh(&v, c->wl) != 0) {
            atomic_fetch_add(&c->bad, 1);
            continue;
        }
        if (v.n == 0) {
            continue;
        }
        g = strtoul(v.rows[0].name + 1, NULL, 10);
        if (v.n != g % 5 + 1) {
            atomic_fetch_add(&c->bad, 1);
        }
        for (size_t i = 0; i < v.n; i++) {
            if (strcmp(v.rows[i].name, v.rows[0].name) != 0) {
                atomic_fetch_add(&c->bad, 1);
            }
        }
    }
    whitelist_view_fini(&v);
    return NULL;
}

static void test_concurrent_refresh_sees_whole_lists(void **state)
{
    struct fixture *f = *state;
    struct conc c = {.wl = f->wl};
    struct whitelist_row rows[5];
    pthread_t r1, r2;

    atomic_init(&c.done, false);
    atomic_init(&c.bad, 0);
    assert_int_equal(pthread_create(&r1, NULL, conc_reader, &c), 0);
    assert_int_equal(pthread_create(&r2, NULL, conc_reader, &c), 0);
    for (unsigned g = 1; g <= CONC_ROUNDS; g++) {
        char name[16];
        snprintf(name, sizeof(name), "g%u", g);
        for (unsigned i = 0; i < g % 5 + 1; i++) {
            rows[i] = row_of("-TR", 3, name);
        }
        assert_int_equal(whitelist_replace(f->wl, rows, g % 5 + 1), 0);
    }
    atomic_store(&c.done, true);
    pthread_join(r1, NULL);
    pthread_join(r2, NULL);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_int_equal(whitelist_view_refresh(&f->v, f->wl), 0);
    assert_int_equal(f->v.version, CONC_ROUNDS);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    static const struct CMUnitTest tests[] = {
        T(test_empty_list_matches_nothing),
        T(test_prefixes_of_length_1_3_8_20_match),
        T(test_longest_prefix_wins_whatever_the_order),
        T(test_equal_prefixes_keep_given_order),
        T(test_no_match_is_null),
        T(test_raw_bytes_including_nul_match),
        T(test_bad_prefix_len_is_einval_and_keeps_list),
        T(test_too_many_rows_is_elimit),
        T(test_view_refresh_picks_up_replace_and_skips_unchanged),
        T(test_view_is_independent_of_caller_rows),
        T(test_two_views_refresh_independently),
        T(test_concurrent_refresh_sees_whole_lists),
    };
    return cmocka_run_group_tests_name("whitelist", tests, NULL, NULL);
}
