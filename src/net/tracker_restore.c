/* net/tracker_restore.c: swarms from the peers store at start, and expiry.
 *
 * Owns: putting a stored peer report back into its swarm with its true age
 * (or refusing it: too old, another node's, a family not served), and
 * reaping one torrent shard's peers older than the time-to-live.
 * Not here: reading the store (serve.c), the peer set (swarm/).
 * Invariant: one shard lock at a time; the time-to-live is read from the
 * live interval, so a change applies to the next reap.
 */
#include <string.h>

#include "net/tracker.h"
#include "net/tracker_int.h"

int tracker_restore_peer(const struct tracker *t, const struct peer_row *row, int64_t now_wall)
{
    uint64_t ttl = (uint64_t)atomic_load(&t->live.interval) * t->cfg->expiry_factor;
    int64_t age = now_wall - row->last_seen;
    uint32_t now = tracker_now(t);
    if (age < 0) {
        age = 0; /* the wall clock stepped back: treat it as just seen */
    }
    if ((uint64_t)age > ttl || (uint64_t)age >= now) {
        return MK_ENOTFOUND;
    }
    /* In a cluster, a report another node answered (the swarm moved) may be
     * followed there by reports this node never sees: its baseline would
     * credit their bytes again. The peer, when it comes back, is new here. */
    if (t->cfg->cluster_node_id != 0 && row->node_id != t->cfg->cluster_node_id) {
        return MK_ENOTFOUND;
    }
    bool v6 = row->family == 6;
    if ((v6 && !t->cfg->ipv6) || (!v6 && !t->cfg->ipv4)) {
        return MK_ENOTFOUND;
    }
    struct peer_report r = {
        .key = tracker_peer_identity(t, row->peer_id, row->user_id),
        .user_id = row->user_id,
        .uploaded = row->uploaded,
        .downloaded = row->downloaded,
        .seeder = row->seeder,
        .partial = row->partial && !row->seeder,
        .now = now - (uint32_t)age,
        .locate = geo_has_location(t->geo) ? geo_locate : NULL,
        .locate_net = geo_has_asn(t->geo) ? geo_locate_net : NULL,
        .locate_arg = t->geo,
    };
    size_t iplen = v6 ? 16 : 4;
    memcpy(r.addr, row->ip, iplen);
    r.addr[iplen] = (uint8_t)(row->port >> 8);
    r.addr[iplen + 1] = (uint8_t)(row->port & 0xff);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t->torrents, row->info_hash, &shard);
    int rc = MK_ENOTFOUND;
    if (tor && !tor->deleted && tor->enabled) {
        struct peer_prev prev;
        rc = peerset_upsert(v6 ? &tor->v6 : &tor->v4, &r, &prev);
        /* The restored report was this swarm's announce here, then. */
        if (rc == MK_OK && row->last_seen > (int64_t)tor->announced_at &&
            row->last_seen <= (int64_t)UINT32_MAX) {
            tor->announced_at = (uint32_t)row->last_seen;
        }
    }
    torrents_unlock(shard);
    return rc;
}

uint32_t tracker_reap_shard(const struct tracker *t, uint32_t shard)
{
    uint32_t now = tracker_now(t);
    uint64_t interval = atomic_load_explicit(&t->live.interval, memory_order_relaxed);
    uint64_t ttl = interval * t->cfg->expiry_factor;
    uint32_t cutoff = now > ttl ? (uint32_t)(now - ttl) : 0;
    return torrents_reap_shard(t->torrents, shard, cutoff);
}
