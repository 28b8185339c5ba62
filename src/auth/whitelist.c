/* auth/whitelist.c: the client whitelist on peer_id prefixes (BEP 20).
 *
 * Owns: the shared list (a mutex, the rows, and an atomic version bumped on
 * every replace) and the copying of it into a worker's private view.
 * Not here: loading rows from the store, deciding what an empty list means
 * (it matches nothing; a caller that wants "no whitelist" skips the check).
 * Invariants:
 * - Rows are kept ordered by prefix length, longest first, and in their
 *   given order within one length, so the first row that matches is the
 *   longest match and a view can stop at it.
 * - version changes only under the mutex, together with the rows it names;
 *   a view holds a version and exactly the rows of that version.
 * - At most WHITELIST_MAX rows: more is MK_ELIMIT, not a bigger copy on
 *   every worker.
 */
#include "auth/whitelist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WHITELIST_MAX 4096

struct whitelist {
    pthread_mutex_t mu;
    _Atomic uint64_t version; /* 0: never replaced (empty) */
    struct whitelist_row *rows;
    size_t n;
};

struct whitelist *whitelist_new(void)
{
    struct whitelist *wl = calloc(1, sizeof(*wl));

    if (wl == NULL) {
        return NULL;
    }
    if (pthread_mutex_init(&wl->mu, NULL) != 0) {
        free(wl);
        return NULL;
    }
    atomic_init(&wl->version, 0);
    return wl;
}

void whitelist_free(struct whitelist *wl)
{
    if (wl == NULL) {
        return;
    }
    pthread_mutex_destroy(&wl->mu);
    free(wl->rows);
    free(wl);
}

int whitelist_replace(struct whitelist *wl, const struct whitelist_row *rows, size_t n)
{
    size_t start[MK_PREFIX_MAX + 2] = {0};
    struct whitelist_row *sorted = NULL;
    struct whitelist_row *old;

    if (n > WHITELIST_MAX) {
        return MK_ELIMIT;
    }
    if (n > 0 && rows == NULL) {
        return MK_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].prefix_len < 1 || rows[i].prefix_len > MK_PREFIX_MAX) {
            return MK_EINVAL;
        }
    }
    if (n > 0) {
        sorted = malloc(n * sizeof(*sorted));
        if (sorted == NULL) {
            return MK_ENOMEM;
        }
    }
    /* A stable counting sort on prefix_len, longest first: start[k] is where
     * rows of length MK_PREFIX_MAX + 1 - k begin. */
    for (size_t i = 0; i < n; i++) {
        start[MK_PREFIX_MAX + 2 - rows[i].prefix_len]++;
    }
    for (size_t k = 1; k < MK_PREFIX_MAX + 2; k++) {
        start[k] += start[k - 1];
    }
    for (size_t i = 0; i < n; i++) {
        struct whitelist_row *r = &sorted[start[MK_PREFIX_MAX + 1 - rows[i].prefix_len]++];
        *r = rows[i];
        r->name[MK_CLIENT_NAME_MAX] = '\0';
    }

    pthread_mutex_lock(&wl->mu);
    old = wl->rows;
    wl->rows = sorted;
    wl->n = n;
    /* Release pairs with the views' acquire load: a view that sees the new
     * version and then takes the lock copies these rows or later ones. */
    atomic_store_explicit(&wl->version, atomic_load_explicit(&wl->version, memory_order_relaxed) + 1,
                          memory_order_release);
    pthread_mutex_unlock(&wl->mu);
    free(old);
    return 0;
}

size_t whitelist_count(struct whitelist *wl)
{
    size_t n;

    pthread_mutex_lock(&wl->mu);
    n = wl->n;
    pthread_mutex_unlock(&wl->mu);
    return n;
}

void whitelist_view_init(struct whitelist_view *v)
{
    v->version = 0;
    v->rows = NULL;
    v->n = 0;
}

void whitelist_view_fini(struct whitelist_view *v)
{
    free(v->rows);
    whitelist_view_init(v);
}

int whitelist_view_refresh(struct whitelist_view *v, struct whitelist *wl)
{
    struct whitelist_row *copy = NULL;
    uint64_t version;
    size_t n;

    /* The common case on every announce: one load, no lock. */
    if (atomic_load_explicit(&wl->version, memory_order_acquire) == v->version) {
        return 0;
    }
    pthread_mutex_lock(&wl->mu);
    n = wl->n;
    version = atomic_load_explicit(&wl->version, memory_order_relaxed);
    if (n > 0) {
        copy = malloc(n * sizeof(*copy));
        if (copy == NULL) {
            pthread_mutex_unlock(&wl->mu);
            return MK_ENOMEM;
        }
        memcpy(copy, wl->rows, n * sizeof(*copy));
    }
    pthread_mutex_unlock(&wl->mu);
    free(v->rows);
    v->rows = copy;
    v->n = n;
    v->version = version;
    return 0;
}

const struct whitelist_row *whitelist_match(const struct whitelist_view *v,
                                            const uint8_t peer_id[20])
{
    for (size_t i = 0; i < v->n; i++) {
        const struct whitelist_row *r = &v->rows[i];
        if (memcmp(r->prefix, peer_id, r->prefix_len) == 0) {
            return r;
        }
    }
    return NULL;
}
