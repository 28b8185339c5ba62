/* bench/model.h: the simulated population the load generator plays.
 *
 * Owns: the deterministic identities (passkey of a user, info_hash of a
 * torrent, peer_id, address and port of a peer), derived from a seed so that
 * the database writer, the opentracker whitelist and the load generator agree
 * without sharing files; the peers' assignment to torrents (Zipf-like
 * popularity: torrent of rank r gets peers in proportion to 1/(r+1)^s); each
 * peer's session state (counters, seeder or not, in the swarm or not).
 * Not here: sockets, HTTP, timing (loadgen.c).
 */
#ifndef MIKA_BENCH_MODEL_H
#define MIKA_BENCH_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#define MODEL_PASSKEY_LEN 32

struct model_cfg {
    uint64_t seed;
    uint32_t users;        /* user ids 1..users */
    uint32_t torrents;     /* torrent ids torrent_base+1 .. torrent_base+torrents */
    uint32_t torrent_base;
    uint32_t peers;        /* peers spread over the torrents */
    double zipf;           /* popularity exponent; 0 = every torrent the same size */
    uint32_t seeders_pct;  /* share of peers that start as seeders */
};

/* One simulated client session in one swarm. */
struct model_peer {
    uint32_t torrent;      /* index 0..torrents-1 (id = torrent_base + index + 1) */
    uint32_t user;         /* user id */
    uint64_t uploaded, downloaded, left;
    bool active;           /* announced started and not yet stopped */
    bool seeder;
};

struct model {
    struct model_cfg cfg;
    struct model_peer *peers;
    uint64_t *torrent_size; /* bytes, per torrent index */
};

/* splitmix64's finaliser: the one source of every derived identity. */
uint64_t model_mix(uint64_t x);

/* 32 characters of [A-Za-z0-9] and a NUL. */
void model_passkey(uint64_t seed, uint32_t user_id, char out[MODEL_PASSKEY_LEN + 1]);
void model_info_hash(uint64_t seed, uint32_t torrent_id, uint8_t out[20]);
/* "-qB4650-" (a qBittorrent 4.6.5 prefix, on the default whitelist) + 12 characters. */
void model_peer_id(uint64_t seed, uint32_t peer, uint8_t out[20]);
/* A loopback address (host order, 127.0.0.1 .. 127.0.0.255, 127.0.1.0 ..) and a
 * port: distinct for every peer index, so trackers that key peers by address
 * and port (opentracker) see as many peers as those that key by peer_id. */
uint32_t model_peer_ip(uint32_t peer);
uint16_t model_peer_port(uint32_t peer);

/* An IPv4 network (host order) a peer's announced address may be drawn from. */
struct model_net {
    uint32_t base;
    uint8_t prefix;        /* 8..30 */
};

/* The address a peer names in ipv4= (BEP 7), host order: a network of nets
 * picked uniformly by (seed, peer), then a host inside it (never the
 * network's first or last address); the same peer always gets the same one,
 * in every process. n > 0. */
uint32_t model_peer_net_ip(uint64_t seed, uint32_t peer, const struct model_net *nets,
                           uint32_t n);

/* Builds the population; 0 or -1 (out of memory, or bad sizes). */
int model_init(struct model *m, const struct model_cfg *cfg);
void model_fini(struct model *m);

/* Writes users 1..users and the torrents of cfg into an SQLite database whose
 * schema mika has created (docs/STORES.md); rows already there are kept.
 * 0 or -1 with a message on stderr. */
int model_write_db(const struct model_cfg *cfg, const char *path);

#endif
