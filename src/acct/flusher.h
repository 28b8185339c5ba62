/* acct/flusher.h: applies the accounting journal to the store, exactly once.
 *
 * Owns: the thread that picks up closed journal segments, applies them (a
 * group of them at a time when the store can) in one store transaction that
 * also records the segments' ids (so a segment applied before a crash is not
 * applied again), deletes them afterwards, and
 * backs off while the store is busy or down. Segments simply wait on disk
 * meanwhile: nothing is dropped, and nothing answered is lost.
 * Not here: writing the journal (journal.c, one writer per worker).
 */
#ifndef MIKA_ACCT_FLUSHER_H
#define MIKA_ACCT_FLUSHER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

struct flusher;

/* A flusher for the journal in dir, writing to st (borrowed; used only by
 * the flusher from now on). max_records bounds one segment's records (the
 * writers' segment size / record size). No thread yet. */
int flusher_new(struct flusher **out, struct store *st, const char *dir, size_t max_records,
                uint32_t period_ms, struct mk_errbuf *eb);

/* Applies every closed segment there is now, on the caller's thread: the
 * start-up replay, and each wake-up of the thread. MK_OK when all were
 * applied; the store's error (e.g. MK_EUNAVAIL) when it stopped early. */
int flusher_pass(struct flusher *f);

/* Makes the thread also delete stored peers not seen for ttl_s seconds (the
 * tracker expired them), about once a minute. 0 (the default) never does. */
void flusher_set_peer_ttl(struct flusher *f, uint32_t ttl_s);

/* The cluster node whose segment ids the thread forgets once they are a
 * day old (store_prune_applied); 0 (the default): every id in the store. */
void flusher_set_node(struct flusher *f, uint16_t node_id);

/* After every pass, stores the bytes of segments still waiting into *sink
 * (the tracker refuses announces past its bound, /metrics shows it). */
void flusher_set_backlog_sink(struct flusher *f, _Atomic uint64_t *sink);

/* The store's transactions (one per group of journal segments, failed ones too) by
 * duration, for /metrics: count[i] holds those within flusher_latency_bound(i)
 * seconds and above the bound before; count[FLUSHER_LATENCY_BUCKETS], the rest. */
#define FLUSHER_LATENCY_BUCKETS 10
struct flusher_latency {
    _Atomic uint64_t count[FLUSHER_LATENCY_BUCKETS + 1];
    _Atomic uint64_t ns_sum;
};
double flusher_latency_bound(unsigned i);

/* Makes the flusher count each store transaction into *sink (borrowed). */
void flusher_set_latency_sink(struct flusher *f, struct flusher_latency *sink);

/* How long the thread may put a pass off while less than a group of
 * records waits (bigger groups cost the store less per record): the most
 * the books trail the answers. 5000 ms unless set; 0 applies every period. */
void flusher_set_apply_delay(struct flusher *f, uint32_t delay_ms);

/* Starts the background thread that runs a pass every period, or later
 * within the apply delay (flusher_set_apply_delay). */
int flusher_start(struct flusher *f, struct mk_errbuf *eb);

/* Stops the thread (if started), then runs passes until the journal is
 * applied or drain_ms has passed with the store unavailable, and frees.
 * Call after the writers have closed their segments. NULL is a no-op. */
void flusher_stop(struct flusher *f, uint32_t drain_ms);

/* Segments and records applied so far (for logs and metrics). */
uint64_t flusher_applied_records(const struct flusher *f);

#endif /* MIKA_ACCT_FLUSHER_H */
