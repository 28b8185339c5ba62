/* acct/flusher.h: the thread that writes accounting deltas behind the hot path.
 *
 * Owns: draining every worker's acct_ring into batches and applying each
 * batch to the store in one transaction, retrying with back-off while the
 * store is busy or down. A batch that failed is kept and retried whole; rings
 * buffer new deltas meanwhile.
 * Not here: the crash-proof journal (issue 5 puts it in front of this).
 */
#ifndef MIKA_ACCT_FLUSHER_H
#define MIKA_ACCT_FLUSHER_H

#include <stddef.h>
#include <stdint.h>

#include "acct/ring.h"
#include "store/store.h"
#include "util/err.h"

struct flusher;

/* Starts the thread. The store and rings are borrowed and must outlive
 * flusher_stop(); the store is used by this thread only from now on. */
int flusher_start(struct flusher **out, struct store *st, struct acct_ring *const *rings,
                  size_t nrings, uint32_t period_ms, struct mk_errbuf *eb);

/* Drains the rings and applies what is left (trying for up to drain_ms while
 * the store is unavailable), then joins and frees. Call after the workers
 * have stopped producing. NULL is a no-op. */
void flusher_stop(struct flusher *f, uint32_t drain_ms);

#endif /* MIKA_ACCT_FLUSHER_H */
