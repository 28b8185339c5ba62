/* net/server.h: the HTTP tracker port: one worker thread per core.
 *
 * Owns: each worker's thread, event loop, SO_REUSEPORT listening sockets
 * (so the kernel spreads connections and no accept queue is shared), its
 * connections and their buffers, timeouts, the connection cap, and HTTP
 * framing of answers (status line, headers, keep-alive, pipelining order).
 * Files: server.c (workers, accepting, timeouts, the loop turn), conn.c
 * (a connection's buffers, framing and answering); what they share is
 * server_int.h.
 * Not here: what an answer says (tracker.c).
 */
#ifndef MIKA_NET_SERVER_H
#define MIKA_NET_SERVER_H

#include <stdint.h>

#include "acct/journal.h"
#include "net/tracker.h"
#include "util/err.h"

struct server_worker;

/* How a worker journals the books (acct/journal.h). */
struct server_journal_cfg {
    bool enabled;              /* false: no journal, no books (benchmarks only) */
    const char *dir;
    uint64_t boot;             /* this process's random id */
    uint64_t seg_max_bytes;
    uint32_t seg_max_ms;
    enum journal_fsync fsync;
    uint32_t fsync_interval_ms;
};

/* Creates worker number id with its loop, listening sockets (bound now, so
 * that a busy port fails start-up before any thread runs) and journal
 * writer. The tracker is borrowed. max_conns is this worker's share of the
 * connection cap. */
int server_worker_new(struct server_worker **out, uint32_t id, const struct tracker *t,
                      const struct server_journal_cfg *jcfg, uint32_t max_conns,
                      struct mk_errbuf *eb);
int server_worker_start(struct server_worker *w, struct mk_errbuf *eb);
/* Stops accepting, writes the last journal batch and sends its answers,
 * closes connections and the journal segment, joins the thread. Safe from
 * any thread. */
void server_worker_stop(struct server_worker *w);
void server_worker_free(struct server_worker *w);
const char *server_worker_loop_name(const struct server_worker *w);

#endif /* MIKA_NET_SERVER_H */
