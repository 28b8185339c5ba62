/* cluster/changes.h: change notices between the nodes of a cluster.
 *
 * Owns: this node's two extra connections to the shared (users') store: one
 * that publishes notices of the admin API's writes, one that listens for the
 * other nodes' on its own thread, and the counters /metrics shows.
 * Not here: the notice's text (cluster/change.c), how a backend sends and
 * receives it (store/pg_notify.c, store/redis_notify.c), what applying one
 * means (the apply callback: api/api_changes.c re-reads the row and puts it
 * in memory as the API's own write does).
 * Invariants: a notice is published only after its write committed, so a
 * node that re-reads on receipt sees it. A notice can be lost (the listener
 * was reconnecting): every subscription after the first (which precedes
 * the caller's own load) is followed by a full reload through the reload
 * callback, so a node is never stale for longer than its reconnect
 * back-off plus one reload.
 */
#ifndef MIKA_CLUSTER_CHANGES_H
#define MIKA_CLUSTER_CHANGES_H

#include <stdatomic.h>
#include <stdint.h>

#include "cluster/change.h"
#include "store/store.h"
#include "util/err.h"

/* What /metrics shows (mika_cluster_*_total). */
struct cluster_stats {
    _Atomic uint64_t published;  /* notices this node sent */
    _Atomic uint64_t applied;    /* other nodes' notices applied here */
    _Atomic uint64_t reconnects; /* listener connections made again after a loss */
};

/* Applies another node's notice; 0 or an mk_err (logged; a failure asks for
 * a reload). Called on the listener thread. */
typedef int (*changes_apply_fn)(void *arg, const struct change *c, struct mk_errbuf *eb);
/* Asks for a full reload (users, torrents, whitelist, settings): called on
 * the listener thread each time its subscription is (re)made, and when a
 * notice could not be applied. It should only schedule the reload. */
typedef void (*changes_reload_fn)(void *arg);

struct changes_cfg {
    uint16_t node_id;                    /* 1..65535 */
    const struct store_place *places;    /* [3]: users, torrents, peers */
    changes_apply_fn apply;
    changes_reload_fn reload;
    void *arg;
};

struct changes;

/* Opens the publishing and listening connections (to the users' place).
 * MK_ENOTSUP when that backend cannot carry notices. */
int changes_new(struct changes **out, const struct changes_cfg *cfg, struct mk_errbuf *eb);
/* Subscribes (on the calling thread, so a load that follows misses
 * nothing) and starts the listener thread. Notices may be applied from
 * then on: the apply callback must cope with a daemon still starting. */
int changes_start(struct changes *c, struct mk_errbuf *eb);
/* Stops the listener (within about a poll period) and closes everything.
 * NULL is a no-op. */
void changes_free(struct changes *c);

/* Publishes a notice from this node (any thread; serialised inside). id:
 * user or class; info_hash: torrent or token, NULL when none. */
int changes_publish(struct changes *c, enum change_kind kind, uint32_t id,
                    const uint8_t *info_hash);

struct cluster_stats *changes_stats(struct changes *c);
uint16_t changes_node_id(const struct changes *c);

#endif /* MIKA_CLUSTER_CHANGES_H */
