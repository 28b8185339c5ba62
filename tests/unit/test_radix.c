/* tests/unit/test_radix.c: util/radix.c — the sort agrees with a stable
 * comparison sort on keys that use every digit, few digits, or none, keeps
 * equal keys in their order, and the permutation moves each record to its
 * sorted place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/radix.h"

static uint64_t next(uint64_t *s)
{
    /* splitmix64: a fixed, portable sequence */
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int by_key_then_idx(const void *a, const void *b)
{
    const struct radix_item *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts n keys made by mask (random bits under it; few distinct values when
 * distinct is nonzero) and checks the order against qsort by (key, idx):
 * the same keys in the same order, and equal keys in their first order. */
static void check(size_t n, uint64_t mask, uint64_t distinct, uint64_t seed)
{
    struct radix_item *v = calloc(n + 1, sizeof(*v));
    struct radix_item *tmp = calloc(n + 1, sizeof(*tmp));
    struct radix_item *want = calloc(n + 1, sizeof(*want));
    assert_non_null(v);
    assert_non_null(tmp);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = next(&seed);
        if (distinct) {
            k = (k % distinct) * 0x0101010101010101u;
        }
        v[i].key = k & mask;
        v[i].idx = i;
    }
    memcpy(want, v, n * sizeof(*v));
    qsort(want, n, sizeof(*want), by_key_then_idx);
    radix_sort(v, tmp, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].key, want[i].key);
        assert_int_equal(v[i].idx, want[i].idx);
    }
    free(v);
    free(tmp);
    free(want);
}

static void test_random_keys_of_every_width(void **state)
{
    (void)state;
    check(5000, UINT64_MAX, 0, 1);
    check(5000, 0xffffffffu, 0, 2);
    check(5000, 0x0001ffff00003fffu, 0, 3); /* the flusher's: user << 32 | torrent */
    check(5000, 0xffu << 20, 0, 4);         /* one digit, not the lowest */
}

static void test_equal_keys_keep_their_order(void **state)
{
    (void)state;
    check(5000, UINT64_MAX, 7, 5);
    check(5000, UINT64_MAX, 1, 6); /* all equal: no pass at all */
}

static void test_tiny_inputs(void **state)
{
    (void)state;
    check(0, UINT64_MAX, 0, 7);
    check(1, UINT64_MAX, 0, 8);
    check(2, UINT64_MAX, 0, 9);
    check(3, 1, 0, 10);
}

struct row {
    uint64_t key;
    char payload[40];
};

static void test_permute_moves_each_row_to_its_place(void **state)
{
    (void)state;
    enum { N = 3000 };
    static struct row rows[N];
    static struct radix_item v[N], tmp[N];
    uint64_t seed = 11;
    for (size_t i = 0; i < N; i++) {
        rows[i].key = next(&seed) % 500;
        memset(rows[i].payload, (int)(i % 251), sizeof(rows[i].payload));
        memcpy(rows[i].payload, &i, sizeof(i));
        v[i].key = rows[i].key;
        v[i].idx = i;
    }
    radix_sort(v, tmp, N);
    struct radix_item order[N];
    memcpy(order, v, sizeof(order));
    struct row spare;
    radix_permute(rows, sizeof(rows[0]), v, N, &spare);
    for (size_t k = 0; k < N; k++) {
        size_t was;
        memcpy(&was, rows[k].payload, sizeof(was));
        assert_int_equal(was, order[k].idx);
        assert_int_equal(rows[k].key, order[k].key);
        assert_int_equal((unsigned char)rows[k].payload[sizeof(was)], was % 251);
        assert_true(k == 0 || rows[k - 1].key <= rows[k].key);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_keys_of_every_width),
        cmocka_unit_test(test_equal_keys_keep_their_order),
        cmocka_unit_test(test_tiny_inputs),
        cmocka_unit_test(test_permute_moves_each_row_to_its_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
