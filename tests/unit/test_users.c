/* tests/unit/test_users.c: the in-memory user table (auth/users.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "auth/users.h"

static struct user_row make_row(uint32_t id, const char *passkey, bool enabled, bool can_download)
{
    struct user_row r;

    memset(&r, 0, sizeof(r));
    r.id = id;
    snprintf(r.passkey, sizeof(r.passkey), "%s", passkey);
    r.enabled = enabled;
    r.can_download = can_download;
    return r;
}

/* 32 characters, as passkeys are by convention; distinct for distinct i. */
static void passkey_of(uint32_t i, char out[33])
{
    snprintf(out, 33, "pk%08xabcdefghijklmnopqrstuv", i);
}

static void test_find_on_empty_table_is_false(void **state)
{
    struct users *u = users_new(0);
    struct user_info info = {0};

    assert_non_null(u);
    assert_false(users_find(u, "abc", 3, &info));
    assert_int_equal(users_count(u), 0);
    users_free(u);
}

static void test_put_then_find_copies_fields(void **state)
{
    struct users *u = users_new(0);
    struct user_row r = make_row(42, "0123456789abcdef0123456789abcdef", true, true);
    struct user_info info = {0};

    assert_int_equal(users_put(u, &r, 1), 0);
    assert_true(users_find(u, r.passkey, 32, &info));
    assert_int_equal(info.id, 42);
    assert_true(info.enabled);
    assert_true(info.can_download);
    assert_int_equal(users_count(u), 1);
    users_free(u);
}

static void test_disabled_flags_are_copied(void **state)
{
    struct users *u = users_new(4);
    struct user_row a = make_row(1, "disabled", false, true);
    struct user_row b = make_row(2, "seedonly", true, false);
    struct user_info info = {.enabled = true, .can_download = true};

    assert_int_equal(users_put(u, &a, 1), 0);
    assert_int_equal(users_put(u, &b, 1), 0);
    assert_true(users_find(u, "disabled", 8, &info));
    assert_int_equal(info.id, 1);
    assert_false(info.enabled);
    assert_true(info.can_download);
    assert_true(users_find(u, "seedonly", 8, &info));
    assert_int_equal(info.id, 2);
    assert_true(info.enabled);
    assert_false(info.can_download);
    users_free(u);
}

static void test_find_matches_whole_passkey_only(void **state)
{
    struct users *u = users_new(0);
    struct user_row r = make_row(7, "abcdef", true, true);
    struct user_info info = {0};

    assert_int_equal(users_put(u, &r, 1), 0);
    assert_false(users_find(u, "abcde", 5, &info));
    assert_false(users_find(u, "abcdefg", 7, &info));
    assert_false(users_find(u, "ABCDEF", 6, &info));
    /* len, not NUL, ends the key: a longer buffer is fine. */
    assert_true(users_find(u, "abcdefXYZ", 6, &info));
    assert_int_equal(info.id, 7);
    users_free(u);
}

static void test_put_same_passkey_updates_in_place(void **state)
{
    struct users *u = users_new(0);
    struct user_row r = make_row(5, "samekey", true, true);
    struct user_info info = {0};

    assert_int_equal(users_put(u, &r, 1), 0);
    r.id = 6;
    r.enabled = false;
    r.can_download = false;
    assert_int_equal(users_put(u, &r, 1), 0);
    assert_int_equal(users_count(u), 1);
    assert_true(users_find(u, "samekey", 7, &info));
    assert_int_equal(info.id, 6);
    assert_false(info.enabled);
    assert_false(info.can_download);
    users_free(u);
}

static void test_empty_passkey_is_einval(void **state)
{
    struct users *u = users_new(0);
    struct user_row r = make_row(1, "", true, true);
    struct user_info info = {0};

    assert_int_equal(users_put(u, &r, 1), MK_EINVAL);
    assert_int_equal(users_put(u, NULL, 1), MK_EINVAL);
    assert_int_equal(users_count(u), 0);
    assert_false(users_find(u, "", 0, &info));
    users_free(u);
}

static void test_passkey_of_max_len_is_accepted_and_one_more_is_einval(void **state)
{
    struct users *u = users_new(0);
    struct user_row r;
    struct user_info info = {0};
    char longer[MK_PASSKEY_MAX + 1];

    memset(&r, 0, sizeof(r));
    r.id = 9;
    memset(r.passkey, 'k', MK_PASSKEY_MAX);
    r.passkey[MK_PASSKEY_MAX] = '\0';
    assert_int_equal(users_put(u, &r, 1), 0);
    assert_true(users_find(u, r.passkey, MK_PASSKEY_MAX, &info));
    assert_int_equal(info.id, 9);

    /* MK_PASSKEY_MAX + 1 bytes: the array holds no NUL at all. */
    memset(r.passkey, 'z', sizeof(r.passkey));
    assert_int_equal(users_put(u, &r, 1), MK_EINVAL);
    assert_int_equal(users_count(u), 1);
    memset(longer, 'k', sizeof(longer));
    assert_false(users_find(u, longer, sizeof(longer), &info));
    users_free(u);
}

static void test_sweep_removes_only_other_generations(void **state)
{
    struct users *u = users_new(8);
    struct user_row keep = make_row(1, "keepme", true, true);
    struct user_row gone = make_row(2, "rotated", true, true);
    struct user_row also = make_row(3, "deleted", true, true);
    struct user_info info = {0};

    assert_int_equal(users_put(u, &keep, 1), 0);
    assert_int_equal(users_put(u, &gone, 1), 0);
    assert_int_equal(users_put(u, &also, 1), 0);
    /* Reload as generation 2 sees only "keepme". */
    assert_int_equal(users_put(u, &keep, 2), 0);
    assert_int_equal(users_sweep(u, 2), 2);
    assert_int_equal(users_count(u), 1);
    assert_true(users_find(u, "keepme", 6, &info));
    assert_int_equal(info.id, 1);
    assert_false(users_find(u, "rotated", 7, &info));
    assert_false(users_find(u, "deleted", 7, &info));
    assert_int_equal(users_sweep(u, 2), 0);
    users_free(u);
}

static void test_many_users_across_shards(void **state)
{
    enum { N = 100000 };
    struct users *u = users_new(64);
    struct user_info info = {0};
    char pk[33];

    for (uint32_t i = 0; i < N; i++) {
        struct user_row r;
        passkey_of(i, pk);
        r = make_row(i + 1, pk, (i % 3) != 0, (i % 5) != 0);
        assert_int_equal(users_put(u, &r, 7), 0);
    }
    assert_int_equal(users_count(u), N);
    for (uint32_t i = 0; i < N; i++) {
        passkey_of(i, pk);
        assert_true(users_find(u, pk, 32, &info));
        assert_int_equal(info.id, i + 1);
        assert_int_equal(info.enabled, (i % 3) != 0);
        assert_int_equal(info.can_download, (i % 5) != 0);
    }
    passkey_of(N, pk);
    assert_false(users_find(u, pk, 32, &info));

    /* Re-stamp the even half, sweep the odd half away. */
    for (uint32_t i = 0; i < N; i += 2) {
        struct user_row r;
        passkey_of(i, pk);
        r = make_row(i + 1, pk, true, true);
        assert_int_equal(users_put(u, &r, 8), 0);
    }
    assert_int_equal(users_sweep(u, 8), N / 2);
    assert_int_equal(users_count(u), N / 2);
    for (uint32_t i = 0; i < N; i++) {
        passkey_of(i, pk);
        assert_int_equal(users_find(u, pk, 32, &info), i % 2 == 0);
    }
    users_free(u);
}

static void test_shard_count_rounds_up_and_one_shard_works(void **state)
{
    struct users *u = users_new(1);
    struct user_info info = {0};
    char pk[33];

    for (uint32_t i = 0; i < 1000; i++) {
        struct user_row r;
        passkey_of(i, pk);
        r = make_row(i, pk, true, true);
        assert_int_equal(users_put(u, &r, 1), 0);
    }
    assert_int_equal(users_count(u), 1000);
    passkey_of(999, pk);
    assert_true(users_find(u, pk, 32, &info));
    assert_int_equal(info.id, 999);
    users_free(u);
    u = users_new(3); /* becomes 4 */
    assert_non_null(u);
    users_free(u);
    users_free(NULL);
}

/* Two readers look up a fixed set while a writer keeps inserting new users
 * and rewriting the fixed ones with the same values. */
enum { CONC_FIXED = 2000, CONC_NEW = 50000 };

struct conc {
    struct users *u;
    atomic_bool done;
    atomic_int bad;
};

static void *conc_reader(void *arg)
{
    struct conc *c = arg;
    struct user_info info;
    char pk[33];
    uint32_t i = 0;

    while (!atomic_load(&c->done)) {
        passkey_of(i % CONC_FIXED, pk);
        if (!users_find(c->u, pk, 32, &info) || info.id != i % CONC_FIXED + 1 || !info.enabled) {
            atomic_fetch_add(&c->bad, 1);
        }
        i++;
    }
    return NULL;
}

static void *conc_writer(void *arg)
{
    struct conc *c = arg;
    char pk[33];

    for (uint32_t i = 0; i < CONC_NEW; i++) {
        struct user_row r;
        passkey_of(CONC_FIXED + i, pk);
        r = make_row(CONC_FIXED + i + 1, pk, true, true);
        if (users_put(c->u, &r, 1) != 0) {
            atomic_fetch_add(&c->bad, 1);
        }
        passkey_of(i % CONC_FIXED, pk);
        r = make_row(i % CONC_FIXED + 1, pk, true, true);
        if (users_put(c->u, &r, 1) != 0) {
            atomic_fetch_add(&c->bad, 1);
        }
    }
    atomic_store(&c->done, true);
    return NULL;
}

static void test_concurrent_finds_while_putting(void **state)
{
    struct conc c = {.u = users_new(16)};
    pthread_t r1, r2, w;
    char pk[33];

    atomic_init(&c.done, false);
    atomic_init(&c.bad, 0);
    for (uint32_t i = 0; i < CONC_FIXED; i++) {
        struct user_row r;
        passkey_of(i, pk);
        r = make_row(i + 1, pk, true, true);
        assert_int_equal(users_put(c.u, &r, 1), 0);
    }
    assert_int_equal(pthread_create(&r1, NULL, conc_reader, &c), 0);
    assert_int_equal(pthread_create(&r2, NULL, conc_reader, &c), 0);
    assert_int_equal(pthread_create(&w, NULL, conc_writer, &c), 0);
    pthread_join(w, NULL);
    pthread_join(r1, NULL);
    pthread_join(r2, NULL);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_int_equal(users_count(c.u), CONC_FIXED + CONC_NEW);
    users_free(c.u);
}

static void test_remove_makes_the_passkey_unknown_at_once(void **state)
{
    struct users *u = users_new(4);
    struct user_row a = make_row(1, "oldkey", true, true);
    struct user_row b = make_row(2, "other", true, true);
    assert_int_equal(users_put(u, &a, 1), 0);
    assert_int_equal(users_put(u, &b, 1), 0);
    struct user_info info;
    assert_true(users_remove(u, "oldkey", 6));
    assert_false(users_find(u, "oldkey", 6, &info));
    assert_true(users_find(u, "other", 5, &info));
    assert_int_equal(users_count(u), 1);
    assert_false(users_remove(u, "oldkey", 6));
    assert_false(users_remove(u, "", 0));
    assert_false(users_remove(u, "other", 4)); /* a prefix is another passkey */
    assert_int_equal(users_count(u), 1);
    users_free(u);
}

/* Another node rotated or deleted the user: only the id is known here. */
static void test_remove_id_keeps_only_the_current_passkey(void **state)
{
    struct users *u = users_new(8);
    struct user_row old = make_row(5, "oldkey", true, true);
    struct user_row cur = make_row(5, "newkey", true, true);
    struct user_row other = make_row(6, "keepme", true, true);
    assert_int_equal(users_put(u, &old, 1), 0);
    assert_int_equal(users_put(u, &cur, 1), 0);
    assert_int_equal(users_put(u, &other, 1), 0);
    struct user_info info;
    assert_int_equal(users_remove_id(u, 5, "newkey"), 1);
    assert_false(users_find(u, "oldkey", 6, &info));
    assert_true(users_find(u, "newkey", 6, &info));
    assert_int_equal(users_remove_id(u, 5, "newkey"), 0);
    assert_int_equal(users_remove_id(u, 5, NULL), 1);
    assert_false(users_find(u, "newkey", 6, &info));
    assert_true(users_find(u, "keepme", 6, &info));
    assert_int_equal(users_count(u), 1);
    users_free(u);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remove_id_keeps_only_the_current_passkey),
        cmocka_unit_test(test_remove_makes_the_passkey_unknown_at_once),
        cmocka_unit_test(test_find_on_empty_table_is_false),
        cmocka_unit_test(test_put_then_find_copies_fields),
        cmocka_unit_test(test_disabled_flags_are_copied),
        cmocka_unit_test(test_find_matches_whole_passkey_only),
        cmocka_unit_test(test_put_same_passkey_updates_in_place),
        cmocka_unit_test(test_empty_passkey_is_einval),
        cmocka_unit_test(test_passkey_of_max_len_is_accepted_and_one_more_is_einval),
        cmocka_unit_test(test_sweep_removes_only_other_generations),
        cmocka_unit_test(test_many_users_across_shards),
        cmocka_unit_test(test_shard_count_rounds_up_and_one_shard_works),
        cmocka_unit_test(test_concurrent_finds_while_putting),
    };
    return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
