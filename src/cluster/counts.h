/* cluster/counts.h: swarm counts shared between the nodes of a cluster.
 *
 * Owns: a thread that, every cluster.counts_seconds, publishes the seeders,
 * leechers, snatch count and last announce's time (announced_at) of this
 * node's swarms that changed (store counts_put) and reads the other nodes'
 * (store counts_load): per torrent, the row of the node that saw the latest
 * announce goes to remote_*, and the largest snatch count raises the
 * torrent's own. A scrape answers this node's peers when its announced_at is
 * the latest (or ties), else that row's: one node's counts, never a sum.
 * Not here: announces (a swarm lives on one node, by the load balancer's
 * routing: an announce's counts stay local), the tables (store/).
 * Staleness: a peer that joins or leaves on node A shows in node B's
 * scrape at most about 2 x counts_seconds later (A's next publish, then B's
 * next read), plus a store round trip; a node that stops publishing (dead,
 * cut off) is ignored once 3 x counts_seconds have passed since its last
 * publish, and its counts vanish from the others' scrapes at their next
 * read after that. The freshest node answers: after a swarm moved, a scrape
 * on either node gives the new node's counts once its first announce there
 * is published and read (about 2 x counts_seconds), although the former
 * node keeps the peers until they expire. Snatches: never behind any live
 * node's count as last read (docs/SCALING.md).
 */
#ifndef MIKA_CLUSTER_COUNTS_H
#define MIKA_CLUSTER_COUNTS_H

#include <stdint.h>

#include "store/store.h"
#include "swarm/torrents.h"
#include "util/err.h"

struct counts;

/* Opens the thread's own connection to the users' place (places[0]). */
int counts_new(struct counts **out, uint16_t node_id, uint32_t period_s,
               const struct store_place *places, struct torrents *torrents,
               struct mk_errbuf *eb);
int counts_start(struct counts *c, struct mk_errbuf *eb);
/* Stops the thread (within a second) and closes the connection; NULL: no-op. */
void counts_free(struct counts *c);

#endif /* MIKA_CLUSTER_COUNTS_H */
