/* tests/unit/test_flusher.c: the books' write-behind (acct/flusher.c) with a
 * real journal directory (acct/journal.c writers) and the real "sqlite"
 * store, no mocks.
 *
 * Each test gets a fresh temp directory holding the database, the journal
 * directory and a log file. A second, raw sqlite3 connection (the "shell")
 * plays the operator: it inserts the users and torrents the records refer
 * to, reads the books back, and holds the write lock (BEGIN IMMEDIATE) to
 * make the store busy. Every record a test journals is also added to
 * want_up/want_down, so "exact" means: each user's stored totals equal the
 * sum of that user's records, byte for byte. A crash is simulated by closing
 * a writer's file descriptor without renaming its .open segment.
 * Out of memory is made on demand: where the linker can (MIKA_TEST_WRAP_ALLOC,
 * see CMakeLists.txt), the test is linked with --wrap=realloc,--wrap=calloc,
 * so the flusher's and the store's buffers come through a budget below.
 * Not here: the record format and rotation rules (test_journal.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "acct/flusher.h"
#include "acct/journal.h"
#include "store/store.h"
#include "util/log.h"

#define NUSERS 6             /* user ids 1..NUSERS */
#define NTORRENTS 3          /* torrent ids 1..NTORRENTS */
#define BATCH_MAX 4096       /* records per writer turn */
#define SEG_BIG (1u << 30)   /* a segment that never rotates by size */
#define SEG_NEVER_MS 3600000 /* nor by age */
#define MAX_RECORDS 100000   /* the flusher's bound on one segment */
#define WAIT_MS 15000        /* upper bound on any wait for the flusher thread */
#define PERIOD_MS 5
#define PERIOD_NEVER_MS 600000 /* the thread never wakes on its own in a test */
#define REC sizeof(struct journal_record)

struct fixture {
    char dir[64];
    char db[128];
    char jdir[128];
    char log[128];
    int log_fd;
    struct store st;
    sqlite3 *shell;
    struct flusher *fl;
    uint64_t want_up[NUSERS + 1];
    uint64_t want_down[NUSERS + 1];
    uint64_t journaled; /* records added, for varied values */
};

/* ---- out of memory on demand ------------------------------------------------- */

#ifdef MIKA_TEST_WRAP_ALLOC
/* Counts the reallocs and callocs of mika's code (the test's too) and fails
 * the one numbered alloc_fail_at (from 0), once; SIZE_MAX: none fails.
 * SQLite and libc allocate on their own. */
static size_t alloc_fail_at = SIZE_MAX;
static size_t alloc_count;

void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_calloc(size_t n, size_t size);

static bool alloc_allowed(void)
{
    return alloc_count++ != alloc_fail_at;
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_allowed() ? __real_realloc(p, n) : NULL;
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_allowed() ? __real_calloc(n, size) : NULL;
}
#endif

/* ---- the shell: the operator's own connection ------------------------------- */

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

static int64_t total_traffic(struct fixture *fx)
{
    return shell_int(fx, "SELECT total(uploaded) + total(downloaded) FROM users");
}

/* ---- time and the log ------------------------------------------------------- */

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

/* ---- fixture -------------------------------------------------------------------- */

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-flusher-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/mika.db", fx->dir);
    snprintf(fx->jdir, sizeof(fx->jdir), "%s/mika.db.journal", fx->dir);
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
    assert_true(journal_recover(fx->jdir, &eb) == 0); /* creates the directory */
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    flusher_stop(fx->fl, 1000);
    store_close(&fx->st);
    sqlite3_close(fx->shell);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, 2);
    close(fx->log_fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* ---- the journal side ---------------------------------------------------------- */

static void writer_open(struct fixture *fx, struct journal_writer *w, uint64_t boot,
                        uint32_t writer, uint64_t seg_max_bytes)
{
    struct mk_errbuf eb = {{0}};
    int rc = journal_writer_open(w, fx->jdir, boot, writer, BATCH_MAX, seg_max_bytes,
                                 SEG_NEVER_MS, JOURNAL_FSYNC_NEVER, 0, &eb);
    if (rc != MK_OK) {
        fail_msg("journal_writer_open: %s: %s", mk_err_name(rc), eb.msg);
    }
}

/* Adds one record to w's batch and to the books the test expects. */
static void add(struct fixture *fx, struct journal_writer *w, uint32_t user, uint32_t torrent,
                uint64_t up, uint64_t down, bool snatch)
{
    struct acct_delta d = {
        .user_id = user,
        .torrent_id = torrent,
        .uploaded = up,
        .downloaded = down,
        .snatch = snatch,
        .at = 1700000000 + (int64_t)fx->journaled,
    };
    assert_int_equal(journal_add(w, &d), MK_OK);
    fx->want_up[user] += up;
    fx->want_down[user] += down;
    fx->journaled++;
}

static void commit(struct journal_writer *w)
{
    assert_int_equal(journal_commit(w, 1000), MK_OK);
}

/* n records of varied traffic over every user and torrent, committed in
 * turns of up to `turn` records. */
static void journal_traffic(struct fixture *fx, struct journal_writer *w, uint64_t n,
                            uint64_t turn)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = fx->journaled;
        add(fx, w, (uint32_t)(k % NUSERS) + 1, (uint32_t)(k % NTORRENTS) + 1,
            (k * 7919) % 100003 + 1, (k % 4 == 0) ? 0 : (k * 104729) % 65537, false);
        if ((i + 1) % turn == 0) {
            commit(w);
        }
    }
    commit(w);
}

/* Simulates kill -9: the open segment stays ".open", nothing is renamed. */
static void writer_crash(struct journal_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    free(w->batch);
    w->batch = NULL;
}

static int count_files(struct fixture *fx, const char *ext)
{
    DIR *d = opendir(fx->jdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > el && strcmp(e->d_name + len - el, ext) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The path of the only file in the journal dir ending in ext. */
static void only_file(struct fixture *fx, const char *ext, char *out, size_t cap)
{
    DIR *d = opendir(fx->jdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > el && strcmp(e->d_name + len - el, ext) == 0) {
            snprintf(out, cap, "%s/%s", fx->jdir, e->d_name);
            n++;
        }
    }
    closedir(d);
    assert_int_equal(n, 1);
}

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void spit(const char *path, const uint8_t *buf, size_t len, const char *mode)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---- the flusher side ---------------------------------------------------------- */

static void flusher_make(struct fixture *fx, size_t max_records, uint32_t period_ms)
{
    struct mk_errbuf eb = {{0}};
    int rc = flusher_new(&fx->fl, &fx->st, fx->jdir, max_records, period_ms, &eb);
    if (rc != MK_OK) {
        fail_msg("flusher_new: %s: %s", mk_err_name(rc), eb.msg);
    }
}

static void flusher_start_or_fail(struct fixture *fx);

/* A started flusher that applies what waits every period (no apply delay). */
static void flusher_run(struct fixture *fx, uint32_t period_ms)
{
    flusher_make(fx, MAX_RECORDS, period_ms);
    flusher_set_apply_delay(fx->fl, 0);
    flusher_start_or_fail(fx);
}

/* Stops the flusher and returns how long flusher_stop took, in ms. */
static long stop(struct fixture *fx, uint32_t drain_ms)
{
    long a = now_ms();
    flusher_stop(fx->fl, drain_ms);
    fx->fl = NULL;
    return now_ms() - a;
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

/* Polls until the books are exact and every closed segment is gone. */
static void wait_all_applied(struct fixture *fx)
{
    long deadline = now_ms() + WAIT_MS;
    while (!books_match(fx) || count_files(fx, ".seg") != 0) {
        if (now_ms() > deadline) {
            assert_books_match(fx);
            fail_msg("%d segments never went away", count_files(fx, ".seg"));
        }
        nap_ms(2);
    }
}

/* ---- passes ------------------------------------------------------------------------ */

static void test_pass_applies_closed_segments_exactly_and_deletes_them(void **state)
{
    struct fixture *fx = *state;
    /* Three workers; two rotate every 100 records, so there are many segments. */
    struct journal_writer w[3];
    writer_open(fx, &w[0], 0xb0, 0, 100 * REC);
    writer_open(fx, &w[1], 0xb0, 1, 100 * REC);
    writer_open(fx, &w[2], 0xb0, 2, SEG_BIG);
    journal_traffic(fx, &w[0], 1000, 37);
    journal_traffic(fx, &w[1], 450, 100);
    journal_traffic(fx, &w[2], 777, 500);
    for (int i = 0; i < 3; i++) {
        journal_writer_close(&w[i]);
    }
    assert_int_equal(count_files(fx, ".open"), 0);
    int segs = count_files(fx, ".seg");
    assert_true(segs >= 10 + 5 + 1);

    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_int_equal(flusher_applied_records(fx->fl), 2227);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), segs);
    assert_int_equal(shell_int(fx, "SELECT sum(records) FROM journal_applied"), 2227);

    /* A pass with nothing to do changes nothing. */
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(flusher_applied_records(fx->fl), 2227);
}

static void test_pass_leaves_open_segment_until_it_is_closed(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xb1, 0, SEG_BIG);
    add(fx, &w, 1, 1, 1000, 2000, false);
    add(fx, &w, 2, 1, 3000, 0, false);
    commit(&w);
    assert_int_equal(count_files(fx, ".open"), 1);

    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_int_equal(total_traffic(fx), 0);
    assert_int_equal(count_files(fx, ".open"), 1);

    journal_writer_close(&w);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(total_traffic(fx), 6000);
    assert_int_equal(count_files(fx, ".open") + count_files(fx, ".seg"), 0);
}

static void test_pass_skips_a_segment_already_applied_and_removes_it(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xb2, 3, SEG_BIG);
    journal_traffic(fx, &w, 300, 50);
    add(fx, &w, 4, 2, 5, 6, true);
    commit(&w);
    journal_writer_close(&w);

    /* Keep the segment's bytes: a crash between the store's commit and the
     * unlink leaves exactly this file behind. */
    char path[512];
    only_file(fx, ".seg", path, sizeof(path));
    static uint8_t copy[400 * REC];
    size_t len = slurp(path, copy, sizeof(copy));
    assert_int_equal(len, 301 * REC);

    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(count_files(fx, ".seg"), 0);
    int64_t traffic = total_traffic(fx);

    spit(path, copy, len, "wb");
    assert_int_equal(count_files(fx, ".seg"), 1);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_books_match(fx);
    assert_int_equal(total_traffic(fx), traffic);
    assert_int_equal(flusher_applied_records(fx->fl), 301);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), 1);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 2"), 1);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches"), 1);
    assert_int_equal(log_count(fx, "was already applied"), 1);

    /* A fresh flusher (a restart) skips it too. */
    flusher_stop(fx->fl, 0);
    fx->fl = NULL;
    spit(path, copy, len, "wb");
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_books_match(fx);
    assert_int_equal(flusher_applied_records(fx->fl), 0);
    assert_int_equal(log_count(fx, "was already applied"), 2);
}

/* A pass applies the waiting segments as one group; a group holding a
 * segment applied before a crash falls back to one segment at a time, so
 * the new ones are applied and the old one is only removed. */
static void test_group_with_an_applied_segment_applies_only_the_new_ones(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xb8, 0, SEG_BIG);
    journal_traffic(fx, &w, 40, 60);
    add(fx, &w, 2, 3, 9, 1, true);
    commit(&w);
    journal_writer_close(&w);
    char path[512];
    only_file(fx, ".seg", path, sizeof(path));
    static uint8_t copy[64 * REC];
    size_t len = slurp(path, copy, sizeof(copy));
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    int64_t traffic = total_traffic(fx);

    spit(path, copy, len, "wb"); /* the crash's leftover */
    struct journal_writer a, b;
    writer_open(fx, &a, 0xb8, 1, SEG_BIG);
    writer_open(fx, &b, 0xb8, 2, SEG_BIG);
    journal_traffic(fx, &a, 30, 70);
    commit(&a);
    add(fx, &b, 4, 3, 5, 5, true);
    commit(&b);
    journal_writer_close(&a);
    journal_writer_close(&b);
    assert_int_equal(count_files(fx, ".seg"), 3);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_books_match(fx);
    assert_true(total_traffic(fx) > traffic);
    assert_int_equal(flusher_applied_records(fx->fl), 41 + 31);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), 3);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 3"), 2);
    assert_int_equal(log_count(fx, "was already applied"), 1);

    /* Without a crash, segments of several writers go in one transaction. */
    writer_open(fx, &a, 0xb9, 1, SEG_BIG);
    writer_open(fx, &b, 0xb9, 2, SEG_BIG);
    journal_traffic(fx, &a, 20, 80);
    commit(&a);
    journal_traffic(fx, &b, 20, 90);
    commit(&b);
    journal_writer_close(&a);
    journal_writer_close(&b);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_books_match(fx);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), 5);
    assert_int_equal(flusher_applied_records(fx->fl), 41 + 31 + 40);
}

static void test_snatch_counts_once_across_segments_and_writers(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer a, b;
    writer_open(fx, &a, 0xb3, 0, SEG_BIG);
    writer_open(fx, &b, 0xb3, 1, SEG_BIG);
    /* User 1 completes torrent 1 from two workers; user 2 completes it once. */
    add(fx, &a, 1, 1, 10, 20, true);
    commit(&a);
    add(fx, &b, 1, 1, 0, 0, true);
    add(fx, &b, 2, 1, 5, 0, true);
    commit(&b);
    journal_writer_close(&a);
    journal_writer_close(&b);

    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 1"), 2);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM snatches WHERE torrent_id = 1"), 2);
    /* The first completion's time is the one kept. */
    assert_int_equal(shell_int(fx, "SELECT at FROM snatches WHERE user_id = 1"), 1700000000);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 2"), 0);
}

static void test_segments_of_an_earlier_boot_are_applied_with_the_new_ones(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer old, cur;
    writer_open(fx, &old, 0x1111, 0, 50 * REC);
    journal_traffic(fx, &old, 120, 7);
    writer_crash(&old);
    struct mk_errbuf eb = {{0}};
    assert_int_equal(journal_recover(fx->jdir, &eb), 1);
    /* The new boot reuses writer number 0 and seq 1: the names differ by boot. */
    writer_open(fx, &cur, 0x0999, 0, 50 * REC);
    journal_traffic(fx, &cur, 120, 7);
    journal_writer_close(&cur);
    assert_int_equal(count_files(fx, ".seg"), 6);

    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(flusher_applied_records(fx->fl), 240);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), 6);
    assert_int_equal(count_files(fx, ".seg"), 0);
}

/* ---- crashes: torn tails ---------------------------------------------------------- */

static void test_torn_tail_applies_only_whole_records(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xb4, 0, SEG_BIG);
    journal_traffic(fx, &w, 40, 40);
    add(fx, &w, 3, 3, 123456, 654321, false);
    commit(&w);
    char path[512];
    only_file(fx, ".open", path, sizeof(path));
    /* The crash came half-way through the next turn's write: the first half
     * of a record (a copy of a valid one's first 24 bytes) is on disk. */
    uint8_t first[REC];
    assert_int_equal(slurp(path, first, sizeof(first)), REC);
    spit(path, first, REC / 2, "ab");
    writer_crash(&w);

    struct mk_errbuf eb = {{0}};
    assert_int_equal(journal_recover(fx->jdir, &eb), 1);
    assert_int_equal(count_files(fx, ".open"), 0);
    assert_int_equal(count_files(fx, ".seg"), 1);
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(flusher_applied_records(fx->fl), 41);
    assert_int_equal(count_files(fx, ".seg"), 0);
}

static void test_torn_full_length_record_stops_the_segment_there(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xb5, 1, SEG_BIG);
    journal_traffic(fx, &w, 10, 10);
    char path[512];
    only_file(fx, ".open", path, sizeof(path));
    /* A whole record's length reached the disk but half of it is zeros (a
     * page that was never written back): its checksum fails. The zeros land
     * on the books fields, which are never all zero in these records. */
    uint8_t rec[REC];
    assert_int_equal(slurp(path, rec, sizeof(rec)), REC);
    memset(rec + 4, 0, REC / 2);
    spit(path, rec, REC, "ab");
    writer_crash(&w);

    struct mk_errbuf eb = {{0}};
    assert_int_equal(journal_recover(fx->jdir, &eb), 1);
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(flusher_applied_records(fx->fl), 10);
    assert_int_equal(log_count(fx, "is torn"), 1);
}

static void test_crash_before_first_write_leaves_empty_segment_that_is_cleared(void **state)
{
    struct fixture *fx = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/%016x-w0-%016d.open", fx->jdir, 0xb6, 1);
    spit(path, (const uint8_t *)"", 0, "wb");
    struct mk_errbuf eb = {{0}};
    assert_int_equal(journal_recover(fx->jdir, &eb), 1);
    assert_int_equal(count_files(fx, ".seg"), 1);
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_int_equal(total_traffic(fx), 0);
}

/* A segment larger than the flusher's bound is left whole on disk rather
 * than applied in part; the others still go through. */
static void test_oversized_segment_is_left_whole_and_others_applied(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer big, small;
    writer_open(fx, &big, 0xb7, 0, SEG_BIG);
    writer_open(fx, &small, 0xb7, 1, SEG_BIG);
    add(fx, &small, 5, 1, 77, 88, false);
    commit(&small);
    journal_writer_close(&small);
    uint64_t up5 = fx->want_up[5], down5 = fx->want_down[5];
    for (int i = 0; i < 11; i++) {
        struct acct_delta d = {.user_id = 6, .torrent_id = 1, .uploaded = 1, .at = 1};
        assert_int_equal(journal_add(&big, &d), MK_OK);
    }
    commit(&big);
    journal_writer_close(&big);

    flusher_make(fx, 10, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_int_equal(count_files(fx, ".seg"), 1);
    assert_int_equal(shell_int(fx, "SELECT uploaded FROM users WHERE id = 6"), 0);
    assert_int_equal(shell_int(fx, "SELECT uploaded FROM users WHERE id = 5"), (int64_t)up5);
    assert_int_equal(shell_int(fx, "SELECT downloaded FROM users WHERE id = 5"), (int64_t)down5);
    assert_int_equal(log_count(fx, "segment left on disk"), 1);
}

/* ---- forgetting applied segment ids ------------------------------------------- */

static void flusher_start_or_fail(struct fixture *fx)
{
    struct mk_errbuf eb = {{0}};
    int rc = flusher_start(fx->fl, &eb);
    if (rc != MK_OK) {
        fail_msg("flusher_start: %s: %s", mk_err_name(rc), eb.msg);
    }
}

/* Ids recorded a day ago guard nothing (their files are gone): the thread
 * forgets them; today's stay. */
static void test_thread_forgets_applied_ids_a_day_old(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "INSERT INTO journal_applied (boot, writer, seq, records, applied_at)"
                   " VALUES (1, 0, 1, 5, 1000), (1, 0, 2, 5, strftime('%s','now') - 90000)");
    flusher_run(fx, PERIOD_MS);
    struct journal_writer w;
    writer_open(fx, &w, 0xa1, 0, 100 * REC);
    journal_traffic(fx, &w, 50, 25);
    journal_writer_close(&w);
    wait_all_applied(fx);
    long deadline = now_ms() + WAIT_MS;
    while (shell_int(fx, "SELECT count(*) FROM journal_applied WHERE boot = 1") != 0) {
        if (now_ms() > deadline) {
            fail_msg("day-old segment ids were never forgotten");
        }
        nap_ms(2);
    }
    assert_true(shell_int(fx, "SELECT count(*) FROM journal_applied") > 0);
}

/* A segment still on disk a day after it was written means removals fail:
 * then an id might guard it, and nothing is forgotten. */
static void test_an_old_segment_left_on_disk_keeps_every_applied_id(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "INSERT INTO journal_applied (boot, writer, seq, records, applied_at)"
                   " VALUES (1, 0, 1, 5, 1000)");
    struct journal_writer big;
    writer_open(fx, &big, 0xb8, 0, SEG_BIG);
    for (int i = 0; i < 11; i++) {
        struct acct_delta d = {.user_id = 6, .torrent_id = 1, .uploaded = 1, .at = 1};
        assert_int_equal(journal_add(&big, &d), MK_OK);
    }
    commit(&big);
    journal_writer_close(&big);
    char path[512];
    only_file(fx, ".seg", path, sizeof(path));
    struct timeval old[2] = {{.tv_sec = time(NULL) - 2 * 86400}, {.tv_sec = time(NULL) - 2 * 86400}};
    assert_int_equal(utimes(path, old), 0);

    flusher_make(fx, 10, PERIOD_MS); /* 11 records: the segment is left on disk */
    flusher_start_or_fail(fx);
    wait_log_count(fx, "is over a day old", 1);
    assert_int_equal(count_files(fx, ".seg"), 1);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied WHERE boot = 1"), 1);
}

/* ---- a locked store ----------------------------------------------------------- */

static void test_locked_store_pass_is_unavailable_and_keeps_segments(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xc0, 0, 200 * REC);
    journal_traffic(fx, &w, 1000, 64);
    add(fx, &w, 2, 3, 9, 9, true);
    commit(&w);
    journal_writer_close(&w);
    int segs = count_files(fx, ".seg");
    assert_int_equal(segs, 5); /* 256, 256, 256, 232 and 1 records */

    shell_exec(fx, "BEGIN IMMEDIATE");
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_EUNAVAIL);
    assert_int_equal(count_files(fx, ".seg"), segs);
    assert_int_equal(flusher_pass(fx->fl), MK_EUNAVAIL);
    assert_int_equal(count_files(fx, ".seg"), segs);
    assert_int_equal(flusher_applied_records(fx->fl), 0);
    assert_int_equal(total_traffic(fx), 0);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), 0);
    shell_exec(fx, "COMMIT");

    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_int_equal(flusher_applied_records(fx->fl), 1001);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 3"), 1);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), segs);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
}

#ifdef MIKA_TEST_WRAP_ALLOC
/* Out of memory at each place of a pass in turn (the group's rows as they
 * grow, the sort's keys, the merged rows, the store's sums), each time with a new flusher
 * (no buffers yet) and five new segments: the pass fails, or applies the
 * group read so far and goes on; a segment is removed only once applied. Stopping
 * the flusher (memory back) applies what was left, exactly. */
static void test_out_of_memory_anywhere_in_a_pass_loses_nothing(void **state)
{
    struct fixture *fx = *state;
    int failed = 0, recovered = 0;
    /* Until a pass makes no allocation numbered `at`: every allocation of a
     * pass fails once, however many a change adds. */
    bool reached = true;
    for (size_t at = 0; reached; at++) {
        assert_true(at < 64);
        struct journal_writer w;
        writer_open(fx, &w, 0xd0 + at, 0, 100 * REC);
        journal_traffic(fx, &w, 500, 100);
        journal_writer_close(&w);
        assert_int_equal(count_files(fx, ".seg"), 5);
        flusher_make(fx, 100, PERIOD_NEVER_MS);

        alloc_count = 0;
        alloc_fail_at = at;
        int rc = flusher_pass(fx->fl);
        alloc_fail_at = SIZE_MAX;
        if (rc != MK_OK && rc != MK_ENOMEM) {
            fail_msg("allocation %zu failed: %s", at, mk_err_name(rc));
        }
        uint64_t applied = flusher_applied_records(fx->fl);
        assert_int_equal(applied + 100 * (uint64_t)count_files(fx, ".seg"), 500);
        failed += rc == MK_ENOMEM;
        recovered += rc == MK_OK && alloc_count > at;
        reached = alloc_count > at;

        stop(fx, 1000);
        assert_books_match(fx);
        assert_int_equal(count_files(fx, ".seg"), 0);
        assert_int_equal(shell_int(fx, "SELECT sum(records) FROM journal_applied"),
                         500 * (int64_t)(at + 1));
    }
    /* Both outcomes were seen: a pass that failed, and one that met the
     * failure growing its group, applied the group read so far and went on. */
    assert_true(failed > 0);
    assert_true(recovered > 0);
}
#endif

/* The lock is taken between two passes: the first segments went in, the rest
 * wait, and each lands exactly once in the end. */
static void test_lock_between_passes_applies_each_segment_once(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xc1, 0, 100 * REC);
    journal_traffic(fx, &w, 250, 50);
    journal_writer_close(&w);
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);

    writer_open(fx, &w, 0xc2, 0, 100 * REC);
    journal_traffic(fx, &w, 250, 50);
    journal_writer_close(&w);
    shell_exec(fx, "BEGIN IMMEDIATE");
    assert_int_equal(flusher_pass(fx->fl), MK_EUNAVAIL);
    assert_int_equal(count_files(fx, ".seg"), 3);
    shell_exec(fx, "COMMIT");
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(flusher_applied_records(fx->fl), 500);
    assert_int_equal(shell_int(fx, "SELECT count(*) FROM journal_applied"), 6);
}

/* ---- the thread, start and stop ------------------------------------------------ */

static void test_thread_applies_segments_as_they_close(void **state)
{
    struct fixture *fx = *state;
    flusher_run(fx, PERIOD_MS);
    struct journal_writer w;
    writer_open(fx, &w, 0xd0, 0, 100 * REC);
    journal_traffic(fx, &w, 500, 25); /* rotates every 4 turns: no .open left */
    assert_int_equal(count_files(fx, ".open"), 0);
    wait_all_applied(fx);
    journal_writer_close(&w);
}

static void test_thread_backs_off_while_locked_then_applies_all(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "BEGIN IMMEDIATE");
    flusher_run(fx, PERIOD_MS);
    struct journal_writer w;
    writer_open(fx, &w, 0xd1, 0, 100 * REC);
    journal_traffic(fx, &w, 400, 40);
    journal_writer_close(&w);
    wait_log_count(fx, "store unavailable (EUNAVAIL)", 2);
    assert_int_equal(count_files(fx, ".seg"), 4);
    assert_int_equal(total_traffic(fx), 0);
    char backlog[64];
    snprintf(backlog, sizeof(backlog), "%zu journal bytes wait on disk", 400 * REC);
    assert_int_equal(log_count(fx, backlog), 2);
    shell_exec(fx, "COMMIT");
    wait_all_applied(fx);
    long took = stop(fx, 1000);
    assert_true(took < WAIT_MS);
    assert_books_match(fx);
    assert_int_equal(log_count(fx, "stopped after applying 400 records"), 1);
}

static void test_stop_drains_everything_including_a_segment_closed_just_before(void **state)
{
    struct fixture *fx = *state;
    /* The thread never wakes on its own: only flusher_stop can apply these. */
    flusher_run(fx, PERIOD_NEVER_MS);
    struct journal_writer a, b;
    writer_open(fx, &a, 0xd2, 0, 100 * REC);
    writer_open(fx, &b, 0xd2, 1, SEG_BIG);
    journal_traffic(fx, &a, 1000, 100);
    journal_writer_close(&a);
    journal_traffic(fx, &b, 33, 10);
    add(fx, &b, 6, 2, 1, 1, true);
    commit(&b);
    assert_int_equal(count_files(fx, ".open"), 1);
    journal_writer_close(&b); /* the shutdown order: workers close, then the flusher stops */
    stop(fx, 1000);
    assert_books_match(fx);
    assert_int_equal(count_files(fx, ".seg") + count_files(fx, ".open"), 0);
    assert_int_equal(shell_int(fx, "SELECT snatches FROM torrents WHERE id = 2"), 1);
    assert_int_equal(log_count(fx, "stopped after applying 1034 records"), 1);
}

static void test_stop_right_after_start_with_a_short_period_drains(void **state)
{
    struct fixture *fx = *state;
    struct journal_writer w;
    writer_open(fx, &w, 0xd3, 0, 64 * REC);
    flusher_run(fx, 1);
    journal_traffic(fx, &w, 777, 11);
    journal_writer_close(&w);
    stop(fx, 1000);
    assert_books_match(fx);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_int_equal(log_count(fx, "stopped after applying 777 records"), 1);
}

static void test_stop_with_store_locked_gives_up_after_drain_ms_and_loses_nothing(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "BEGIN IMMEDIATE");
    flusher_run(fx, PERIOD_NEVER_MS);
    struct journal_writer w;
    writer_open(fx, &w, 0xd4, 0, 50 * REC);
    journal_traffic(fx, &w, 100, 10);
    journal_writer_close(&w);
    long took = stop(fx, 300);
    /* It tried for the whole drain time, then gave up within a bounded
     * overshoot: one busy wait in apply (100 ms) plus one back-off nap. */
    assert_true(took >= 300);
    assert_true(took < 2000);
    assert_int_equal(total_traffic(fx), 0);
    assert_int_equal(count_files(fx, ".seg"), 2);
    char left[96];
    snprintf(left, sizeof(left), "store unavailable at shutdown: %zu journal bytes left", 100 * REC);
    assert_int_equal(log_count(fx, left), 1);
    assert_int_equal(log_count(fx, "stopped after applying 0 records"), 1);
    shell_exec(fx, "ROLLBACK");

    /* The next start applies them: nothing was lost. */
    flusher_make(fx, MAX_RECORDS, PERIOD_NEVER_MS);
    assert_int_equal(flusher_pass(fx->fl), MK_OK);
    assert_books_match(fx);
    assert_int_equal(count_files(fx, ".seg"), 0);
}

static void test_stop_with_store_locked_and_zero_drain_tries_once(void **state)
{
    struct fixture *fx = *state;
    shell_exec(fx, "BEGIN IMMEDIATE");
    flusher_run(fx, PERIOD_NEVER_MS);
    struct journal_writer w;
    writer_open(fx, &w, 0xd5, 0, SEG_BIG);
    journal_traffic(fx, &w, 10, 10);
    journal_writer_close(&w);
    long took = stop(fx, 0);
    assert_true(took < 1000);
    shell_exec(fx, "ROLLBACK");
    assert_int_equal(total_traffic(fx), 0);
    assert_int_equal(count_files(fx, ".seg"), 1);
    char left[96];
    snprintf(left, sizeof(left), "store unavailable at shutdown: %zu journal bytes left", 10 * REC);
    assert_int_equal(log_count(fx, left), 1);
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
    flusher_run(fx, PERIOD_NEVER_MS);
    struct journal_writer w;
    writer_open(fx, &w, 0xd6, 0, 1000 * REC);
    journal_traffic(fx, &w, 5000, 250);
    journal_writer_close(&w);
    struct unlocker u = {fx, 400};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, unlock_later, &u), 0);
    long took = stop(fx, 10000);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(took >= 400);
    assert_true(took < 10000);
    assert_books_match(fx);
    assert_int_equal(count_files(fx, ".seg"), 0);
    assert_int_equal(log_count(fx, "left on disk"), 0);
    assert_int_equal(log_count(fx, "stopped after applying 5000 records"), 1);
}

static void test_stop_null_is_a_no_op(void **state)
{
    (void)state;
    flusher_stop(NULL, 0);
    flusher_stop(NULL, 1000);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pass_applies_closed_segments_exactly_and_deletes_them),
        T(test_pass_leaves_open_segment_until_it_is_closed),
        T(test_pass_skips_a_segment_already_applied_and_removes_it),
        T(test_group_with_an_applied_segment_applies_only_the_new_ones),
        T(test_snatch_counts_once_across_segments_and_writers),
        T(test_segments_of_an_earlier_boot_are_applied_with_the_new_ones),
        T(test_torn_tail_applies_only_whole_records),
        T(test_torn_full_length_record_stops_the_segment_there),
        T(test_crash_before_first_write_leaves_empty_segment_that_is_cleared),
        T(test_oversized_segment_is_left_whole_and_others_applied),
        T(test_locked_store_pass_is_unavailable_and_keeps_segments),
        T(test_lock_between_passes_applies_each_segment_once),
#ifdef MIKA_TEST_WRAP_ALLOC
        T(test_out_of_memory_anywhere_in_a_pass_loses_nothing),
#endif
        T(test_thread_applies_segments_as_they_close),
        T(test_thread_forgets_applied_ids_a_day_old),
        T(test_an_old_segment_left_on_disk_keeps_every_applied_id),
        T(test_thread_backs_off_while_locked_then_applies_all),
        T(test_stop_drains_everything_including_a_segment_closed_just_before),
        T(test_stop_right_after_start_with_a_short_period_drains),
        T(test_stop_with_store_locked_gives_up_after_drain_ms_and_loses_nothing),
        T(test_stop_with_store_locked_and_zero_drain_tries_once),
        T(test_stop_keeps_retrying_until_lock_is_released_within_drain_ms),
        cmocka_unit_test(test_stop_null_is_a_no_op),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
