/* tests/unit/test_flusher.c: the accounting write-behind (acct/flusher.c)
 * against the real "sqlite" store, no mocks.
 *
 * Each test gets a fresh database in a temp directory. A second, raw sqlite3
 * connection (the "shell") plays the operator: it inserts the users and
 * torrents the deltas refer to, reads the books back, and holds the write
 * lock (BEGIN IMMEDIATE) to make the store busy. Waits poll the database
 * against a deadline instead of sleeping a fixed time. Log lines go to a file
 * so tests can see the flusher's retries and its shutdown summary.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acct/flusher.h"
#include "acct/ring.h"
#include "store/store.h"
#include "util/log.h"

#define NUSERS 5       /* user ids 1..NUSERS */
#define NTORRENTS 3    /* torrent ids 1..NTORRENTS */
#define NRINGS 3
#define RING_CAP 65536 /* large enough that no test push is refused */
#define WAIT_MS 15000  /* upper bound on any wait for the flusher */
#define PERIOD_MS 5
#define PERIOD_NEVER_MS 600000 /* the thread never wakes on its own in a test */

struct fixture {
    char dir[64];
    char db[128];
    char log[128];
    int log_fd;
    struct store st;
    sqlite3 *shell;
    struct acct_ring rings[NRINGS];
    struct acct_ring *ring_ptrs[NRINGS];
    struct flusher *fl;
    uint64_t want_up[NUSERS + 1];
    uint64_t want_down[NUSERS + 1];
    uint64_t pushed;
};

static void shell_exec(struct fixture *fx, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(fx->shell, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("shell: %s: %s", sql, err ? err : "?");
    }
}

static int64_t shell_int(struct fixture *fx, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(fx->shell, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-flusher-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/mika.db", fx->dir);
    snprintf(fx->log, sizeof(fx->log), "%s/log", fx->dir);
    fx->log_fd = open(fx->log, O_CREAT | O_WRONLY | O_APPEND, 0600);
    assert_true(fx->log_fd >= 0);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, fx->log_fd);

    struct store_cfg cfg = {.path = fx->db};
    struct mk_errbuf eb = {{0}};
    int rc = store_open(&fx->st, "sqlite", &cfg, &eb);
    if (rc != 0) {
        fail_msg("store_open: %s: %s", mk_err_name(rc), eb.msg);
    }
    assert_int_equal(sqlite3_open(fx->db, &fx->shell), SQLITE_OK);
    sqlite3_busy_timeout(fx->shell, 5000);
    for (int u = 1; u <= NUSERS; u++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "INSERT INTO users (id, passkey) VALUES (%d, 'pk%d')", u, u);
        shell_exec(fx, sql);
    }
    for (int t = 1; t <= NTORRENTS; t++) {
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO torrents (id, info_hash)"
                 " VALUES (%d, X'00000000000000000000000000000000000000%02x')",
                 t, t);
        shell_exec(fx, sql);
    }
    for (int i = 0; i < NRINGS; i++) {
        assert_int_equal(acct_ring_init(&fx->rings[i], RING_CAP), MK_OK);
        fx->ring_ptrs[i] = &fx->rings[i];
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    flusher_stop(fx->fl, 1000);
    store_close(&fx->st);
    sqlite3_close(fx->shell);
    for (int i = 0; i < NRINGS; i++) {
        acct_ring_fini(&fx->rings[i]);
    }
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, 2);
    close(fx->log_fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void start(struct fixture *fx, uint32_t period_ms)
{
    struct mk_errbuf eb = {{0}};
    int rc = flusher_start(&fx->fl, &fx->st, fx->ring_ptrs, NRINGS, period_ms, &eb);
    if (rc != 0) {
        fail_msg("flusher_start: %s: %s", mk_err_name(rc), eb.msg);
    }
}

/* Stops the flusher and returns how long flusher_stop took, in ms. */
static long stop(struct fixture *fx, uint32_t drain_ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    flusher_stop(fx->fl, drain_ms);
    clock_gettime(CLOCK_MONOTONIC, &b);
    fx->fl = NULL;
    return (b.tv_sec - a.tv_sec) * 1000L + (b.tv_nsec - a.tv_nsec) / 1000000L;
}

static void push(struct fixture *fx, int ring, uint32_t user, uint32_t torrent, uint64_t up,
                 uint64_t down, bool snatch)
{
    struct acct_delta d = {
        .user_id = user,
        .torrent_id = torrent,
        .uploaded = up,
        .downloaded = down,
        .snatch = snatch,
        .at = 1700000000 + (int64_t)fx->pushed,
    };
    assert_true(acct_ring_push(&fx->rings[ring], &d));
    fx->want_up[user] += up;
    fx->want_down[user] += down;
    fx->pushed++;
}

/* n deltas of traffic spread over every ring, user and torrent. */
static void push_traffic(struct fixture *fx, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = fx->pushed;
        push(fx, (int)(k % NRINGS), (uint32_t)(k % NUSERS) + 1, (uint32_t)(k % NTORRENTS) + 1,
             (k * 7919) % 100003 + 1, (k % 4 == 0) ? 0 : (k * 104729) % 65537, false);
    }
}

static void user_totals(struct fixture *fx, uint32_t user, uint64_t *up, uint64_t *down)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT uploaded FROM users WHERE id = %" PRIu32, user);
    *up = (uint64_t)shell_int(fx, sql);
    snprintf(sql, sizeof(sql), "SELECT downloaded FROM users WHERE id = %" PRIu32, user);
    *down = (uint64_t)shell_int(fx, sql);
}

static bool books_match(struct fixture *fx)
{
    for (uint32_t u = 1; u <= NUSERS; u++) {
        uint64_t up, down;
        user_totals(fx, u, &up, &down);
        if (up != fx->want_up[u] || down != fx->want_down[u]) {
            return false;
        }
    }
    return true;
}

static void assert_books_match(struct fixture *fx)
{
    for (uint32_t u = 1; u <= NUSERS; u++) {
        uint64_t up, down;
        user_totals(fx, u, &up, &down);
        if (up != fx->want_up[u] || down != fx->want_down[u]) {
            fail_msg("user %u: uploaded %" PRIu64 " (want %" PRIu64 "), downloaded %" PRIu64
                     " (want %" PRIu64 ")",
                     u, up, fx->want_up[u], down, fx->want_down[u]);
        }
    }
}

static int64_t total_traffic(struct fixture *fx)
{
    return shell_int(fx, "SELECT total(uploaded) + total(downloaded) FROM users");
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Polls until the users table holds exactly what was pushed; fails after WAIT_MS. */
static void wait_books_match(struct fixture *fx)
{
    long deadline = now_ms() + WAIT_MS;
    while (!books_match(fx)) {
        if (now_ms() > deadline) {
            assert_books_match(fx);
            fail_msg("books never matched");
        }
        nap_ms(2);
    }
}

/* How many times needle occurs in the log so far. */
static int log_count(struct fixture *fx, const char *needle)
{
    static char buf[1 << 20];
    FILE *f = fopen(fx->log, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        count++;
    }
    return count;
}

static void wait_log_count(struct fixture *fx, const char *needle, int at_least)
{
    long deadline = now_ms() + WAIT_MS;
    while (log_count(fx, needle) < at_least) {
        if (now_ms() > deadline) {
            fail_msg("log never showed \"%s\" %d times", needle, at_least);
        }
        nap_ms(2);
    }
}

static void assert_nothing_dropped(struct fixture *fx)
{
    for (int i = 0; i < NRINGS; i++) {
        assert_int_equal(atomic_load(&fx->rings[i].dropped), 0);
    }
}

/* ---- deltas reach the books ------------------------------------------------- */

static void test_deltas_reach_users_table_exactly(void **state)
{
    struct fixture *fx = *state;
    start(fx, PERIOD_MS);
    push_traffic(fx, 3000);
    wait_books_match(fx);
    /* A second wave after the first landed: the thread keeps running. */
    push_traffic(fx, 3000);
    wait_books_match(fx);
    stop(fx, 1000);
    assert_books_match(fx); /* and nothing was applied twice */
    assert_nothing_dropped(fx);
    assert_int_equal(log_count(fx, "stopped after writing 6000 deltas"), 1);
    assert_int_equal(log_count(fx, "not written"), 0);
}

/* More than one batch (8192 deltas) waiting at once drains in full. */
static void test_burst_larger_than_one_batch_arrives_whole(void **state)
{
    struct fixture *fx = *state;
    push_traffic(fx, 30000);
    start(fx, PERIOD_MS);
    wait_books_match(fx);
    stop(fx, 1000);
    assert_books_match(fx);
    assert_int_equal(log_count(fx, "stopped after writing 30000 deltas"), 1);
}

static void test_snatch_is_recorded_once(void **state)
{
    struct fixture *fx = *state;
    start(fx, PERIOD_MS);
    /* User 1 completes torrent 1 three times, from different rings and in
     * different batches; users 2 and 1 also snatch others once each. */
    push(fx, 0, 1, 1, 10, 20, true);
    push(fx, 1, 1, 1, 0, 0, true);
    push(fx, 2, 2, 1, 5, 0, true);
    push(fx, 0, 1, 2, 0, 7, true);
    wait_books_match(fx);
    long deadline = now_ms() + WAIT_MS;
    while (shell_int(fx, "SELECT count(*) FROM snatches") < 3 && now_ms() < deadline) {
        nap_ms(2);
    }
    push(fx, 2, 1, 1, 1, 1, true);
    stop(fx, 1000);

    assert_books_match(fx);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches"), 3);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches"
                                   " WHERE user_id = 1 AND torrent_id = 1"),
                     1);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches"
                                   " WHERE user_id = 2 AND torrent_id = 1"),
                     1);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches"
                                   " WHERE user_id = 1 AND torrent_id = 2"),
                     1);
    /* The first snatch's time is kept, not a later repeat's. */
    assert_int_equal(shell_int(fx, "SELECT at FROM snatches WHERE user_id = 1 AND torrent_id = 1"),
                     1700000000);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 1"), 2);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 2"), 1);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 3"), 0);
}

/* ---- a locked store ----------------------------------------------------------- */

static void test_locked_store_keeps_batch_and_applies_it_once_after_unlock(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "BEGIN IMMEDIATE");
    start(fx, PERIOD_MS);
    push_traffic(fx, 20000); /* more than one batch: some waits in the rings */
    push(fx, 1, 3, 3, 0, 0, true);

    /* Two failed attempts means the flusher has retried at least once. */
    wait_log_count(fx, "store apply failed (EUNAVAIL)", 2);
    assert_int_equal(total_traffic(fx), 0);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches"), 0);

    /* Deltas keep coming while the store is locked. */
    push_traffic(fx, 500);
    wait_log_count(fx, "store apply failed (EUNAVAIL)", 3);
    assert_int_equal(total_traffic(fx), 0);

    shell_exec(fx, "COMMIT");
    wait_books_match(fx);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches"), 1);
    stop(fx, 1000);
    assert_books_match(fx);
    assert_nothing_dropped(fx);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 3"), 1);
    assert_int_equal(log_count(fx, "stopped after writing 20501 deltas"), 1);
}

/* ---- flusher_stop --------------------------------------------------------------- */

static void test_stop_drains_everything_pushed_before_it(void **state)
{
    struct fixture *fx = *state;
    /* The thread never wakes on its own: only flusher_stop can write these. */
    start(fx, PERIOD_NEVER_MS);
    push_traffic(fx, 20000);
    push(fx, 2, 4, 2, 1, 1, true);
    long took = stop(fx, 1000);
    assert_true(took < WAIT_MS);
    assert_books_match(fx);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches WHERE user_id = 4"), 1);
    assert_int_equal(log_count(fx, "stopped after writing 20001 deltas"), 1);
    for (int i = 0; i < NRINGS; i++) {
        assert_int_equal(atomic_load(&fx->rings[i].head), atomic_load(&fx->rings[i].tail));
    }
}

static void test_stop_right_after_start_with_a_short_period_drains(void **state)
{
    struct fixture *fx = *state;
    start(fx, 1);
    push_traffic(fx, 777);
    stop(fx, 1000);
    assert_books_match(fx);
    assert_int_equal(log_count(fx, "stopped after writing 777 deltas"), 1);
}

static void test_stop_with_store_locked_gives_up_after_drain_ms(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "BEGIN IMMEDIATE");
    start(fx, PERIOD_NEVER_MS);
    push_traffic(fx, 100);
    long took = stop(fx, 300);
    /* It tried for the whole drain time, then gave up within a bounded
     * overshoot: one busy wait in apply (100 ms) plus one back-off nap. */
    assert_true(took >= 300);
    assert_true(took < 2000);
    shell_exec(fx, "ROLLBACK");
    assert_int_equal(total_traffic(fx), 0);
    assert_int_equal(log_count(fx, "store unavailable at shutdown: 100 deltas not written"), 1);
    assert_int_equal(log_count(fx, "stopped after writing 0 deltas"), 1);
}

static void test_stop_with_store_locked_and_zero_drain_tries_once(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "BEGIN IMMEDIATE");
    start(fx, PERIOD_NEVER_MS);
    push_traffic(fx, 10);
    long took = stop(fx, 0);
    assert_true(took < 1000);
    shell_exec(fx, "ROLLBACK");
    assert_int_equal(total_traffic(fx), 0);
    assert_int_equal(log_count(fx, "store unavailable at shutdown: 10 deltas not written"), 1);
}

/* Holds the write lock for a while from another thread, then lets go. */
struct unlocker {
    struct fixture *fx;
    long hold_ms;
};

static void *unlock_later(void *arg)
{
    struct unlocker *u = arg;
    nap_ms(u->hold_ms);
    sqlite3_exec(u->fx->shell, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

static void test_stop_keeps_retrying_until_lock_is_released_within_drain_ms(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "BEGIN IMMEDIATE");
    start(fx, PERIOD_NEVER_MS);
    push_traffic(fx, 5000);
    struct unlocker u = {fx, 400};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, unlock_later, &u), 0);
    long took = stop(fx, 10000);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(took >= 400);
    assert_true(took < 10000);
    assert_books_match(fx);
    assert_int_equal(log_count(fx, "not written"), 0);
    assert_int_equal(log_count(fx, "stopped after writing 5000 deltas"), 1);
}

static void test_stop_null_is_a_no_op(void **state)
{
    flusher_stop(NULL, 0);
    flusher_stop(NULL, 1000);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_deltas_reach_users_table_exactly),
        T(test_burst_larger_than_one_batch_arrives_whole),
        T(test_snatch_is_recorded_once),
        T(test_locked_store_keeps_batch_and_applies_it_once_after_unlock),
        T(test_stop_drains_everything_pushed_before_it),
        T(test_stop_right_after_start_with_a_short_period_drains),
        T(test_stop_with_store_locked_gives_up_after_drain_ms),
        T(test_stop_with_store_locked_and_zero_drain_tries_once),
        T(test_stop_keeps_retrying_until_lock_is_released_within_drain_ms),
        cmocka_unit_test(test_stop_null_is_a_no_op),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
