/* tests/unit/test_resolver.c: the resolver thread against a fake store: what
 * it finds is in memory before the answer arrives, unknown keys are read
 * once, store failures are "unavailable" and not cached, concurrent misses
 * share one read, a full queue refuses at once, and stop answers every
 * ticket still waiting. A miss submitted after the read of its key answered
 * is answered from memory. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/resolver.h"

/* ---- a fake store -------------------------------------------------------- */

struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool hold;        /* reads wait while set */
    bool waiting;     /* a read is waiting on hold */
    int fail;         /* 0, or the error every read answers */
    int reads;
    uint8_t known_hash[20];
};

static void fake_gate(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->reads++;
    f->waiting = true;
    pthread_cond_broadcast(&f->cv);
    while (f->hold) {
        pthread_cond_wait(&f->cv, &f->mu);
    }
    f->waiting = false;
    pthread_mutex_unlock(&f->mu);
}

static void fake_release(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->hold = false;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void fake_wait_for_reader(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    while (!f->waiting) {
        pthread_cond_wait(&f->cv, &f->mu);
    }
    pthread_mutex_unlock(&f->mu);
}

static int fake_user_get_by_passkey(void *ctx, const char *passkey, struct user_rec *out,
                                    struct mk_errbuf *eb)
{
    struct fake *f = ctx;
    fake_gate(f);
    if (f->fail) {
        return mk_fail(eb, f->fail, "fake: down");
    }
    if (strcmp(passkey, "alice") != 0) {
        return mk_fail(eb, MK_ENOTFOUND, "user");
    }
    memset(out, 0, sizeof(*out));
    out->row.id = 7;
    strcpy(out->row.passkey, "alice");
    out->row.enabled = true;
    out->row.can_download = true;
    out->class_id = 3;
    out->up_mult = 1500;
    out->down_mult = 500;
    return MK_OK;
}

static int fake_class_get(void *ctx, uint32_t id, struct class_row *out, struct mk_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->up_mult = 2000;
    out->down_mult = 1000;
    return MK_OK;
}

static int fake_load_tokens(void *ctx, uint32_t user_id, int64_t now, store_token_fn fn,
                            void *arg, struct mk_errbuf *eb)
{
    struct fake *f = ctx;
    struct token_row on_it = {.user_id = 7, .up_mult = 1000, .down_mult = 0};
    memcpy(on_it.info_hash, f->known_hash, 20);
    struct token_row elsewhere = {.user_id = 8, .up_mult = 1000, .down_mult = 0};
    memset(elsewhere.info_hash, 0xee, 20);
    int rc = fn(&on_it, arg);
    return rc == MK_OK ? fn(&elsewhere, arg) : rc;
}

static int fake_torrent_get(void *ctx, const uint8_t info_hash[20], struct torrent_rec *out,
                            struct mk_errbuf *eb)
{
    struct fake *f = ctx;
    fake_gate(f);
    if (f->fail) {
        return mk_fail(eb, f->fail, "fake: down");
    }
    if (memcmp(info_hash, f->known_hash, 20) != 0) {
        return mk_fail(eb, MK_ENOTFOUND, "torrent");
    }
    memset(out, 0, sizeof(*out));
    out->row.id = 11;
    memcpy(out->row.info_hash, info_hash, 20);
    out->row.enabled = true;
    out->freeleech = true;
    out->up_mult = 1000;
    out->down_mult = 1000;
    return MK_OK;
}

static const struct store_ops fake_ops = {
    .version = MK_STORE_V3,
    .name = "fake",
    .user_get_by_passkey = fake_user_get_by_passkey,
    .class_get = fake_class_get,
    .load_tokens = fake_load_tokens,
    .torrent_get = fake_torrent_get,
};

/* ---- fixture ------------------------------------------------------------- */

struct fix {
    struct fake fake;
    struct store st;
    struct users *users;
    struct torrents *torrents;
    _Atomic uint32_t generation;
    struct resolver *r;
    struct resolver_inbox *inbox;
};

static struct fix *fix_new(uint32_t queue_max, bool start)
{
    struct fix *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    pthread_mutex_init(&x->fake.mu, NULL);
    pthread_cond_init(&x->fake.cv, NULL);
    memset(x->fake.known_hash, 0x42, 20);
    x->st = (struct store){.ops = &fake_ops, .ctx = &x->fake};
    x->users = users_new(4);
    x->torrents = torrents_new(4);
    atomic_init(&x->generation, 1);
    struct resolver_cfg cfg = {.queue_max = queue_max, .cache_max = 16, .negative_ttl_s = 60};
    struct mk_errbuf eb = {{0}};
    assert_int_equal(resolver_new(&x->r, &cfg, &x->st, x->users, x->torrents, &x->generation,
                                  &eb),
                     MK_OK);
    assert_int_equal(resolver_inbox_new(&x->inbox, &eb), MK_OK);
    if (start) {
        assert_int_equal(resolver_start(x->r, &eb), MK_OK);
    }
    return x;
}

static void fix_free(struct fix *x)
{
    fake_release(&x->fake);
    resolver_stop(x->r);
    resolver_inbox_free(x->inbox);
    resolver_free(x->r);
    users_free(x->users);
    torrents_free(x->torrents);
    free(x);
}

static struct miss_key passkey(const char *s)
{
    struct miss_key k = {.kind = MISS_PASSKEY, .len = (uint8_t)strlen(s)};
    memcpy(k.bytes, s, k.len);
    return k;
}

/* Waits for n tickets on the inbox (as a worker's loop would) and returns them. */
static size_t collect(struct fix *x, size_t n, struct resolver_ticket **out)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = resolver_inbox_fd(x->inbox), .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        for (struct resolver_ticket *t = resolver_inbox_take(x->inbox); t; t = t->next) {
            assert_true(got < n);
            out[got++] = t;
        }
    }
    return got;
}

static void free_tickets(struct resolver_ticket **t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        resolver_ticket_free(t[i]);
    }
}

/* ---- tests --------------------------------------------------------------- */

static void test_found_user_is_in_memory_when_the_answer_comes(void **state)
{
    struct fix *x = fix_new(4, true);
    struct miss_key k = passkey("alice");
    int cookie;
    struct resolver_ticket *t;
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, &cookie, &t), MK_OK);
    struct resolver_ticket *got[1];
    collect(x, 1, got);
    assert_ptr_equal(got[0], t);
    assert_ptr_equal(got[0]->cookie, &cookie);
    assert_int_equal(got[0]->result, MK_OK);
    assert_int_equal(got[0]->kind, MISS_PASSKEY);
    struct user_info u;
    assert_true(users_find(x->users, "alice", 5, &u));
    assert_int_equal(u.id, 7);
    assert_int_equal(u.class_up, 2000);
    assert_int_equal(u.personal_up, 1500);
    assert_int_equal(u.personal_down, 500);
    free_tickets(got, 1);
    struct resolver_stats s;
    resolver_stats_read(x->r, &s);
    assert_int_equal(s.lookups[MISS_PASSKEY][RESOLVE_FOUND], 1);
    assert_int_equal(s.reads, 1);
    fix_free(x);
}

static void test_found_torrent_gets_the_tokens_on_it(void **state)
{
    struct fix *x = fix_new(4, true);
    struct miss_key k = {.kind = MISS_INFO_HASH, .len = 20};
    memcpy(k.bytes, x->fake.known_hash, 20);
    struct resolver_ticket *t, *got[1];
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_OK);
    collect(x, 1, got);
    assert_int_equal(got[0]->result, MK_OK);
    free_tickets(got, 1);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(x->torrents, x->fake.known_hash, &shard);
    assert_non_null(tor);
    assert_int_equal(tor->id, 11);
    assert_true(tor->freeleech);
    assert_non_null(torrent_token_find(tor, 7, 0));
    assert_null(torrent_token_find(tor, 8, 0));
    torrents_unlock(shard);
    fix_free(x);
}

static void test_unknown_key_is_read_once_then_answered_from_cache(void **state)
{
    struct fix *x = fix_new(4, true);
    struct miss_key k = passkey("nobody");
    struct resolver_ticket *t, *got[1];
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_OK);
    collect(x, 1, got);
    assert_int_equal(got[0]->result, MK_ENOTFOUND);
    free_tickets(got, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_ENOTFOUND);
    }
    assert_int_equal(x->fake.reads, 1);
    struct resolver_stats s;
    resolver_stats_read(x->r, &s);
    assert_int_equal(s.lookups[MISS_PASSKEY][RESOLVE_NOT_FOUND], 1);
    assert_int_equal(s.lookups[MISS_PASSKEY][RESOLVE_CACHED_NEGATIVE], 5);
    fix_free(x);
}

static void test_store_failure_is_unavailable_and_not_cached(void **state)
{
    struct fix *x = fix_new(4, true);
    x->fake.fail = MK_EUNAVAIL;
    struct miss_key k = passkey("alice");
    struct resolver_ticket *t, *got[1];
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_OK);
    collect(x, 1, got);
    assert_int_equal(got[0]->result, MK_EUNAVAIL);
    free_tickets(got, 1);
    struct user_info u;
    assert_false(users_find(x->users, "alice", 5, &u));
    /* The store is back: asked again, and found. */
    x->fake.fail = 0;
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_OK);
    collect(x, 1, got);
    assert_int_equal(got[0]->result, MK_OK);
    free_tickets(got, 1);
    assert_int_equal(x->fake.reads, 2);
    struct resolver_stats s;
    resolver_stats_read(x->r, &s);
    assert_int_equal(s.lookups[MISS_PASSKEY][RESOLVE_STORE_ERROR], 1);
    fix_free(x);
}

static void test_concurrent_misses_share_one_read(void **state)
{
    struct fix *x = fix_new(4, true);
    x->fake.hold = true;
    struct miss_key k = passkey("alice");
    struct resolver_ticket *t, *got[3];
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_OK);
    fake_wait_for_reader(&x->fake);
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_OK);
    assert_int_equal(resolver_submit(x->r, x->inbox, &k, NULL, &t), MK_OK);
    fake_release(&x->fake);
    collect(x, 3, got);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(got[i]->result, MK_OK);
    }
    free_tickets(got, 3);
    assert_int_equal(x->fake.reads, 1);
    struct resolver_stats s;
    resolver_stats_read(x->r, &s);
    assert_int_equal(s.lookups[MISS_PASSKEY][RESOLVE_COALESCED], 2);
    fix_free(x);
}

/* A worker that missed memory before a read put the row there, and submits
 * after that read forgot its pending entry (a preempted worker), is answered
 * from memory: no second read. */
static void test_a_miss_submitted_after_the_read_answered_reads_nothing(void **state)
{
    struct fix *x = fix_new(4, true);
    struct miss_key user = passkey("alice");
    struct miss_key tor = {.kind = MISS_INFO_HASH, .len = 20};
    memcpy(tor.bytes, x->fake.known_hash, 20);
    struct resolver_ticket *t, *got[2];
    assert_int_equal(resolver_submit(x->r, x->inbox, &user, NULL, &t), MK_OK);
    assert_int_equal(resolver_submit(x->r, x->inbox, &tor, NULL, &t), MK_OK);
    collect(x, 2, got);
    free_tickets(got, 2);
    assert_int_equal(x->fake.reads, 2);
    int cookie;
    assert_int_equal(resolver_submit(x->r, x->inbox, &user, &cookie, &t), MK_OK);
    collect(x, 1, got);
    assert_ptr_equal(got[0], t);
    assert_ptr_equal(got[0]->cookie, &cookie);
    assert_int_equal(got[0]->result, MK_OK);
    free_tickets(got, 1);
    assert_int_equal(resolver_submit(x->r, x->inbox, &tor, NULL, &t), MK_OK);
    collect(x, 1, got);
    assert_int_equal(got[0]->result, MK_OK);
    assert_int_equal(got[0]->kind, MISS_INFO_HASH);
    free_tickets(got, 1);
    assert_int_equal(x->fake.reads, 2);
    struct resolver_stats s;
    resolver_stats_read(x->r, &s);
    assert_int_equal(s.reads, 2);
    assert_int_equal(s.lookups[MISS_PASSKEY][RESOLVE_COALESCED], 1);
    assert_int_equal(s.lookups[MISS_INFO_HASH][RESOLVE_COALESCED], 1);
    fix_free(x);
}

static void test_full_queue_refuses_at_once(void **state)
{
    struct fix *x = fix_new(1, true);
    x->fake.hold = true;
    struct miss_key a = passkey("alice"), b = passkey("bob");
    struct resolver_ticket *t, *got[1];
    assert_int_equal(resolver_submit(x->r, x->inbox, &a, NULL, &t), MK_OK);
    fake_wait_for_reader(&x->fake);
    assert_int_equal(resolver_submit(x->r, x->inbox, &b, NULL, &t), MK_ELIMIT);
    fake_release(&x->fake);
    collect(x, 1, got);
    free_tickets(got, 1);
    struct resolver_stats s;
    resolver_stats_read(x->r, &s);
    assert_int_equal(s.lookups[MISS_PASSKEY][RESOLVE_QUEUE_FULL], 1);
    fix_free(x);
}

static void test_stop_answers_every_waiting_ticket_unavailable(void **state)
{
    struct fix *x = fix_new(4, false); /* no thread: nothing is ever read */
    struct miss_key a = passkey("alice"), b = passkey("bob");
    struct resolver_ticket *t, *got[3];
    assert_int_equal(resolver_submit(x->r, x->inbox, &a, NULL, &t), MK_OK);
    assert_int_equal(resolver_submit(x->r, x->inbox, &a, NULL, &t), MK_OK);
    assert_int_equal(resolver_submit(x->r, x->inbox, &b, NULL, &t), MK_OK);
    resolver_stop(x->r);
    collect(x, 3, got);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(got[i]->result, MK_EUNAVAIL);
    }
    free_tickets(got, 3);
    assert_int_equal(x->fake.reads, 0);
    /* After stop, a submit is refused rather than left waiting forever. */
    assert_int_equal(resolver_submit(x->r, x->inbox, &a, NULL, &t), MK_ELIMIT);
    fix_free(x);
}

static void test_inbox_free_frees_tickets_never_taken(void **state)
{
    struct fix *x = fix_new(4, false);
    struct miss_key a = passkey("alice");
    struct resolver_ticket *t;
    assert_int_equal(resolver_submit(x->r, x->inbox, &a, NULL, &t), MK_OK);
    resolver_stop(x->r); /* posted, never taken: fix_free's inbox_free frees it (ASan checks) */
    fix_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_user_is_in_memory_when_the_answer_comes),
        cmocka_unit_test(test_found_torrent_gets_the_tokens_on_it),
        cmocka_unit_test(test_unknown_key_is_read_once_then_answered_from_cache),
        cmocka_unit_test(test_store_failure_is_unavailable_and_not_cached),
        cmocka_unit_test(test_concurrent_misses_share_one_read),
        cmocka_unit_test(test_a_miss_submitted_after_the_read_answered_reads_nothing),
        cmocka_unit_test(test_full_queue_refuses_at_once),
        cmocka_unit_test(test_stop_answers_every_waiting_ticket_unavailable),
        cmocka_unit_test(test_inbox_free_frees_tickets_never_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
