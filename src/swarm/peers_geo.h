/* swarm/peers_geo.h: what peers.c calls of peers_geo.c, the bucket lists
 * by cell and by network (private to src/swarm/). */
#ifndef MIKA_SWARM_PEERS_GEO_H
#define MIKA_SWARM_PEERS_GEO_H

#include "swarm/peers.h"

/* Puts position pos on, or takes it off, its cell's and network's lists
 * (when those lists exist); call around every move of a position. */
void peerset_geo_link(struct peerset *ps, uint32_t pos);
void peerset_geo_unlink(struct peerset *ps, uint32_t pos);

/* Grows the lists' arrays to the set's capacity; on failure the lists are
 * dropped (selection falls back to a scan). */
int peerset_geo_reserve(struct peerset *ps);

/* Frees both lists. */
void peerset_geo_drop(struct peerset *ps);

#endif /* MIKA_SWARM_PEERS_GEO_H */
