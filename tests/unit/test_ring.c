/* tests/unit/test_ring.c: the SPSC delta queue (acct/ring.c).
 *
 * Single-threaded tests pin down capacity, full/empty, FIFO order and index
 * wrap-around exactly; one two-thread test runs a producer against a consumer
 * and accounts for every sequence number (received in order, or refused by a
 * push and counted in `dropped`). Every field of a delta is derived from its
 * sequence number, so a torn copy of a slot shows up as a mismatch.
 * Also clean under -fsanitize=thread (build this file directly with it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "acct/ring.h"

static struct acct_delta delta_of(uint64_t seq)
{
    struct acct_delta d = {
        .user_id = (uint32_t)(seq * 2654435761u),
        .torrent_id = (uint32_t)~seq,
        .uploaded = seq,
        .downloaded = seq * 3 + 1,
        .snatch = (seq % 7) == 0,
        .at = (int64_t)(seq ^ 0x5a5a5a5a5a5aull),
    };
    return d;
}

/* True if d is exactly what delta_of(d->uploaded) made. */
static bool delta_is_whole(const struct acct_delta *d)
{
    struct acct_delta want = delta_of(d->uploaded);
    return d->user_id == want.user_id && d->torrent_id == want.torrent_id &&
           d->downloaded == want.downloaded && d->snatch == want.snatch && d->at == want.at;
}

static uint64_t capacity_of(const struct acct_ring *r)
{
    return (uint64_t)r->mask + 1;
}

/* ---- capacity ------------------------------------------------------------- */

static void test_capacity_rounds_up_to_power_of_two(void **state)
{
    static const struct {
        uint32_t asked;
        uint64_t got;
    } cases[] = {
        {0, 1}, {1, 1}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {9, 16}, {1000, 1024}, {1024, 1024},
        {1025, 2048}, {65535, 65536},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct acct_ring r;
        assert_int_equal(acct_ring_init(&r, cases[i].asked), MK_OK);
        assert_int_equal(capacity_of(&r), cases[i].got);
        assert_non_null(r.slots);
        assert_int_equal(atomic_load(&r.head), 0);
        assert_int_equal(atomic_load(&r.tail), 0);
        assert_int_equal(atomic_load(&r.dropped), 0);
        acct_ring_fini(&r);
        assert_null(r.slots);
    }
}

static void test_rounded_capacity_is_usable(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 5), MK_OK);
    for (uint64_t i = 0; i < 8; i++) {
        struct acct_delta d = delta_of(i);
        assert_true(acct_ring_push(&r, &d));
    }
    struct acct_delta d = delta_of(8);
    assert_false(acct_ring_push(&r, &d));
    acct_ring_fini(&r);
}

/* ---- full, empty, dropped ---------------------------------------------------- */

static void test_push_fails_when_full_and_counts_dropped(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 4), MK_OK);
    for (uint64_t i = 0; i < 4; i++) {
        struct acct_delta d = delta_of(i);
        assert_true(acct_ring_push(&r, &d));
    }
    for (uint64_t i = 4; i < 7; i++) {
        struct acct_delta d = delta_of(i);
        assert_false(acct_ring_push(&r, &d));
        assert_int_equal(atomic_load(&r.dropped), i - 3);
    }
    assert_int_equal(atomic_load(&r.head), 4);

    /* A refused push wrote nothing: the ring still holds exactly 0..3. */
    struct acct_delta out[8];
    assert_int_equal(acct_ring_pop(&r, out, 8), 4);
    for (uint64_t i = 0; i < 4; i++) {
        assert_int_equal(out[i].uploaded, i);
        assert_true(delta_is_whole(&out[i]));
    }
    assert_int_equal(atomic_load(&r.dropped), 3);
    acct_ring_fini(&r);
}

static void test_push_succeeds_again_after_one_pop(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 2), MK_OK);
    struct acct_delta a = delta_of(1), b = delta_of(2), c = delta_of(3);
    assert_true(acct_ring_push(&r, &a));
    assert_true(acct_ring_push(&r, &b));
    assert_false(acct_ring_push(&r, &c));
    struct acct_delta out[2];
    assert_int_equal(acct_ring_pop(&r, out, 1), 1);
    assert_int_equal(out[0].uploaded, 1);
    assert_true(acct_ring_push(&r, &c));
    assert_false(acct_ring_push(&r, &a));
    assert_int_equal(atomic_load(&r.dropped), 2);
    assert_int_equal(acct_ring_pop(&r, out, 2), 2);
    assert_int_equal(out[0].uploaded, 2);
    assert_int_equal(out[1].uploaded, 3);
    acct_ring_fini(&r);
}

static void test_capacity_one_holds_one(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 1), MK_OK);
    struct acct_delta out[4];
    for (uint64_t i = 0; i < 100; i++) {
        struct acct_delta d = delta_of(i);
        assert_true(acct_ring_push(&r, &d));
        assert_false(acct_ring_push(&r, &d));
        assert_int_equal(acct_ring_pop(&r, out, 4), 1);
        assert_int_equal(out[0].uploaded, i);
    }
    assert_int_equal(atomic_load(&r.dropped), 100);
    acct_ring_fini(&r);
}

static void test_pop_on_empty_returns_zero_and_leaves_out_alone(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 8), MK_OK);
    struct acct_delta out[2];
    memset(out, 0xEE, sizeof(out));
    assert_int_equal(acct_ring_pop(&r, out, 2), 0);
    unsigned char want[sizeof(out)];
    memset(want, 0xEE, sizeof(want));
    assert_memory_equal(out, want, sizeof(out));
    assert_int_equal(atomic_load(&r.tail), 0);
    acct_ring_fini(&r);
}

/* ---- order ------------------------------------------------------------------ */

static void test_pop_returns_deltas_in_push_order(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 16), MK_OK);
    for (uint64_t i = 100; i < 116; i++) {
        struct acct_delta d = delta_of(i);
        assert_true(acct_ring_push(&r, &d));
    }
    struct acct_delta out[16];
    assert_int_equal(acct_ring_pop(&r, out, 16), 16);
    for (uint64_t i = 0; i < 16; i++) {
        assert_int_equal(out[i].uploaded, 100 + i);
        assert_true(delta_is_whole(&out[i]));
    }
    acct_ring_fini(&r);
}

static void test_pop_copies_at_most_max(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 8), MK_OK);
    for (uint64_t i = 0; i < 5; i++) {
        struct acct_delta d = delta_of(i);
        assert_true(acct_ring_push(&r, &d));
    }
    struct acct_delta out[8];
    memset(out, 0xEE, sizeof(out));
    assert_int_equal(acct_ring_pop(&r, out, 0), 0);
    assert_int_equal(acct_ring_pop(&r, out, 2), 2);
    assert_int_equal(out[0].uploaded, 0);
    assert_int_equal(out[1].uploaded, 1);
    /* Nothing written past out[max - 1]. */
    unsigned char poison[sizeof(out[2])];
    memset(poison, 0xEE, sizeof(poison));
    assert_memory_equal(&out[2], poison, sizeof(poison));

    assert_int_equal(acct_ring_pop(&r, out, 8), 3);
    for (uint64_t i = 0; i < 3; i++) {
        assert_int_equal(out[i].uploaded, 2 + i);
    }
    assert_int_equal(acct_ring_pop(&r, out, 8), 0);
    acct_ring_fini(&r);
}

/* ---- wrap-around ------------------------------------------------------------ */

/* Uneven push and pop sizes walk the indices through every slot alignment. */
static void test_fifo_holds_over_many_wraps(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 8), MK_OK);
    uint64_t next_push = 0, next_pop = 0;
    struct acct_delta out[8];
    for (int round = 0; round < 20000; round++) {
        size_t npush = (size_t)(round * 7 % 9);  /* 0..8: sometimes past full */
        for (size_t i = 0; i < npush; i++) {
            struct acct_delta d = delta_of(next_push);
            bool room = next_push - next_pop < 8;
            assert_int_equal(acct_ring_push(&r, &d), room);
            if (room) {
                next_push++;
            }
        }
        size_t max = (size_t)(round * 5 % 8) + 1;
        size_t got = acct_ring_pop(&r, out, max);
        size_t held = (size_t)(next_push - next_pop);
        assert_int_equal(got, held < max ? held : max);
        for (size_t i = 0; i < got; i++) {
            assert_int_equal(out[i].uploaded, next_pop);
            assert_true(delta_is_whole(&out[i]));
            next_pop++;
        }
    }
    assert_true(next_pop > 20000 * 3);
    assert_int_equal(atomic_load(&r.head), next_push);
    assert_int_equal(atomic_load(&r.tail), next_pop);
    acct_ring_fini(&r);
}

/* The 64-bit counters themselves wrapping (after 2^64 deltas) must not break
 * the full test or the slot index. Start them just below the wrap. */
static void test_fifo_holds_across_counter_overflow(void **state)
{
    struct acct_ring r;
    assert_int_equal(acct_ring_init(&r, 4), MK_OK);
    atomic_store(&r.head, UINT64_MAX - 5);
    atomic_store(&r.tail, UINT64_MAX - 5);
    struct acct_delta out[4];
    uint64_t seq_in = 0, seq_out = 0;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 4; i++) {
            struct acct_delta d = delta_of(seq_in++);
            assert_true(acct_ring_push(&r, &d));
        }
        struct acct_delta extra = delta_of(999);
        assert_false(acct_ring_push(&r, &extra));
        assert_int_equal(acct_ring_pop(&r, out, 4), 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(out[i].uploaded, seq_out++);
        }
        assert_int_equal(acct_ring_pop(&r, out, 4), 0);
    }
    assert_int_equal(atomic_load(&r.head), UINT64_MAX - 5 + 24);
    assert_int_equal(atomic_load(&r.dropped), 6);
    acct_ring_fini(&r);
}

/* ---- two threads -------------------------------------------------------------- */

#define SPSC_COUNT 2000000u

struct spsc {
    struct acct_ring ring;
    unsigned char *refused;      /* [seq]: push said false (producer only) */
    unsigned char *received;     /* [seq]: popped (consumer only) */
    uint64_t nrefused;           /* producer only; read after join */
    uint64_t nreceived;          /* consumer only; read after join */
    uint64_t out_of_order;       /* consumer only */
    uint64_t torn;               /* consumer only */
    _Atomic bool producer_done;
};

static void *spsc_producer(void *arg)
{
    struct spsc *s = arg;
    for (uint64_t seq = 0; seq < SPSC_COUNT; seq++) {
        struct acct_delta d = delta_of(seq);
        if (!acct_ring_push(&s->ring, &d)) {
            s->refused[seq] = 1;
            s->nrefused++;
            /* Let the consumer catch up now and then, so that most deltas
             * cross the ring and the order check has something to check. */
            if (s->nrefused % 64 == 0) {
                sched_yield();
            }
        }
    }
    atomic_store_explicit(&s->producer_done, true, memory_order_release);
    return NULL;
}

static void *spsc_consumer(void *arg)
{
    struct spsc *s = arg;
    struct acct_delta out[97]; /* odd size: pops straddle the ring's end */
    uint64_t last = 0;
    bool any = false;
    for (;;) {
        /* Read done before popping: if it was set, this pop sees every push. */
        bool done = atomic_load_explicit(&s->producer_done, memory_order_acquire);
        size_t n = acct_ring_pop(&s->ring, out, sizeof(out) / sizeof(out[0]));
        for (size_t i = 0; i < n; i++) {
            uint64_t seq = out[i].uploaded;
            if (!delta_is_whole(&out[i]) || seq >= SPSC_COUNT) {
                s->torn++;
                continue;
            }
            if (any && seq <= last) {
                s->out_of_order++;
            }
            last = seq;
            any = true;
            s->received[seq]++;
            s->nreceived++;
        }
        if (n == 0 && done) {
            break;
        }
    }
    return NULL;
}

static void test_two_threads_lose_and_reorder_nothing_but_refused_pushes(void **state)
{
    struct spsc *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(acct_ring_init(&s->ring, 1024), MK_OK);
    s->refused = calloc(SPSC_COUNT, 1);
    s->received = calloc(SPSC_COUNT, 1);
    assert_non_null(s->refused);
    assert_non_null(s->received);
    atomic_init(&s->producer_done, false);

    pthread_t prod, cons;
    assert_int_equal(pthread_create(&cons, NULL, spsc_consumer, s), 0);
    assert_int_equal(pthread_create(&prod, NULL, spsc_producer, s), 0);
    assert_int_equal(pthread_join(prod, NULL), 0);
    assert_int_equal(pthread_join(cons, NULL), 0);

    assert_int_equal(s->torn, 0);
    assert_int_equal(s->out_of_order, 0);
    assert_int_equal(s->nreceived + s->nrefused, SPSC_COUNT);
    assert_int_equal(atomic_load(&s->ring.dropped), s->nrefused);
    /* Each sequence number exactly once: either popped once or refused. */
    uint64_t bad = 0;
    for (uint64_t seq = 0; seq < SPSC_COUNT; seq++) {
        bad += (uint64_t)s->received[seq] + s->refused[seq] != 1;
    }
    assert_int_equal(bad, 0);
    assert_true(s->nreceived > 0);
    assert_int_equal(atomic_load(&s->ring.head), s->nreceived);
    assert_int_equal(atomic_load(&s->ring.tail), s->nreceived);

    free(s->refused);
    free(s->received);
    acct_ring_fini(&s->ring);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_rounds_up_to_power_of_two),
        cmocka_unit_test(test_rounded_capacity_is_usable),
        cmocka_unit_test(test_push_fails_when_full_and_counts_dropped),
        cmocka_unit_test(test_push_succeeds_again_after_one_pop),
        cmocka_unit_test(test_capacity_one_holds_one),
        cmocka_unit_test(test_pop_on_empty_returns_zero_and_leaves_out_alone),
        cmocka_unit_test(test_pop_returns_deltas_in_push_order),
        cmocka_unit_test(test_pop_copies_at_most_max),
        cmocka_unit_test(test_fifo_holds_over_many_wraps),
        cmocka_unit_test(test_fifo_holds_across_counter_overflow),
        cmocka_unit_test(test_two_threads_lose_and_reorder_nothing_but_refused_pushes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
