/* store/store.c: the backend registry and the store_* wrappers.
 *
 * Owns: finding a backend by name, and the one layer every store call goes
 * through: it checks the interface version, answers MK_ENOTSUP for a method a
 * backend left NULL, and logs each failure with the backend and method names.
 * Not here: any backend (one file each: store/sqlite.c, ...).
 * Invariant: callers never reach ops-> directly, so checks added here cover
 * every backend at once.
 */
#include "store/store.h"

#include <string.h>

#include "util/log.h"

static const struct store_ops *const store_backends[] = {
    &store_sqlite_ops,
};

const struct store_ops *store_find(const char *name)
{
    for (size_t i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]); i++) {
        if (strcmp(store_backends[i]->name, name) == 0) {
            return store_backends[i];
        }
    }
    return NULL;
}

/* Logs a failed call (ENOTSUP is an answer, not a failure) and passes rc on. */
static int store_done(const struct store *st, const char *method, int rc,
                      const struct mk_errbuf *eb)
{
    if (rc < 0 && rc != MK_ENOTSUP) {
        mk_log(MK_LOG_WARN, "store", "%s.%s failed: %s: %s", st->ops->name, method,
               mk_err_name(rc), eb->msg);
    }
    return rc;
}

/* Checks that st is open and its backend has the method (has_method). */
static int store_can(const struct store *st, bool has_method, const char *method,
                     struct mk_errbuf *eb)
{
    if (!st->ops || !st->ctx) {
        return mk_fail(eb, MK_EINVAL, "store.%s: store is not open", method);
    }
    if (!has_method) {
        return mk_fail(eb, MK_ENOTSUP, "store %s has no %s", st->ops->name, method);
    }
    return 0;
}

int store_open(struct store *st, const char *backend, const struct store_cfg *cfg,
               struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    if (!eb) {
        eb = &local;
    }
    eb->msg[0] = '\0';
    st->ops = NULL;
    st->ctx = NULL;
    const struct store_ops *ops = store_find(backend);
    if (!ops) {
        return mk_fail(eb, MK_ENOTFOUND, "unknown store backend \"%s\"", backend);
    }
    /* Fields are only ever appended, so any version from V1 on has them. */
    if (ops->version < MK_STORE_V1 || !ops->open || !ops->close) {
        return mk_fail(eb, MK_ENOTSUP, "store %s: interface version %d, need %d", ops->name,
                       ops->version, MK_STORE_V1);
    }
    void *ctx = NULL;
    int rc = ops->open(&ctx, cfg, eb);
    if (rc < 0) {
        mk_log(MK_LOG_WARN, "store", "%s.open failed: %s: %s", ops->name, mk_err_name(rc),
               eb->msg);
        return rc;
    }
    st->ops = ops;
    st->ctx = ctx;
    return 0;
}

void store_close(struct store *st)
{
    if (st->ops && st->ctx) {
        st->ops->close(st->ctx);
    }
    st->ops = NULL;
    st->ctx = NULL;
}

int store_load_users(struct store *st, store_user_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_users, "load_users", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_users", st->ops->load_users(st->ctx, fn, arg, eb), eb);
}

int store_load_torrents(struct store *st, store_torrent_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_torrents, "load_torrents", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_torrents", st->ops->load_torrents(st->ctx, fn, arg, eb), eb);
}

int store_load_whitelist(struct store *st, store_whitelist_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_whitelist, "load_whitelist", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_whitelist", st->ops->load_whitelist(st->ctx, fn, arg, eb), eb);
}

int store_load_snatches(struct store *st, store_snatch_fn fn, void *arg, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->load_snatches, "load_snatches", eb);
    if (rc < 0) {
        return rc;
    }
    return store_done(st, "load_snatches", st->ops->load_snatches(st->ctx, fn, arg, eb), eb);
}

int store_apply(struct store *st, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->apply, "apply", eb);
    if (rc < 0) {
        return rc;
    }
    if (n == 0) {
        return 0;
    }
    return store_done(st, "apply", st->ops->apply(st->ctx, rows, n, eb), eb);
}

int store_apply_segment(struct store *st, const struct store_segment_id *id,
                        const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct mk_errbuf local;
    eb = eb ? eb : &local;
    int rc = store_can(st, st->ops && st->ops->apply_segment, "apply_segment", eb);
    if (rc < 0) {
        return rc;
    }
    rc = st->ops->apply_segment(st->ctx, id, rows, n, eb);
    /* Already applied is the expected answer to a replay, not a failure. */
    return rc == MK_EEXIST ? rc : store_done(st, "apply_segment", rc, eb);
}
