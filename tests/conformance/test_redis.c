/* tests/conformance/test_redis.c: what only the redis backend
 * (store/redis*.c) has to show: open needs a dsn and says what is wrong
 * with one; an unreachable server is MK_EUNAVAIL promptly; the documented
 * key layout (the raw 20-byte info_hash in key names, counters as integers
 * Redis can INCRBY); a layout from a newer mika refused; several nodes
 * opening an empty database together initialise it once; a killed
 * connection, or a server that stops answering for longer than the 10 s
 * command timeout, is MK_EUNAVAIL and the next call reconnects; a replayed
 * segment adds nothing; and loads page through index keys, never KEYS and
 * never one reply the size of the table.
 *
 * Runs through tests/lib/redisserver.py (MIKA_TEST_REDIS_DSN); each test
 * starts from an emptied database. A second, plain hiredis connection plays
 * the operator's redis-cli.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"

struct fixture {
    char dir[64];
    char log[128];
    char dsn[256];
    int log_fd;
    struct store_cfg cfg;
    struct store st;
};

static int test_port, test_db;

/* The operator's connection, in the test database. */
static redisContext *admin(void)
{
    redisContext *c = redisConnect("127.0.0.1", test_port);
    if (!c || c->err) {
        fail_msg("cannot reach the test server: %s", c ? c->errstr : "no memory");
    }
    redisReply *r = redisCommand(c, "SELECT %d", test_db);
    assert_non_null(r);
    freeReplyObject(r);
    return c;
}

static redisReply *admin_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fail_msg("%s: %s", fmt, r ? r->str : c->errstr);
    }
    return r;
}

static long long admin_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        fail_msg("%s: not an integer reply", fmt);
    }
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static double elapsed(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-redis-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->log, sizeof(fx->log), "%s/log", fx->dir);
    fx->log_fd = open(fx->log, O_CREAT | O_WRONLY | O_APPEND, 0600);
    assert_true(fx->log_fd >= 0);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, fx->log_fd);
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "FLUSHDB"));
    redisFree(c);
    snprintf(fx->dsn, sizeof(fx->dsn), "%s", getenv("MIKA_TEST_REDIS_DSN"));
    fx->cfg.dsn = fx->dsn;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_close(&fx->st);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, 2);
    close(fx->log_fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static const char *log_text(struct fixture *fx)
{
    static char buf[65536];
    FILE *f = fopen(fx->log, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void open_store(struct fixture *fx)
{
    struct mk_errbuf eb = {{0}};
    int rc = store_open(&fx->st, "redis", &fx->cfg, &eb);
    if (rc != 0) {
        fail_msg("store_open(redis): %s: %s", mk_err_name(rc), eb.msg);
    }
}

static uint32_t add_user(struct fixture *fx, uint32_t id, const char *passkey)
{
    struct user_rec u = {.row = {.id = id, .enabled = true}, .may_download = true,
                         .class_id = MK_CLASS_DEFAULT, .up_mult = MK_MULT_ONE,
                         .down_mult = MK_MULT_ONE};
    snprintf(u.row.passkey, sizeof(u.row.passkey), "%s", passkey);
    struct mk_errbuf eb;
    int rc = store_user_insert(&fx->st, &u, id != 0, &eb);
    if (rc != 0) {
        fail_msg("user_insert %s: %s: %s", passkey, mk_err_name(rc), eb.msg);
    }
    return u.row.id;
}

/* ---- open ----------------------------------------------------------------------- */

static void test_open_needs_a_dsn_and_names_what_is_wrong(void **state)
{
    (void)state;
    struct store st = {0};
    struct mk_errbuf eb;
    struct store_cfg none = {0};
    assert_int_equal(store_open(&st, "redis", &none, &eb), MK_EINVAL);
    assert_non_null(strstr(eb.msg, "no dsn"));
    const struct {
        const char *dsn, *says;
    } bad[] = {
        {"postgresql://127.0.0.1/x", "redis://"},
        {"redis://127.0.0.1:99999/0", "port"},
        {"redis://127.0.0.1:6379/zero", "db"},
        {"redis://:secret@/0", "host"},
        {"redis://secret@127.0.0.1/0", "password"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct store_cfg cfg = {.dsn = bad[i].dsn};
        assert_int_equal(store_open(&st, "redis", &cfg, &eb), MK_EINVAL);
        if (!strstr(eb.msg, bad[i].says)) {
            fail_msg("%s: \"%s\" does not name %s", bad[i].dsn, eb.msg, bad[i].says);
        }
        /* The password is never repeated back. */
        assert_null(strstr(eb.msg, "secret"));
    }
}

static void test_unreachable_server_is_eunavail_promptly(void **state)
{
    struct fixture *fx = *state;
    /* A port nobody listens on: bound, then closed. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    char dsn[64];
    snprintf(dsn, sizeof(dsn), "redis://:topsecret@127.0.0.1:%d/0", ntohs(a.sin_port));
    struct store_cfg cfg = {.dsn = dsn};
    struct store st = {0};
    struct mk_errbuf eb;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_open(&st, "redis", &cfg, &eb), MK_EUNAVAIL);
    assert_true(elapsed(&t0) < 3.0);
    assert_null(strstr(eb.msg, "topsecret"));
    assert_null(strstr(log_text(fx), "topsecret"));
}

/* AUTH with the DSN's password and SELECT its db on every connection; a
 * wrong password is EUNAVAIL and never repeated back. */
static void test_dsn_password_and_db_are_used(void **state)
{
    struct fixture *fx = *state;
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "SELECT 3"));
    freeReplyObject(admin_cmd(c, "FLUSHDB"));
    freeReplyObject(admin_cmd(c, "CONFIG SET requirepass s3cr3t-pw"));
    char dsn[128];
    snprintf(dsn, sizeof(dsn), "redis://:wrong-pw@127.0.0.1:%d/3", test_port);
    struct store_cfg cfg = {.dsn = dsn};
    struct mk_errbuf eb;
    assert_int_equal(store_open(&fx->st, "redis", &cfg, &eb), MK_EUNAVAIL);
    assert_non_null(strstr(eb.msg, "AUTH"));
    assert_null(strstr(eb.msg, "wrong-pw"));
    snprintf(dsn, sizeof(dsn), "redis://:s3cr3t-pw@127.0.0.1:%d/3", test_port);
    int rc = store_open(&fx->st, "redis", &cfg, &eb);
    if (rc != 0) {
        fail_msg("open with the password: %s: %s", mk_err_name(rc), eb.msg);
    }
    add_user(fx, 5, "indb3");
    /* The next connection logs in and selects db 3 again. */
    assert_true(admin_int(c, "CLIENT KILL TYPE normal SKIPME yes") >= 1);
    assert_int_equal(store_ping(&fx->st, &eb), MK_EUNAVAIL);
    struct user_rec u;
    assert_int_equal(store_user_get(&fx->st, 5, &u, &eb), 0);
    assert_int_equal(admin_int(c, "EXISTS mika:user:5"), 1);
    freeReplyObject(admin_cmd(c, "SELECT %d", test_db));
    assert_int_equal(admin_int(c, "EXISTS mika:user:5"), 0);
    freeReplyObject(admin_cmd(c, "CONFIG SET requirepass %s", ""));
    redisFree(c);
    assert_null(strstr(log_text(fx), "s3cr3t-pw"));
    assert_null(strstr(log_text(fx), "wrong-pw"));
}

/* The layout docs/STORES.md documents, read with the operator's tools. */
static void test_key_layout_has_binary_hashes_in_names_and_integer_counters(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 7, "layoutpk");
    struct torrent_rec t = {.row = {.enabled = true}, .up_mult = MK_MULT_ONE,
                            .down_mult = MK_MULT_ONE};
    static const uint8_t ih[20] = {0x00, 0xff, 0x0a, 0x0d, ':', 0x20, 1, 2, 3, 4,
                                   5,    6,    7,    8,    9,   10,   11, 12, 13, 0x80};
    memcpy(t.row.info_hash, ih, 20);
    struct mk_errbuf eb;
    assert_int_equal(store_torrent_insert(&fx->st, &t, &eb), 0);
    struct acct_delta d = {.user_id = u, .torrent_id = t.row.id, .uploaded = (1ull << 62) + 5,
                           .downloaded = 3, .announces = 1, .at = 1000, .snatch = true};
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);

    redisContext *c = admin();
    char key[64];
    memcpy(key, "mika:torrent:", 13);
    memcpy(key + 13, ih, 20);
    assert_int_equal(admin_int(c, "EXISTS %b", key, (size_t)33), 1);
    redisReply *r = admin_cmd(c, "TYPE %b", key, (size_t)33);
    assert_string_equal(r->str, "hash");
    freeReplyObject(r);
    r = admin_cmd(c, "ZRANGEBYSCORE mika:torrents %u %u", t.row.id, t.row.id);
    assert_int_equal(r->elements, 1);
    assert_int_equal(r->element[0]->len, 20);
    assert_memory_equal(r->element[0]->str, ih, 20);
    freeReplyObject(r);
    r = admin_cmd(c, "GET mika:layout");
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    r = admin_cmd(c, "HGET mika:passkeys layoutpk");
    assert_string_equal(r->str, "7");
    freeReplyObject(r);
    /* Counters are plain decimal integers, all 64 bits of them. */
    r = admin_cmd(c, "HGET mika:user:7 uploaded");
    assert_string_equal(r->str, "4611686018427387909");
    freeReplyObject(r);
    assert_int_equal(admin_int(c, "HINCRBY mika:user:7 uploaded 1"), (1ll << 62) + 6);
    assert_int_equal(admin_int(c, "HINCRBY %b snatches 0", key, (size_t)33), 1);
    assert_int_equal(admin_int(c, "HINCRBY %b transferred 0", key, (size_t)33), 3);
    const char *const zsets[] = {"mika:users", "mika:torrents", "mika:classes", "mika:whitelist",
                                 "mika:snatches", "mika:user:7:history"};
    for (size_t i = 0; i < sizeof(zsets) / sizeof(zsets[0]); i++) {
        r = admin_cmd(c, "TYPE %s", zsets[i]);
        if (strcmp(r->str, "zset") != 0) {
            fail_msg("%s is a %s, not a zset", zsets[i], r->str);
        }
        freeReplyObject(r);
    }
    redisFree(c);
    struct user_rec got;
    assert_int_equal(store_user_get(&fx->st, u, &got, &eb), 0);
    assert_int_equal(got.uploaded, (1ull << 62) + 6);
}

static void test_layout_from_a_newer_mika_is_refused(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    store_close(&fx->st);
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "SET mika:layout 99"));
    redisFree(c);
    struct mk_errbuf eb;
    assert_int_equal(store_open(&fx->st, "redis", &fx->cfg, &eb), MK_ENOTSUP);
    assert_non_null(strstr(eb.msg, "99"));
}

#define NODES 4

struct node {
    const struct store_cfg *cfg;
    struct store st;
    int rc;
    struct mk_errbuf eb;
};

static void *node_open(void *arg)
{
    struct node *n = arg;
    n->rc = store_open(&n->st, "redis", n->cfg, &n->eb);
    return NULL;
}

static int count_whitelist(const struct whitelist_row *row, void *arg)
{
    (void)row;
    (*(int *)arg)++;
    return 0;
}

static int count_class(const struct class_row *row, void *arg)
{
    (void)row;
    (*(int *)arg)++;
    return 0;
}

static void test_nodes_opening_an_empty_database_together_initialise_it_once(void **state)
{
    struct fixture *fx = *state;
    struct node nodes[NODES];
    pthread_t th[NODES];
    for (int i = 0; i < NODES; i++) {
        nodes[i] = (struct node){.cfg = &fx->cfg};
        assert_int_equal(pthread_create(&th[i], NULL, node_open, &nodes[i]), 0);
    }
    for (int i = 0; i < NODES; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].rc != 0) {
            fail_msg("node %d: %s: %s", i, mk_err_name(nodes[i].rc), nodes[i].eb.msg);
        }
    }
    const char *log = log_text(fx);
    const char *first = strstr(log, "schema migrated to version");
    assert_non_null(first);
    assert_null(strstr(first + 1, "schema migrated to version"));
    int wl = 0, classes = 0;
    struct mk_errbuf eb;
    assert_int_equal(store_load_whitelist(&nodes[0].st, count_whitelist, &wl, &eb), 0);
    assert_int_equal(store_class_list(&nodes[1].st, count_class, &classes, &eb), 0);
    assert_int_equal(wl, 16);
    assert_int_equal(classes, 1);
    redisContext *c = admin();
    assert_int_equal(admin_int(c, "EXISTS mika:lock:layout"), 0);
    redisFree(c);
    for (int i = 0; i < NODES; i++) {
        store_close(&nodes[i].st);
    }
}

static void test_killed_connection_is_eunavail_then_the_next_call_reconnects(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    assert_int_equal(store_ping(&fx->st, &eb), 0);
    redisContext *c = admin();
    assert_true(admin_int(c, "CLIENT KILL TYPE normal SKIPME yes") >= 1);
    redisFree(c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_ping(&fx->st, &eb), MK_EUNAVAIL);
    assert_true(elapsed(&t0) < 2.0);
    assert_non_null(strstr(eb.msg, "connection lost"));
    assert_int_equal(store_ping(&fx->st, &eb), 0);
    assert_non_null(strstr(log_text(fx), "reconnected to 127.0.0.1"));
    /* Writes work again on the new connection, scripts and all. */
    assert_int_equal(add_user(fx, 0, "afterkill"), 1);
}

/* A server that stops answering (CLIENT PAUSE plays a hung host) costs a
 * call the command timeout, 10 s, not forever; after it the next call
 * reconnects. */
static void test_a_hung_server_times_out_then_the_next_call_reconnects(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "CLIENT PAUSE 11000 ALL"));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_ping(&fx->st, &eb), MK_EUNAVAIL);
    double took = elapsed(&t0);
    assert_true(took >= 9.0 && took < 11.0);
    freeReplyObject(admin_cmd(c, "CLIENT UNPAUSE"));
    redisFree(c);
    assert_int_equal(store_ping(&fx->st, &eb), 0);
}

static void test_replayed_segment_adds_nothing(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 3, "replay");
    struct acct_delta d[] = {
        {.user_id = u, .torrent_id = 9, .uploaded = 100, .downloaded = 7, .announces = 1,
         .at = 50},
        {.user_id = u, .torrent_id = 9, .uploaded = 1, .snatch = true, .suspicious = 1,
         .suspicious_up = 1, .announces = 1, .at = 60},
    };
    struct store_segment_id seg = {.boot = 0xfeedfacecafebeefull, .writer = 2, .seq = 77};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &seg, d, 2, &eb), 0);
    redisContext *c = admin();
    redisReply *before = admin_cmd(c, "HGETALL mika:user:3");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(store_apply_segment(&fx->st, &seg, d, 2, &eb), MK_EEXIST);
    }
    redisReply *after = admin_cmd(c, "HGETALL mika:user:3");
    assert_int_equal(before->elements, after->elements);
    for (size_t i = 0; i < before->elements; i++) {
        assert_string_equal(before->element[i]->str, after->element[i]->str);
    }
    freeReplyObject(before);
    freeReplyObject(after);
    assert_int_equal(admin_int(c, "HLEN mika:journal_applied"), 1);
    assert_int_equal(admin_int(c, "ZCARD mika:user:3:suspicious"), 1);
    assert_int_equal(admin_int(c, "HLEN mika:user:3:snatches"), 1);
    redisFree(c);
    assert_int_equal(store_user_get(&fx->st, u, &(struct user_rec){0}, &eb), 0);
}

/* Redis keeps what a script wrote before an error: a batch that meets a
 * key an operator broke must still be applied whole, the broken part
 * logged by the server, not stop half-way. */
static void test_a_broken_key_does_not_stop_a_batch_half_way(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 3, "broken");
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "SET mika:history:3:9 not-a-hash"));
    freeReplyObject(admin_cmd(c, "HSET mika:user:3 uploaded not-a-number"));
    struct acct_delta d[] = {
        {.user_id = u, .torrent_id = 9, .uploaded = 10, .downloaded = 7, .announces = 1,
         .at = 50},
        {.user_id = u, .torrent_id = 9, .snatch = true, .at = 60},
    };
    struct store_segment_id seg = {.boot = 1, .writer = 1, .seq = 1};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &seg, d, 2, &eb), 0);
    redisReply *r = admin_cmd(c, "HGET mika:user:3 downloaded");
    assert_string_equal(r->str, "7");
    freeReplyObject(r);
    assert_int_equal(admin_int(c, "HLEN mika:user:3:snatches"), 1);
    assert_int_equal(admin_int(c, "HLEN mika:journal_applied"), 1);
    redisFree(c);
    assert_int_equal(store_apply_segment(&fx->st, &seg, d, 2, &eb), MK_EEXIST);
}

/* Every key and its DUMP, keys sorted: two equal snapshots mean the script
 * wrote nothing (a test database is small; SCAN, so nothing here is what
 * mika itself must never send). Locks, which expire, are left out. */
struct db_snapshot {
    char *p;
    size_t len;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct db_snapshot snapshot(redisContext *c)
{
    char **keys = NULL;
    size_t n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = admin_cmd(c, "SCAN %s COUNT 1000", cursor);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *page = r->element[1];
        keys = realloc(keys, (n + page->elements) * sizeof(*keys));
        assert_true(keys || n + page->elements == 0);
        for (size_t i = 0; i < page->elements; i++) {
            if (strncmp(page->element[i]->str, "mika:lock:", 10) == 0) {
                continue; /* the layout's lock expires on its own */
            }
            keys[n] = malloc(page->element[i]->len + 1);
            assert_non_null(keys[n]);
            memcpy(keys[n], page->element[i]->str, page->element[i]->len + 1);
            n++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    qsort(keys, n, sizeof(*keys), cmp_str);
    struct db_snapshot s = {NULL, 0};
    for (size_t i = 0; i < n; i++) {
        redisReply *r = admin_cmd(c, "DUMP %s", keys[i]);
        size_t klen = strlen(keys[i]);
        s.p = realloc(s.p, s.len + klen + 1 + r->len + 1);
        assert_non_null(s.p);
        memcpy(s.p + s.len, keys[i], klen + 1);
        if (r->len > 0) { /* nil: a key that expired since the SCAN */
            memcpy(s.p + s.len + klen + 1, r->str, r->len);
        }
        s.p[s.len + klen + 1 + r->len] = '\n';
        s.len += klen + 1 + r->len + 1;
        freeReplyObject(r);
        free(keys[i]);
    }
    free(keys);
    return s;
}

static void assert_same_snapshot(struct db_snapshot a, struct db_snapshot b)
{
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    free(a.p);
    free(b.p);
}

/* A group (apply_segments) that names one segment applied before, or the
 * same segment twice, writes nothing at all: not the other segments' ids,
 * not a counter, snatch, suspicious row or peer. The flusher relies on it
 * when it then applies the group's segments one by one. */
static void test_a_group_with_a_segment_applied_before_writes_nothing(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 3, "group");
    struct acct_delta d[] = {
        {.user_id = u, .torrent_id = 9, .uploaded = 100, .downloaded = 7, .announces = 1,
         .seed_seconds = 30, .bonus = 5, .first_at = 40, .at = 50, .has_peer = true,
         .peer = {.torrent_id = 9, .user_id = u, .family = 4, .port = 6881, .last_seen = 50,
                  .version = 50000000, .node_id = 2}},
        {.user_id = u, .torrent_id = 9, .uploaded = 1, .snatch = true, .suspicious = 1,
         .suspicious_up = 1, .announces = 1, .at = 60},
    };
    struct store_segment_id a = {.boot = 9, .writer = 1, .seq = 1, .records = 2};
    struct store_segment_id b = {.boot = 9, .writer = 2, .seq = 1, .records = 2};
    struct store_segment_id c2 = {.boot = 9, .writer = 2, .seq = 2, .records = 2};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &a, d, 1, &eb), 0);
    redisContext *c = admin();
    struct db_snapshot before = snapshot(c);
    struct store_segment_id ba[] = {b, a}, bb[] = {b, b};
    d[0].peer.version++;
    assert_int_equal(store_apply_segments(&fx->st, ba, 2, d, 2, &eb), MK_EEXIST);
    assert_int_equal(store_apply_segments(&fx->st, bb, 2, d, 2, &eb), MK_EEXIST);
    assert_same_snapshot(before, snapshot(c));
    /* The same group without the old segment is applied whole, once. */
    struct store_segment_id bc[] = {b, c2};
    assert_int_equal(store_apply_segments(&fx->st, bc, 2, d, 2, &eb), 0);
    assert_int_equal(admin_int(c, "HLEN mika:journal_applied"), 3);
    redisReply *r = admin_cmd(c, "HGET mika:user:3 uploaded");
    assert_string_equal(r->str, "201");
    freeReplyObject(r);
    r = admin_cmd(c, "HGET mika:history:3:9 announces");
    assert_string_equal(r->str, "3");
    freeReplyObject(r);
    assert_int_equal(admin_int(c, "HLEN mika:user:3:snatches"), 1);
    assert_int_equal(admin_int(c, "ZCARD mika:user:3:suspicious"), 1);
    struct db_snapshot applied = snapshot(c);
    assert_int_equal(store_apply_segments(&fx->st, bc, 2, d, 2, &eb), MK_EEXIST);
    assert_int_equal(store_apply_segment(&fx->st, &c2, d, 2, &eb), MK_EEXIST);
    assert_same_snapshot(applied, snapshot(c));
    redisFree(c);
    assert_null(strstr(log_text(fx), "failed"));
}

/* Counters stay exact as decimal strings past 2^53 and across a carry,
 * saturate at 2^63-1 instead of failing, and a field that is not a counter
 * ("0123", a 20-digit number) is refused by HINCRBY (logged by the server)
 * while the row's other fields are added: what any way of adding them in
 * the script (a Lua sum after an HMGET was tried) must keep. */
static void test_counters_add_exactly_past_2_53_and_saturate(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 3, "big");
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "HSET mika:user:3 uploaded 9007199254740993 downloaded "
                                 "999999999 raw_uploaded 9223372036854775000 raw_downloaded "
                                 "0123 bonus 18446744073709551615"));
    struct acct_delta d = {.user_id = u, .torrent_id = 9, .uploaded = 999999999,
                           .downloaded = 1, .bonus = 1, .announces = 1, .at = 50};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    static const struct {
        const char *field, *want;
    } want[] = {{"uploaded", "9007200254740992"},
                {"downloaded", "1000000000"},
                {"raw_uploaded", "9223372036854775807"},
                {"raw_downloaded", "0123"},
                {"bonus", "18446744073709551615"},
                {"announces", "1"},
                {"seed_time", "0"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        redisReply *r = admin_cmd(c, "HGET mika:user:3 %s", want[i].field);
        assert_string_equal(r->str, want[i].want);
        freeReplyObject(r);
    }
    /* A history row summed twice across the carry, first/last kept as min/max. */
    struct acct_delta h[] = {
        {.user_id = u, .torrent_id = 9, .uploaded = 999999999, .announces = 1, .first_at = 70,
         .at = 80},
        {.user_id = u, .torrent_id = 9, .uploaded = 2, .announces = 1, .first_at = 60,
         .at = 75},
    };
    assert_int_equal(store_apply(&fx->st, &h[0], 1, &eb), 0);
    assert_int_equal(store_apply(&fx->st, &h[1], 1, &eb), 0);
    static const struct {
        const char *field, *want;
    } hwant[] = {{"uploaded", "2000000000"},
                 {"raw_uploaded", "2000000000"},
                 {"announces", "3"},
                 {"first_announce", "50"},
                 {"last_announce", "80"}};
    for (size_t i = 0; i < sizeof(hwant) / sizeof(hwant[0]); i++) {
        redisReply *r = admin_cmd(c, "HGET mika:history:3:9 %s", hwant[i].field);
        assert_string_equal(r->str, hwant[i].want);
        freeReplyObject(r);
    }
    redisFree(c);
}

static long long peer_field(redisContext *c, uint32_t tid, uint32_t uid, uint8_t pid0,
                            const char *field)
{
    unsigned char key[10 + 28] = "mika:peer:";
    uint32_t ids[2] = {tid, uid};
    for (int j = 0; j < 2; j++) {
        for (int b = 0; b < 4; b++) {
            key[10 + 4 * j + b] = (unsigned char)(ids[j] >> (24 - 8 * b));
        }
    }
    memset(key + 18, 0, 20);
    key[18] = pid0;
    redisReply *r = admin_cmd(c, "HGET %b %s", key, sizeof(key), field);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

/* A batch holding several reports of one peer (a group of segments often
 * does) is sent as the one report the script would keep: the highest
 * version, the first of equal ones, and none when the store holds a newer. */
static void test_a_batch_keeps_each_peers_newest_report(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 3, "peer");
    struct acct_delta d[5];
    static const int64_t versions[5] = {5, 9, 9, 7, 3};
    for (int i = 0; i < 5; i++) {
        d[i] = (struct acct_delta){
            .user_id = u, .torrent_id = 9, .at = 50, .has_peer = true,
            .peer = {.torrent_id = 9, .user_id = u, .family = 4, .port = (uint16_t)(100 + i),
                     .last_seen = 50 + i, .version = versions[i], .node_id = 1}};
        d[i].peer.peer_id[0] = i == 4 ? 'B' : 'A';
    }
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 5, &eb), 0);
    redisContext *c = admin();
    assert_int_equal(peer_field(c, 9, u, 'A', "version"), 9);
    assert_int_equal(peer_field(c, 9, u, 'A', "port"), 101);
    assert_int_equal(peer_field(c, 9, u, 'B', "port"), 104);
    assert_int_equal(admin_int(c, "ZCARD mika:peers"), 2);
    /* Older than what the store holds: kept out, even the newest of them. */
    d[0].peer.version = 8;
    d[1].peer.version = 6;
    d[0].peer.port = d[1].peer.port = 999;
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    assert_int_equal(peer_field(c, 9, u, 'A', "port"), 101);
    d[1].peer.version = 10;
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    assert_int_equal(peer_field(c, 9, u, 'A', "port"), 999);
    assert_int_equal(peer_field(c, 9, u, 'A', "version"), 10);
    redisFree(c);
}

struct history_count {
    size_t n;
    int64_t last;
    bool newest_first;
};

static int count_history(const struct history_row *row, void *arg)
{
    struct history_count *h = arg;
    h->newest_first = h->n == 0 || (h->newest_first && row->last_announce <= h->last);
    h->last = row->last_announce;
    h->n++;
    return 0;
}

/* The hit-and-run filter asks for every row (limit UINT32_MAX): the history
 * streams past one page, newest first, and offsets count across pages. */
static void test_history_streams_past_one_page(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 4, "longhist");
    enum { N = 1234 };
    struct acct_delta *d = calloc(N, sizeof(*d));
    assert_non_null(d);
    for (uint32_t i = 0; i < N; i++) {
        d[i] = (struct acct_delta){.user_id = u, .torrent_id = i + 1, .uploaded = 1,
                                   .announces = 1, .at = 1000 + i % 300};
    }
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, N, &eb), 0);
    free(d);
    struct history_count h = {0};
    uint64_t total = 0;
    assert_int_equal(store_user_history(&fx->st, u, 0, UINT32_MAX, count_history, &h, &total,
                                        &eb),
                     0);
    assert_int_equal(total, N);
    assert_int_equal(h.n, N);
    assert_true(h.newest_first);
    h = (struct history_count){0};
    assert_int_equal(store_user_history(&fx->st, u, N - 34, 1000, count_history, &h, &total,
                                        &eb),
                     0);
    assert_int_equal(h.n, 34);
    h = (struct history_count){0};
    assert_int_equal(store_user_history(&fx->st, u, 0, 0, count_history, &h, &total, &eb), 0);
    assert_int_equal(h.n, 0);
    assert_int_equal(total, N);
}

/* The server forgot its scripts (a restart, SCRIPT FLUSH): EVALSHA answers
 * NOSCRIPT and the write goes through by EVAL, with no error seen. */
static void test_writes_survive_script_flush(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user(fx, 0, "before");
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "SCRIPT FLUSH"));
    redisFree(c);
    assert_int_equal(add_user(fx, 0, "after"), 2);
    assert_null(strstr(log_text(fx), "failed"));
}

struct tokens_seen {
    struct token_row rows[4];
    int n;
};

static int seen_token(const struct token_row *row, void *arg)
{
    struct tokens_seen *s = arg;
    if (s->n < 4) {
        s->rows[s->n] = *row;
    }
    s->n++;
    return 0;
}

static void test_tokens_put_load_expire_and_delete(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u1 = add_user(fx, 1, "tok1"), u2 = add_user(fx, 2, "tok2");
    struct torrent_rec t = {.row = {.enabled = true}, .up_mult = MK_MULT_ONE,
                            .down_mult = MK_MULT_ONE};
    memset(t.row.info_hash, 0x3c, 20);
    struct mk_errbuf eb;
    assert_int_equal(store_torrent_insert(&fx->st, &t, &eb), 0);
    struct token_row k1 = {.user_id = u1, .up_mult = 2000, .down_mult = 0, .expires = 0};
    memcpy(k1.info_hash, t.row.info_hash, 20);
    struct token_row k2 = {.user_id = u2, .torrent_id = t.row.id, .up_mult = 1000,
                           .down_mult = 500, .expires = 5000};
    assert_int_equal(store_token_put(&fx->st, &k1, &eb), 0);
    assert_int_equal(store_token_put(&fx->st, &k2, &eb), 0);
    struct token_row ghost = k1;
    ghost.user_id = 99;
    assert_int_equal(store_token_put(&fx->st, &ghost, &eb), MK_ENOTFOUND);
    struct tokens_seen s = {0};
    assert_int_equal(store_load_tokens(&fx->st, 0, 4000, seen_token, &s, &eb), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.rows[0].user_id, u1);
    assert_int_equal(s.rows[0].torrent_id, t.row.id);
    assert_int_equal(s.rows[0].up_mult, 2000);
    assert_memory_equal(s.rows[0].info_hash, t.row.info_hash, 20);
    assert_int_equal(s.rows[1].down_mult, 500);
    /* Expired at now, and one user's only. */
    s.n = 0;
    assert_int_equal(store_load_tokens(&fx->st, 0, 5000, seen_token, &s, &eb), 0);
    assert_int_equal(s.n, 1);
    s.n = 0;
    assert_int_equal(store_load_tokens(&fx->st, u2, 0, seen_token, &s, &eb), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rows[0].user_id, u2);
    assert_int_equal(store_token_delete(&fx->st, &k1, &eb), 0);
    assert_int_equal(store_token_delete(&fx->st, &k1, &eb), MK_ENOTFOUND);
    struct torrent_rec by_id;
    assert_int_equal(store_torrent_get_by_id(&fx->st, t.row.id, &by_id, &eb), 0);
    assert_memory_equal(by_id.row.info_hash, t.row.info_hash, 20);
    assert_int_equal(store_torrent_get_by_id(&fx->st, 77, &by_id, &eb), MK_ENOTFOUND);
}

/* ---- loads page through the indexes ------------------------------------------------ */

#define MANY 10000

struct seen {
    size_t n;
    uint32_t last;
    bool ascending;
};

static int seen_user(const struct user_row *row, void *arg)
{
    struct seen *s = arg;
    s->ascending = s->n == 0 || (s->ascending && row->id > s->last);
    s->last = row->id;
    s->n++;
    return 0;
}

/* What MONITOR shows while a load runs: every command any client sent. */
struct monitor {
    redisContext *c;
    size_t commands;
    size_t keys_like;   /* KEYS, HGETALL, SMEMBERS, HKEYS, unbounded ZRANGE */
    size_t ranges;      /* ZRANGEBYSCORE / ZRANGEBYLEX: each must say LIMIT <= a page */
    size_t unbounded;   /* ranges without LIMIT or with a bigger one */
    long long biggest;  /* the largest LIMIT count seen */
};

static void *monitor_run(void *arg)
{
    struct monitor *m = arg;
    for (;;) {
        void *v = NULL;
        if (redisGetReply(m->c, &v) != REDIS_OK || !v) {
            return NULL;
        }
        redisReply *r = v;
        const char *line = r->type == REDIS_REPLY_STATUS ? r->str : "";
        if (strstr(line, "\"mika-test-done\"")) {
            freeReplyObject(r);
            return NULL;
        }
        const char *cmd = strchr(line, ']');
        if (cmd) {
            m->commands++;
            if (strncasecmp(cmd, "] \"keys\"", 9) == 0 ||
                strncasecmp(cmd, "] \"hgetall\"", 12) == 0 ||
                strncasecmp(cmd, "] \"smembers\"", 13) == 0 ||
                strncasecmp(cmd, "] \"hkeys\"", 10) == 0 ||
                strncasecmp(cmd, "] \"zrange\"", 11) == 0) {
                m->keys_like++;
            }
            if (strncasecmp(cmd, "] \"zrangeby", 11) == 0) {
                m->ranges++;
                const char *lim = strstr(cmd, "\"LIMIT\" \"");
                long long count = -1;
                if (lim) {
                    const char *q = strchr(lim + 9, ' ');
                    count = q ? strtoll(q + 2, NULL, 10) : -1;
                }
                if (count < 0 || count > 500) {
                    m->unbounded++;
                }
                m->biggest = count > m->biggest ? count : m->biggest;
            }
        }
        freeReplyObject(r);
    }
}

static void test_loads_stream_in_bounded_pages_and_never_send_keys(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    for (uint32_t i = 1; i <= MANY; i++) {
        char pk[16];
        snprintf(pk, sizeof(pk), "many%05u", i);
        add_user(fx, i * 2, pk);
    }
    redisContext *c = admin();
    freeReplyObject(admin_cmd(c, "CONFIG RESETSTAT"));
    struct monitor m = {.c = admin()};
    assert_int_equal(redisSetTimeout(m.c, (struct timeval){30, 0}), REDIS_OK);
    redisReply *ok = admin_cmd(m.c, "MONITOR");
    freeReplyObject(ok);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, monitor_run, &m), 0);
    struct seen s = {0};
    struct mk_errbuf eb;
    int rc = store_load_users(&fx->st, seen_user, &s, &eb);
    freeReplyObject(admin_cmd(c, "ECHO mika-test-done"));
    pthread_join(th, NULL);
    redisFree(m.c);
    assert_int_equal(rc, 0);
    assert_int_equal(s.n, MANY);
    assert_true(s.ascending);
    redisReply *r = admin_cmd(c, "INFO commandstats");
    bool keys = strstr(r->str, "cmdstat_keys:") != NULL;
    freeReplyObject(r);
    redisFree(c);
    /* Never KEYS or a whole-set read; every range a page of at most 500
     * (REDIS_PAGE): no reply grows with the number of users. */
    assert_false(keys);
    assert_int_equal(m.keys_like, 0);
    assert_int_equal(m.unbounded, 0);
    assert_true(m.ranges >= MANY / 500);
    assert_int_equal(m.biggest, 500);
    assert_true(m.commands > MANY); /* it saw the load: one HMGET per user */
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const char *dsn = getenv("MIKA_TEST_REDIS_DSN");
    if (!dsn || sscanf(dsn, "redis://127.0.0.1:%d/%d", &test_port, &test_db) != 2) {
        fprintf(stderr, "test_redis: MIKA_TEST_REDIS_DSN is not set: run it through "
                        "tests/lib/redisserver.py\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_open_needs_a_dsn_and_names_what_is_wrong),
        T(test_unreachable_server_is_eunavail_promptly),
        T(test_dsn_password_and_db_are_used),
        T(test_key_layout_has_binary_hashes_in_names_and_integer_counters),
        T(test_layout_from_a_newer_mika_is_refused),
        T(test_nodes_opening_an_empty_database_together_initialise_it_once),
        T(test_killed_connection_is_eunavail_then_the_next_call_reconnects),
        T(test_a_hung_server_times_out_then_the_next_call_reconnects),
        T(test_replayed_segment_adds_nothing),
        T(test_a_broken_key_does_not_stop_a_batch_half_way),
        T(test_a_group_with_a_segment_applied_before_writes_nothing),
        T(test_counters_add_exactly_past_2_53_and_saturate),
        T(test_a_batch_keeps_each_peers_newest_report),
        T(test_history_streams_past_one_page),
        T(test_writes_survive_script_flush),
        T(test_tokens_put_load_expire_and_delete),
        T(test_loads_stream_in_bounded_pages_and_never_send_keys),
    };
    return cmocka_run_group_tests_name("store redis", tests, NULL, NULL);
}
