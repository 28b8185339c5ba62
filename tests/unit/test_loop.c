/* tests/unit/test_loop.c: the event loop, run against every backend built here.
 *
 * Each behaviour test takes the backend's name as its cmocka state and runs
 * once per backend. A watchdog tick stops any run that would otherwise hang,
 * and the test then fails on its own check rather than timing out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/loop.h"

#define TEST_SETSIZE 1024
#define WATCHDOG_MS 20
#define WATCHDOG_TICKS 100 /* 2 s */

struct calls {
    int n;
    int last_fd;
    int last_mask;
    int ticks;
    bool stop_on_call;
};

static void watchdog_tick(struct loop *l, void *arg)
{
    struct calls *c = arg;

    if (++c->ticks >= WATCHDOG_TICKS) {
        loop_stop(l);
    }
}

static void record_fn(struct loop *l, int fd, int mask, void *arg)
{
    struct calls *c = arg;

    c->n++;
    c->last_fd = fd;
    c->last_mask = mask;
    if (c->stop_on_call) {
        loop_stop(l);
    }
}

static struct loop *new_loop(void **state)
{
    struct loop *l = NULL;
    struct mk_errbuf eb = {{0}};

    assert_int_equal(loop_new(&l, *state, TEST_SETSIZE, &eb), 0);
    assert_non_null(l);
    assert_string_equal(loop_backend_name(l), (const char *)*state);
    return l;
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe(p), 0);
    assert_true(p[0] < TEST_SETSIZE && p[1] < TEST_SETSIZE);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
}

static void close_pipe(int p[2])
{
    close(p[0]);
    close(p[1]);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_readable_pipe_calls_fn_with_read(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {.stop_on_call = true};
    int p[2];

    make_pipe(p);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &c), 0);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &c);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.last_fd, p[0]);
    assert_int_equal(c.last_mask, LOOP_READ);
    loop_del(l, p[0], LOOP_READ);
    close_pipe(p);
    loop_free(l);
}

static void test_idle_pipe_does_not_call_fn(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {0};
    struct calls wd = {0};
    int p[2];

    make_pipe(p);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &c), 0);
    wd.ticks = WATCHDOG_TICKS - 5; /* stop after 5 ticks */
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &wd);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 0);
    loop_del(l, p[0], LOOP_READ);
    close_pipe(p);
    loop_free(l);
}

static void test_write_interest_fires_when_writable(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {.stop_on_call = true};
    int p[2];

    make_pipe(p);
    assert_int_equal(loop_add(l, p[1], LOOP_WRITE, record_fn, &c), 0);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &c);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.last_fd, p[1]);
    assert_int_equal(c.last_mask, LOOP_WRITE);
    loop_del(l, p[1], LOOP_WRITE);
    close_pipe(p);
    loop_free(l);
}

static void test_read_and_write_ready_report_both_bits(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {.stop_on_call = true};
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(loop_add(l, sv[0], LOOP_READ, record_fn, &c), 0);
    assert_int_equal(loop_add(l, sv[0], LOOP_WRITE, record_fn, &c), 0);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &c);
    assert_int_equal(loop_run(l), 0);
    /* kqueue may report the two filters as two calls; both bits arrive. */
    assert_true(c.n >= 1 && c.n <= 2);
    assert_int_equal(c.last_fd, sv[0]);
    if (c.n == 1) {
        assert_int_equal(c.last_mask, LOOP_READ | LOOP_WRITE);
    }
    loop_del(l, sv[0], LOOP_READ | LOOP_WRITE);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void test_del_of_write_keeps_read(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {.stop_on_call = true};
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(loop_add(l, sv[0], LOOP_READ | LOOP_WRITE, record_fn, &c), 0);
    loop_del(l, sv[0], LOOP_WRITE);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &c);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.last_mask, LOOP_READ);
    loop_del(l, sv[0], LOOP_READ);
    close(sv[0]);
    close(sv[1]);
    loop_free(l);
}

static void test_del_stops_events(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {0};
    struct calls wd = {.ticks = WATCHDOG_TICKS - 5};
    int p[2];

    make_pipe(p);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &c), 0);
    loop_del(l, p[0], LOOP_READ);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &wd);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(wd.ticks, WATCHDOG_TICKS);
    close_pipe(p);
    loop_free(l);
}

/* The connection path: forget, then close; the number reused at once must
 * be watched afresh, with nothing left over from the closed fd. */
static void test_forget_then_close_then_reuse(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {0};
    struct calls wd = {.ticks = WATCHDOG_TICKS - 5};
    int p[2], q[2];

    make_pipe(p);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &c), 0);
    loop_forget(l, p[0]);
    close_pipe(p);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &wd);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 0);

    make_pipe(q);
    assert_int_equal(write(q[1], "y", 1), 1);
    c.stop_on_call = true;
    wd.ticks = 0;
    assert_int_equal(loop_add(l, q[0], LOOP_READ, record_fn, &c), 0);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.last_fd, q[0]);
    assert_int_equal(c.last_mask, LOOP_READ);
    loop_forget(l, q[0]);
    close_pipe(q);
    loop_free(l);
}

static void test_hangup_reaches_reader_as_read(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {.stop_on_call = true};
    int p[2];

    make_pipe(p);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &c), 0);
    close(p[1]);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &c);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.last_mask, LOOP_READ);
    loop_del(l, p[0], LOOP_READ);
    close(p[0]);
    loop_free(l);
}

static void test_error_reaches_writer_as_write_only(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {.stop_on_call = true};
    int p[2];

    make_pipe(p);
    assert_int_equal(loop_add(l, p[1], LOOP_WRITE, record_fn, &c), 0);
    close(p[0]);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &c);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(c.n, 1);
    /* Not LOOP_READ: the fd never asked for it. */
    assert_int_equal(c.last_mask, LOOP_WRITE);
    loop_del(l, p[1], LOOP_WRITE);
    close(p[1]);
    loop_free(l);
}

static void test_add_replaces_handler(void **state)
{
    struct loop *l = new_loop(state);
    struct calls first = {.stop_on_call = true};
    struct calls second = {.stop_on_call = true};
    int p[2];

    make_pipe(p);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &first), 0);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &second), 0);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &second);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(first.n, 0);
    assert_int_equal(second.n, 1);
    loop_del(l, p[0], LOOP_READ);
    close_pipe(p);
    loop_free(l);
}

/* Two readable pipes; whichever handler runs first removes the other. */
struct pair {
    int fd[2];
    int calls[2];
};

static void pair_fn(struct loop *l, int fd, int mask, void *arg)
{
    struct pair *pr = arg;
    int me = fd == pr->fd[0] ? 0 : 1;

    pr->calls[me]++;
    loop_del(l, pr->fd[1 - me], LOOP_READ);
    loop_stop(l);
}

static void test_fd_removed_by_earlier_callback_is_not_dispatched(void **state)
{
    struct loop *l = new_loop(state);
    struct calls wd = {0};
    struct pair pr = {.calls = {0, 0}};
    int a[2];
    int b[2];

    make_pipe(a);
    make_pipe(b);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    pr.fd[0] = a[0];
    pr.fd[1] = b[0];
    assert_int_equal(loop_add(l, a[0], LOOP_READ, pair_fn, &pr), 0);
    assert_int_equal(loop_add(l, b[0], LOOP_READ, pair_fn, &pr), 0);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &wd);
    assert_int_equal(loop_run(l), 0);
    /* Both were ready in one batch, yet only one handler ran. */
    assert_int_equal(pr.calls[0] + pr.calls[1], 1);
    loop_del(l, a[0], LOOP_READ);
    loop_del(l, b[0], LOOP_READ);
    close_pipe(a);
    close_pipe(b);
    loop_free(l);
}

/* Many fds at once: exercises the poll backend's swap-remove while handlers
 * remove fds in the middle of a batch. */
struct many {
    int rd[64];
    int wr[64];
    int calls[64];
    int left;
};

static void many_fn(struct loop *l, int fd, int mask, void *arg)
{
    struct many *m = arg;
    char ch;

    for (int i = 0; i < 64; i++) {
        if (m->rd[i] == fd) {
            m->calls[i]++;
            assert_int_equal(read(fd, &ch, 1), 1);
            assert_int_equal(ch, (char)i);
        }
    }
    loop_del(l, fd, LOOP_READ);
    if (--m->left == 0) {
        loop_stop(l);
    }
}

static void test_each_of_many_ready_fds_dispatched_once(void **state)
{
    struct loop *l = new_loop(state);
    struct calls wd = {0};
    struct many m = {.left = 64};

    for (int i = 0; i < 64; i++) {
        int p[2];
        char ch = (char)i;
        make_pipe(p);
        m.rd[i] = p[0];
        m.wr[i] = p[1];
        assert_int_equal(loop_add(l, p[0], LOOP_READ, many_fn, &m), 0);
        /* Every other one ready now; the rest after the first batch. */
        if (i % 2 == 0) {
            assert_int_equal(write(p[1], &ch, 1), 1);
        }
    }
    for (int i = 1; i < 64; i += 2) {
        char ch = (char)i;
        assert_int_equal(write(m.wr[i], &ch, 1), 1);
    }
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &wd);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(m.left, 0);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(m.calls[i], 1);
        close(m.rd[i]);
        close(m.wr[i]);
    }
    loop_free(l);
}

struct ticker {
    int n;
    int stop_at;
};

static void count_tick(struct loop *l, void *arg)
{
    struct ticker *t = arg;

    if (++t->n >= t->stop_at) {
        loop_stop(l);
    }
}

static void test_tick_runs_about_every_period(void **state)
{
    struct loop *l = new_loop(state);
    struct ticker t = {.stop_at = 5};
    int64_t t0 = now_ms();
    int64_t took;

    loop_set_tick(l, 20, count_tick, &t);
    assert_int_equal(loop_run(l), 0);
    took = now_ms() - t0;
    assert_int_equal(t.n, 5);
    /* Never early (5 periods); the upper bound is loose, not a timing test. */
    assert_true(took >= 5 * 20 - 1);
    assert_true(took < 5000);
    loop_free(l);
}

struct timed_ticker {
    int n;
    int64_t t0;
};

static void timed_tick(struct loop *l, void *arg)
{
    struct timed_ticker *t = arg;

    t->n++;
    if (now_ms() - t->t0 >= 200) {
        loop_stop(l);
    }
}

static void test_tick_count_in_200ms_fits_period(void **state)
{
    struct loop *l = new_loop(state);
    struct timed_ticker t = {0};

    t.t0 = now_ms();
    loop_set_tick(l, 20, timed_tick, &t);
    assert_int_equal(loop_run(l), 0);
    /* Ticks are never early, so at most 200 / 20 of them; at least a few
     * even on a loaded machine. */
    assert_true(t.n >= 2);
    assert_true(t.n <= 10);
    loop_free(l);
}

/* before_wait runs once before the first wait and once after every batch
 * of handlers, seeing what those handlers did (the worker writes a turn's
 * journal there, after the turn's requests and before their answers). */
struct turns {
    int handled;       /* handler calls so far */
    int seen[8];       /* handler count seen by each before_wait call */
    int n;
};

static void turn_fn(struct loop *l, int fd, int mask, void *arg)
{
    struct turns *t = arg;
    char buf[8];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    t->handled++;
}

static void turn_before_wait(struct loop *l, void *arg)
{
    struct turns *t = arg;
    t->seen[t->n++] = t->handled;
    if (t->n == 3) {
        loop_stop(l);
    }
}

static void test_before_wait_runs_after_each_batch(void **state)
{
    struct loop *l = new_loop(state);
    struct turns t = {0};
    int p[2];

    make_pipe(p);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(loop_add(l, p[0], LOOP_READ, turn_fn, &t), 0);
    loop_set_before_wait(l, turn_before_wait, &t);
    struct calls watchdog = {0};
    loop_set_tick(l, 5, watchdog_tick, &watchdog);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.seen[0], 0); /* before the first wait: nothing handled yet */
    assert_int_equal(t.seen[1], 1); /* after the batch that read the pipe */
    assert_int_equal(t.seen[2], 1); /* after a tick-only wake-up: nothing new */
    loop_del(l, p[0], LOOP_READ);
    close_pipe(p);
    loop_free(l);
}

/* Pipes that are all ready at first; when the first `refill_after` calls
 * are done, pipe 0 is made ready again and the time noted; the call after
 * that notes the time it came and stops the loop. */
struct refill {
    int p[LOOP_COALESCE_EVENTS][2];
    int refill_after;
    int calls;
    int64_t refilled_ms, answered_ms;
};

static void refill_fn(struct loop *l, int fd, int mask, void *arg)
{
    struct refill *r = arg;
    char buf[8];

    (void)mask;
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    r->calls++;
    if (r->calls == r->refill_after) {
        r->refilled_ms = now_ms();
        assert_int_equal(write(r->p[0][1], "y", 1), 1);
    } else if (r->calls == r->refill_after + 1) {
        r->answered_ms = now_ms();
        loop_stop(l);
    }
}

/* Runs a loop dozing doze_ms over n ready pipes; the milliseconds from the
 * refill at the end of the first turn to the call it brings. */
static int64_t refill_delay(void **state, int n, int doze_ms)
{
    struct loop *l = new_loop(state);
    struct refill r = {.refill_after = n};
    struct calls watchdog = {0};

    for (int i = 0; i < n; i++) {
        make_pipe(r.p[i]);
        assert_int_equal(write(r.p[i][1], "x", 1), 1);
        assert_int_equal(loop_add(l, r.p[i][0], LOOP_READ, refill_fn, &r), 0);
    }
    loop_set_coalesce(l, doze_ms);
    loop_set_tick(l, WATCHDOG_MS, watchdog_tick, &watchdog);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(r.calls, n + 1);
    for (int i = 0; i < n; i++) {
        loop_del(l, r.p[i][0], LOOP_READ);
        close_pipe(r.p[i]);
    }
    loop_free(l);
    return r.answered_ms - r.refilled_ms;
}

static void test_light_turn_dozes_before_the_next_wait(void **state)
{
    /* One ready fd is a light turn: the fd made ready during it is seen
     * only after the doze (nanosleep sleeps at least that long). */
    assert_true(refill_delay(state, 1, 400) >= 400);
}

static void test_busy_turn_does_not_doze(void **state)
{
    /* A turn of LOOP_COALESCE_EVENTS fds goes straight back to waiting: the
     * refill is seen long before a doze of 1.5 s would end (the watchdog
     * stops the loop after 2 s). */
    assert_true(refill_delay(state, LOOP_COALESCE_EVENTS, 1500) < 750);
}

static void test_stop_from_tick_returns_from_run(void **state)
{
    struct loop *l = new_loop(state);
    struct ticker t = {.stop_at = 1};

    loop_set_tick(l, 1, count_tick, &t);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(t.n, 1);
    /* A stopped loop runs again. */
    t.stop_at = 2;
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(t.n, 2);
    loop_free(l);
}

static void test_fd_at_setsize_is_elimit(void **state)
{
    struct loop *l = NULL;
    struct calls c = {0};

    assert_int_equal(loop_new(&l, *state, 8, NULL), 0);
    assert_int_equal(loop_add(l, 8, LOOP_READ, record_fn, &c), MK_ELIMIT);
    assert_int_equal(loop_add(l, 100000, LOOP_READ, record_fn, &c), MK_ELIMIT);
    assert_int_equal(loop_add(l, -1, LOOP_READ, record_fn, &c), MK_EINVAL);
    /* Out-of-range deletes are ignored, not a crash. */
    loop_del(l, 8, LOOP_READ);
    loop_del(l, -1, LOOP_READ);
    loop_free(l);
}

static void test_add_of_closed_fd_fails(void **state)
{
    struct loop *l = new_loop(state);
    struct calls c = {0};
    int p[2];

    make_pipe(p);
    close_pipe(p);
    /* poll only notices at wait time (POLLNVAL); epoll/kqueue refuse now. */
    if (strcmp(*state, "poll") != 0) {
        assert_int_equal(loop_add(l, p[0], LOOP_READ, record_fn, &c), MK_EIO);
    }
    loop_free(l);
}

static void test_unknown_backend_is_einval(void **state)
{
    struct loop *l = NULL;
    struct mk_errbuf eb = {{0}};

    assert_int_equal(loop_new(&l, "select", 64, &eb), MK_EINVAL);
    assert_null(l);
    assert_non_null(strstr(eb.msg, "select"));
    assert_int_equal(loop_new(&l, "", 64, &eb), MK_EINVAL);
    assert_int_equal(loop_new(&l, NULL, 64, &eb), MK_EINVAL);
    assert_null(l);
}

static void test_bad_setsize_is_einval(void **state)
{
    struct loop *l = NULL;

    assert_int_equal(loop_new(&l, "poll", 0, NULL), MK_EINVAL);
    assert_int_equal(loop_new(&l, "poll", -5, NULL), MK_EINVAL);
    assert_null(l);
}

/* What "auto" must pick, and the known backends this build lacks. */
#if defined(MIKA_HAVE_EPOLL)
#define NATIVE_BACKEND "epoll"
#elif defined(MIKA_HAVE_KQUEUE)
#define NATIVE_BACKEND "kqueue"
#else
#define NATIVE_BACKEND "poll"
#endif
static const char *const not_built[] = {
#ifndef MIKA_HAVE_KQUEUE
    "kqueue",
#endif
#ifndef MIKA_HAVE_EPOLL
    "epoll",
#endif
    NULL,
};

static void test_auto_prefers_native_backend(void **state)
{
    struct loop *l = NULL;

    assert_int_equal(loop_new(&l, "auto", 64, NULL), 0);
    assert_string_equal(loop_backend_name(l), NATIVE_BACKEND);
    loop_free(l);
}

static void test_backend_not_built_here_is_enotsup(void **state)
{
    for (size_t i = 0; not_built[i] != NULL; i++) {
        struct loop *l = NULL;
        struct mk_errbuf eb = {{0}};

        assert_int_equal(loop_new(&l, not_built[i], 64, &eb), MK_ENOTSUP);
        assert_null(l);
        assert_non_null(strstr(eb.msg, not_built[i]));
    }
    loop_free(NULL);
}

#define BACKEND_TESTS(be)                                                                 \
    cmocka_unit_test_prestate(test_readable_pipe_calls_fn_with_read, be),                 \
        cmocka_unit_test_prestate(test_idle_pipe_does_not_call_fn, be),                   \
        cmocka_unit_test_prestate(test_write_interest_fires_when_writable, be),           \
        cmocka_unit_test_prestate(test_read_and_write_ready_report_both_bits, be),        \
        cmocka_unit_test_prestate(test_del_of_write_keeps_read, be),                      \
        cmocka_unit_test_prestate(test_del_stops_events, be),                             \
        cmocka_unit_test_prestate(test_forget_then_close_then_reuse, be),                 \
        cmocka_unit_test_prestate(test_hangup_reaches_reader_as_read, be),                \
        cmocka_unit_test_prestate(test_error_reaches_writer_as_write_only, be),           \
        cmocka_unit_test_prestate(test_add_replaces_handler, be),                         \
        cmocka_unit_test_prestate(test_fd_removed_by_earlier_callback_is_not_dispatched,  \
                                  be),                                                    \
        cmocka_unit_test_prestate(test_each_of_many_ready_fds_dispatched_once, be),       \
        cmocka_unit_test_prestate(test_tick_runs_about_every_period, be),                 \
        cmocka_unit_test_prestate(test_tick_count_in_200ms_fits_period, be),              \
        cmocka_unit_test_prestate(test_stop_from_tick_returns_from_run, be),              \
        cmocka_unit_test_prestate(test_fd_at_setsize_is_elimit, be),                      \
        cmocka_unit_test_prestate(test_add_of_closed_fd_fails, be),                       \
        cmocka_unit_test_prestate(test_before_wait_runs_after_each_batch, be),            \
        cmocka_unit_test_prestate(test_light_turn_dozes_before_the_next_wait, be),        \
        cmocka_unit_test_prestate(test_busy_turn_does_not_doze, be)

int main(void)
{
    static const struct CMUnitTest common[] = {
        cmocka_unit_test(test_unknown_backend_is_einval),
        cmocka_unit_test(test_bad_setsize_is_einval),
        cmocka_unit_test(test_auto_prefers_native_backend),
        cmocka_unit_test(test_backend_not_built_here_is_enotsup),
    };
    static const struct CMUnitTest poll_tests[] = {BACKEND_TESTS("poll")};
    int failed = 0;

    failed += cmocka_run_group_tests_name("loop", common, NULL, NULL);
    failed += cmocka_run_group_tests_name("loop/poll", poll_tests, NULL, NULL);
#ifdef MIKA_HAVE_EPOLL
    {
        static const struct CMUnitTest epoll_tests[] = {BACKEND_TESTS("epoll")};
        failed += cmocka_run_group_tests_name("loop/epoll", epoll_tests, NULL, NULL);
    }
#endif
#ifdef MIKA_HAVE_KQUEUE
    {
        static const struct CMUnitTest kqueue_tests[] = {BACKEND_TESTS("kqueue")};
        failed += cmocka_run_group_tests_name("loop/kqueue", kqueue_tests, NULL, NULL);
    }
#endif
    return failed == 0 ? 0 : 1;
}
