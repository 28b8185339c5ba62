/* swarm/geo.h: where an address is, from MaxMind DB files.
 *
 * Owns: the opened location database (GeoLite2-City or any .mmdb with
 * location/latitude and location/longitude) and ASN database (GeoLite2-ASN
 * or any .mmdb with autonomous_system_number), read with libmaxminddb.
 * Not here: what a location is worth to selection (select.c, cell.h).
 * Invariant: after geo_open nothing here writes; look-ups from many threads
 * at once are safe (libmaxminddb reads a read-only memory map). Opening reads
 * files and may block: start-up only, never on the hot path.
 */
#ifndef MIKA_SWARM_GEO_H
#define MIKA_SWARM_GEO_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct geo;

/* Opens either database or both; an empty or NULL path leaves that one out.
 * MK_EIO with the path and libmaxminddb's reason when a file cannot be read
 * or is not a MaxMind DB. */
int geo_open(struct geo **out, const char *city_path, const char *asn_path, struct mk_errbuf *eb);
void geo_free(struct geo *g); /* NULL: no-op */

bool geo_has_location(const struct geo *g);
bool geo_has_asn(const struct geo *g);

/* The cell (swarm/cell.h) of a 4- or 16-byte address, 0 when unknown. */
uint16_t geo_cell(const struct geo *g, const uint8_t *ip, unsigned len);
/* The autonomous system number of the address, 0 when unknown. */
uint32_t geo_asn(const struct geo *g, const uint8_t *ip, unsigned len);

/* geo_cell in the shape of peer_locate_fn (swarm/peers.h); arg is the geo. */
uint16_t geo_locate(void *arg, const uint8_t *ip, unsigned len);

/* A peer's network tag: its AS number folded into 15 bits (1..32749; 0 =
 * unknown). Two AS numbers may share a tag (one in 32749 by chance), which
 * only makes same-network selection treat them as one network. */
static inline uint16_t geo_net_tag(uint32_t asn) { return asn ? (uint16_t)(1 + asn % 32749u) : 0; }
/* geo_net_tag(geo_asn(...)) in the shape of peer_locate_fn. */
uint16_t geo_locate_net(void *arg, const uint8_t *ip, unsigned len);

#endif /* MIKA_SWARM_GEO_H */
