/* swarm/cell.h: a peer's location in two bytes.
 *
 * Owns: the grid that turns a latitude and longitude into a cell id, and the
 * distance between two cells that nearest selection orders peers by.
 * Not here: finding a location from an address (swarm/geo.c).
 * The grid is 2 degrees by 2 degrees (about 220 km at the equator): 90 bands
 * of latitude x 180 of longitude = 16200 cells, ids 1..16200, 0 = unknown.
 * Distance is counted in cells, Chebyshev (the larger of the latitude and
 * longitude steps), longitude wrapping at the antimeridian, latitude not
 * wrapping over the poles. It is coarse on purpose: it fits 16 bits, it is
 * exact for bucketed search by rings, and a tracker needs "close", not metres.
 */
#ifndef MIKA_SWARM_CELL_H
#define MIKA_SWARM_CELL_H

#include <stdint.h>

#define CELL_LAT_BANDS 90u
#define CELL_LON_BANDS 180u
#define CELL_COUNT (CELL_LAT_BANDS * CELL_LON_BANDS)
#define CELL_UNKNOWN 0u

static inline uint16_t cell_of(double lat, double lon)
{
    if (!(lat >= -90.0 && lat <= 90.0 && lon >= -180.0 && lon <= 180.0)) {
        return CELL_UNKNOWN; /* also NaN */
    }
    uint32_t la = (uint32_t)((lat + 90.0) / 2.0);
    uint32_t lo = (uint32_t)((lon + 180.0) / 2.0);
    if (la >= CELL_LAT_BANDS) {
        la = CELL_LAT_BANDS - 1;
    }
    if (lo >= CELL_LON_BANDS) {
        lo = 0; /* +180 is -180 */
    }
    return (uint16_t)(1u + la * CELL_LON_BANDS + lo);
}

static inline uint32_t cell_lat(uint16_t cell) { return (cell - 1u) / CELL_LON_BANDS; }
static inline uint32_t cell_lon(uint16_t cell) { return (cell - 1u) % CELL_LON_BANDS; }

/* The cell at band la, lon band lo (lo taken modulo CELL_LON_BANDS). */
static inline uint16_t cell_at(uint32_t la, int32_t lo)
{
    int32_t m = lo % (int32_t)CELL_LON_BANDS;
    if (m < 0) {
        m += (int32_t)CELL_LON_BANDS;
    }
    return (uint16_t)(1u + la * CELL_LON_BANDS + (uint32_t)m);
}

/* Steps between two known cells. */
static inline uint32_t cell_distance(uint16_t a, uint16_t b)
{
    uint32_t la = cell_lat(a), lb = cell_lat(b);
    uint32_t dlat = la > lb ? la - lb : lb - la;
    uint32_t oa = cell_lon(a), ob = cell_lon(b);
    uint32_t dlon = oa > ob ? oa - ob : ob - oa;
    if (dlon > CELL_LON_BANDS - dlon) {
        dlon = CELL_LON_BANDS - dlon;
    }
    return dlat > dlon ? dlat : dlon;
}

#endif /* MIKA_SWARM_CELL_H */
