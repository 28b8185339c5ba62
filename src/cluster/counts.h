/* cluster/counts.h: swarm counts shared between the nodes of a cluster.
 *
 * Owns: a thread that, every cluster.counts_seconds, publishes the seeders
 * and leechers of this node's swarms that changed (store counts_put) and
 * reads the other nodes' (store counts_load) into each torrent's
 * remote_seeders/remote_leechers, which a scrape adds to its own swarm's.
 * Not here: announces (a swarm lives on one node, by the load balancer's
 * routing: an announce's counts stay local), the tables (store/).
 * Staleness: a peer that joins or leaves on node A shows in node B's
 * scrape at most about 2 x counts_seconds later (A's next publish, then B's
 * next read), plus a store round trip; a node that stops publishing (dead,
 * cut off) is ignored once 3 x counts_seconds have passed since its last
 * publish, and its counts vanish from the others' scrapes at their next
 * read after that.
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
