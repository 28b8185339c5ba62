/* swarm/geo.c: location and ASN look-ups in MaxMind DB files (see geo.h). */
#include "swarm/geo.h"

#include <maxminddb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "swarm/cell.h"

struct geo {
    MMDB_s city;
    MMDB_s asn;
    bool has_city;
    bool has_asn;
};

static int geo_open_one(MMDB_s *db, const char *path, const char *what, struct mk_errbuf *eb)
{
    int rc = MMDB_open(path, MMDB_MODE_MMAP, db);
    if (rc != MMDB_SUCCESS) {
        return mk_fail(eb, MK_EIO, "%s: %s: %s", what, path, MMDB_strerror(rc));
    }
    return MK_OK;
}

int geo_open(struct geo **out, const char *city_path, const char *asn_path, struct mk_errbuf *eb)
{
    *out = NULL;
    struct geo *g = calloc(1, sizeof(*g));
    if (!g) {
        return mk_fail(eb, MK_ENOMEM, "geo: out of memory");
    }
    if (city_path && city_path[0]) {
        int rc = geo_open_one(&g->city, city_path, "tracker.geoip_city_db", eb);
        if (rc < 0) {
            free(g);
            return rc;
        }
        g->has_city = true;
    }
    if (asn_path && asn_path[0]) {
        int rc = geo_open_one(&g->asn, asn_path, "tracker.geoip_asn_db", eb);
        if (rc < 0) {
            geo_free(g);
            return rc;
        }
        g->has_asn = true;
    }
    *out = g;
    return MK_OK;
}

void geo_free(struct geo *g)
{
    if (!g) {
        return;
    }
    if (g->has_city) {
        MMDB_close(&g->city);
    }
    if (g->has_asn) {
        MMDB_close(&g->asn);
    }
    free(g);
}

bool geo_has_location(const struct geo *g) { return g && g->has_city; }
bool geo_has_asn(const struct geo *g) { return g && g->has_asn; }

static bool geo_lookup(const MMDB_s *db, const uint8_t *ip, unsigned len,
                       MMDB_lookup_result_s *res)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (len == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, ip, 4);
    } else if (len == 16) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, ip, 16);
    } else {
        return false;
    }
    int mmdb_error = MMDB_SUCCESS;
    *res = MMDB_lookup_sockaddr(db, (const struct sockaddr *)&ss, &mmdb_error);
    return mmdb_error == MMDB_SUCCESS && res->found_entry;
}

static bool geo_double(MMDB_entry_s *entry, const char *const *path, double *out)
{
    MMDB_entry_data_s data;
    if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data) {
        return false;
    }
    switch (data.type) {
    case MMDB_DATA_TYPE_DOUBLE:
        *out = data.double_value;
        return true;
    case MMDB_DATA_TYPE_FLOAT:
        *out = data.float_value;
        return true;
    default:
        return false;
    }
}

uint16_t geo_cell(const struct geo *g, const uint8_t *ip, unsigned len)
{
    MMDB_lookup_result_s res;
    if (!geo_has_location(g) || !geo_lookup(&g->city, ip, len, &res)) {
        return CELL_UNKNOWN;
    }
    static const char *const lat_path[] = {"location", "latitude", NULL};
    static const char *const lon_path[] = {"location", "longitude", NULL};
    double lat, lon;
    if (!geo_double(&res.entry, lat_path, &lat) || !geo_double(&res.entry, lon_path, &lon)) {
        return CELL_UNKNOWN;
    }
    return cell_of(lat, lon);
}

uint32_t geo_asn(const struct geo *g, const uint8_t *ip, unsigned len)
{
    MMDB_lookup_result_s res;
    if (!geo_has_asn(g) || !geo_lookup(&g->asn, ip, len, &res)) {
        return 0;
    }
    static const char *const path[] = {"autonomous_system_number", NULL};
    MMDB_entry_data_s data;
    if (MMDB_aget_value(&res.entry, &data, path) != MMDB_SUCCESS || !data.has_data) {
        return 0;
    }
    switch (data.type) {
    case MMDB_DATA_TYPE_UINT16:
        return data.uint16;
    case MMDB_DATA_TYPE_UINT32:
        return data.uint32;
    default:
        return 0;
    }
}

uint16_t geo_locate(void *arg, const uint8_t *ip, unsigned len)
{
    return geo_cell(arg, ip, len);
}

uint16_t geo_locate_net(void *arg, const uint8_t *ip, unsigned len)
{
    return geo_net_tag(geo_asn(arg, ip, len));
}
