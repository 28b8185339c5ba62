/* bench/model.c: the simulated population (see model.h).
 *
 * Owns: identity derivation, the Zipf-like split of peers over torrents,
 * initial session state, and writing users and torrents into mika's SQLite
 * database before mika starts.
 * Not here: what the peers do over time (loadgen.c picks and mutates them).
 * Invariant: every identity is a pure function of (seed, index), so separate
 * processes (the DB writer, the whitelist writer, the load generator) agree.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

static const char model_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Domain tags keep the streams of different identities apart. */
enum model_domain {
    MODEL_D_PASSKEY = 1,
    MODEL_D_HASH = 2,
    MODEL_D_PEER_ID = 3,
    MODEL_D_USER_OF = 4,
    MODEL_D_SEEDER = 5,
    MODEL_D_SIZE = 6,
    MODEL_D_NET_IP = 7,
};

uint64_t model_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t model_stream(uint64_t seed, enum model_domain d, uint64_t index, uint64_t word)
{
    return model_mix(seed ^ model_mix(((uint64_t)d << 56) ^ (index << 8) ^ word));
}

static void model_alnum_fill(uint64_t seed, enum model_domain d, uint64_t index, char *out,
                             size_t n)
{
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            r = model_stream(seed, d, index, i / 8);
        }
        out[i] = model_alnum[(r & 0xff) % 62];
        r >>= 8;
    }
}

void model_passkey(uint64_t seed, uint32_t user_id, char out[MODEL_PASSKEY_LEN + 1])
{
    model_alnum_fill(seed, MODEL_D_PASSKEY, user_id, out, MODEL_PASSKEY_LEN);
    out[MODEL_PASSKEY_LEN] = '\0';
}

void model_info_hash(uint64_t seed, uint32_t torrent_id, uint8_t out[20])
{
    for (size_t w = 0; w < 3; w++) {
        uint64_t r = model_stream(seed, MODEL_D_HASH, torrent_id, w);
        size_t n = w < 2 ? 8 : 4;
        memcpy(out + w * 8, &r, n);
    }
}

void model_peer_id(uint64_t seed, uint32_t peer, uint8_t out[20])
{
    memcpy(out, "-qB4650-", 8);
    model_alnum_fill(seed, MODEL_D_PEER_ID, peer, (char *)out + 8, 12);
}

/* 60000 ports per address keeps ports in 1024..61023, clear of the servers'. */
#define MODEL_PORTS_PER_IP 60000u

uint32_t model_peer_ip(uint32_t peer)
{
    return (127u << 24) + 1u + peer / MODEL_PORTS_PER_IP;
}

uint16_t model_peer_port(uint32_t peer)
{
    return (uint16_t)(1024u + peer % MODEL_PORTS_PER_IP);
}

uint32_t model_peer_net_ip(uint64_t seed, uint32_t peer, const struct model_net *nets,
                           uint32_t n)
{
    uint64_t r = model_stream(seed, MODEL_D_NET_IP, peer, 0);
    const struct model_net *net = &nets[(r & 0xffffffffu) % n];
    uint32_t hosts = (1u << (32 - net->prefix)) - 2; /* prefix <= 30: at least 2 */
    return net->base + 1u + (uint32_t)((r >> 32) % hosts);
}

int model_init(struct model *m, const struct model_cfg *cfg)
{
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    if (cfg->users == 0 || cfg->torrents == 0 || cfg->peers == 0) {
        return -1;
    }
    m->peers = calloc(cfg->peers, sizeof(*m->peers));
    m->torrent_size = calloc(cfg->torrents, sizeof(*m->torrent_size));
    if (!m->peers || !m->torrent_size) {
        model_fini(m);
        return -1;
    }
    double total = 0;
    for (uint32_t r = 0; r < cfg->torrents; r++) {
        total += pow((double)r + 1, -cfg->zipf);
        m->torrent_size[r] =
            (1 + model_stream(cfg->seed, MODEL_D_SIZE, cfg->torrent_base + r, 0) % 128) << 26;
    }
    /* Cumulative rounding: torrent r holds the peers between the rounded
     * cumulative shares of r and r+1, so the counts add up to exactly peers. */
    double cum = 0;
    uint32_t next = 0;
    for (uint32_t r = 0; r < cfg->torrents; r++) {
        cum += pow((double)r + 1, -cfg->zipf);
        uint32_t end = r + 1 == cfg->torrents ? cfg->peers
                                              : (uint32_t)llround(cum / total * cfg->peers);
        for (; next < end; next++) {
            m->peers[next].torrent = r;
        }
    }
    for (uint32_t g = 0; g < cfg->peers; g++) {
        struct model_peer *p = &m->peers[g];
        p->user = 1 + (uint32_t)(model_stream(cfg->seed, MODEL_D_USER_OF, g, 0) % cfg->users);
        p->seeder = model_stream(cfg->seed, MODEL_D_SEEDER, g, 0) % 100 < cfg->seeders_pct;
        p->left = p->seeder ? 0 : m->torrent_size[p->torrent];
    }
    return 0;
}

void model_fini(struct model *m)
{
    free(m->peers);
    free(m->torrent_size);
    m->peers = NULL;
    m->torrent_size = NULL;
}

static int model_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "model: %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int model_insert_rows(sqlite3 *db, const struct model_cfg *cfg)
{
    sqlite3_stmt *u = NULL, *t = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO users (id, passkey) VALUES (?, ?)", -1, &u,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO torrents (id, info_hash) VALUES (?, ?)", -1,
                           &t, NULL) != SQLITE_OK) {
        fprintf(stderr, "model: prepare: %s\n", sqlite3_errmsg(db));
        goto out_finalize;
    }
    for (uint32_t id = 1; id <= cfg->users; id++) {
        char key[MODEL_PASSKEY_LEN + 1];
        model_passkey(cfg->seed, id, key);
        sqlite3_bind_int64(u, 1, id);
        sqlite3_bind_text(u, 2, key, MODEL_PASSKEY_LEN, SQLITE_TRANSIENT);
        if (sqlite3_step(u) != SQLITE_DONE) {
            fprintf(stderr, "model: insert user %u: %s\n", id, sqlite3_errmsg(db));
            goto out_finalize;
        }
        sqlite3_reset(u);
    }
    for (uint32_t i = 0; i < cfg->torrents; i++) {
        uint32_t id = cfg->torrent_base + i + 1;
        uint8_t hash[20];
        model_info_hash(cfg->seed, id, hash);
        sqlite3_bind_int64(t, 1, id);
        sqlite3_bind_blob(t, 2, hash, sizeof(hash), SQLITE_TRANSIENT);
        if (sqlite3_step(t) != SQLITE_DONE) {
            fprintf(stderr, "model: insert torrent %u: %s\n", id, sqlite3_errmsg(db));
            goto out_finalize;
        }
        sqlite3_reset(t);
    }
    rc = 0;
out_finalize:
    sqlite3_finalize(u);
    sqlite3_finalize(t);
    return rc;
}

int model_write_db(const struct model_cfg *cfg, const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "model: open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 5000);
    /* The unique indexes on passkey and info_hash take random inserts: a
     * large page cache keeps 2M rows from thrashing it. */
    int rc = model_exec(db, "PRAGMA synchronous = OFF; PRAGMA cache_size = -524288");
    if (rc == 0) {
        rc = model_exec(db, "BEGIN");
    }
    if (rc == 0) {
        rc = model_insert_rows(db, cfg);
        rc = model_exec(db, rc == 0 ? "COMMIT" : "ROLLBACK") == 0 ? rc : -1;
    }
    sqlite3_close(db);
    return rc;
}
