/* acct/flusher.c: write-behind of accounting deltas. See flusher.h.
 *
 * Invariant: a batch leaves `pending` only after store_apply() succeeded, so
 * a busy or locked database delays deltas but never drops one that reached a
 * ring.
 */
#include "acct/flusher.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/log.h"

#define FLUSHER_BATCH_MAX 8192   /* deltas per transaction */
#define FLUSHER_BACKOFF_MAX_MS 5000

struct flusher {
    struct store *store;
    struct acct_ring *const *rings;
    size_t nrings;
    uint32_t period_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;            /* under lock */
    struct acct_delta *pending;
    size_t npending;
    uint64_t applied;         /* deltas written, for the stop log */
};

static void deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Tops up the pending batch from the rings; returns how many it holds. */
static size_t flusher_collect(struct flusher *f)
{
    for (size_t i = 0; i < f->nrings && f->npending < FLUSHER_BATCH_MAX; i++) {
        f->npending += acct_ring_pop(f->rings[i], f->pending + f->npending,
                                     FLUSHER_BATCH_MAX - f->npending);
    }
    return f->npending;
}

/* One attempt to apply the pending batch. */
static int flusher_apply(struct flusher *f)
{
    if (f->npending == 0) {
        return MK_OK;
    }
    struct mk_errbuf eb = {{0}};
    int rc = store_apply(f->store, f->pending, f->npending, &eb);
    if (rc == MK_OK) {
        f->applied += f->npending;
        f->npending = 0;
    }
    return rc;
}

static void *flusher_main(void *arg)
{
    struct flusher *f = arg;
    uint32_t wait_ms = f->period_ms;
    pthread_mutex_lock(&f->lock);
    while (!f->stopping) {
        struct timespec ts;
        deadline_after(&ts, wait_ms);
        int rc = pthread_cond_timedwait(&f->wake, &f->lock, &ts);
        if (f->stopping) {
            break;
        }
        (void)rc;
        pthread_mutex_unlock(&f->lock);

        /* Keep applying while full batches are waiting, so a burst drains
         * in one wake-up instead of one batch per period. */
        int err = MK_OK;
        while (flusher_collect(f) > 0) {
            err = flusher_apply(f);
            if (err != MK_OK || f->npending == FLUSHER_BATCH_MAX) {
                break;
            }
        }
        if (err == MK_OK) {
            wait_ms = f->period_ms;
        } else {
            wait_ms = wait_ms * 2 > FLUSHER_BACKOFF_MAX_MS ? FLUSHER_BACKOFF_MAX_MS : wait_ms * 2;
            mk_log(MK_LOG_WARN, "flusher", "store apply failed (%s); %zu deltas kept, retry in %u ms",
                   mk_err_name(err), f->npending, wait_ms);
        }
        pthread_mutex_lock(&f->lock);
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

int flusher_start(struct flusher **out, struct store *st, struct acct_ring *const *rings,
                  size_t nrings, uint32_t period_ms, struct mk_errbuf *eb)
{
    struct flusher *f = calloc(1, sizeof(*f));
    if (!f) {
        return mk_fail(eb, MK_ENOMEM, "flusher: out of memory");
    }
    f->pending = calloc(FLUSHER_BATCH_MAX, sizeof(*f->pending));
    if (!f->pending) {
        free(f);
        return mk_fail(eb, MK_ENOMEM, "flusher: out of memory");
    }
    f->store = st;
    f->rings = rings;
    f->nrings = nrings;
    f->period_ms = period_ms ? period_ms : 1;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&f->thread, NULL, flusher_main, f);
    if (rc != 0) {
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->lock);
        free(f->pending);
        free(f);
        return mk_fail(eb, MK_EIO, "flusher: cannot start thread: errno %d", rc);
    }
    *out = f;
    return MK_OK;
}

void flusher_stop(struct flusher *f, uint32_t drain_ms)
{
    if (!f) {
        return;
    }
    pthread_mutex_lock(&f->lock);
    f->stopping = true;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);

    /* The workers are gone: drain on this thread until empty or out of time. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint32_t backoff_ms = 10;
    while (flusher_collect(f) > 0) {
        if (flusher_apply(f) == MK_OK) {
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000L + (now.tv_nsec - start.tv_nsec) / 1000000L;
        if (elapsed >= (long)drain_ms) {
            break;
        }
        struct timespec nap = {0, (long)backoff_ms * 1000000L};
        nanosleep(&nap, NULL);
        backoff_ms = backoff_ms * 2 > 500 ? 500 : backoff_ms * 2;
    }
    size_t lost = f->npending;
    for (size_t i = 0; i < f->nrings; i++) {
        uint64_t head = atomic_load(&f->rings[i]->head), tail = atomic_load(&f->rings[i]->tail);
        lost += (size_t)(head - tail);
    }
    if (lost) {
        mk_log(MK_LOG_ERROR, "flusher", "store unavailable at shutdown: %zu deltas not written", lost);
    }
    mk_log(MK_LOG_INFO, "flusher", "stopped after writing %llu deltas",
           (unsigned long long)f->applied);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f->pending);
    free(f);
}
