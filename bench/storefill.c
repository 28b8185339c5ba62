/* bench/storefill.c: the benchmark's users and torrents, written into any store.
 *
 * Owns: writing users 1..N (with the model's passkeys) and the model's
 * torrents into a store of any backend, through the store interface, so
 * that a server store (postgres, mysql, redis...) holds the same population
 * the SQLite database gets from `loadgen gendb`.
 * Not here: the population itself (model.c), timing, the servers (bench/run).
 *
 * Usage: storefill --backend NAME --dsn DSN --seed S --users N --torrents N
 *                  [--torrent-base B]
 * One store write per row (the store interface's own transactions): a
 * hundred thousand rows take seconds on a loopback server. Exit 0, or 1 with
 * the store's message on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "store/store.h"
#include "util/log.h"

struct storefill_args {
    const char *backend;
    const char *dsn;
    struct model_cfg model;
};

static int storefill_parse(int argc, char **argv, struct storefill_args *a)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--backend") == 0) {
            a->backend = v;
        } else if (strcmp(k, "--dsn") == 0) {
            a->dsn = v;
        } else if (strcmp(k, "--seed") == 0) {
            a->model.seed = strtoull(v, NULL, 10);
        } else if (strcmp(k, "--users") == 0) {
            a->model.users = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "--torrents") == 0) {
            a->model.torrents = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "--torrent-base") == 0) {
            a->model.torrent_base = (uint32_t)strtoul(v, NULL, 10);
        } else {
            return -1;
        }
    }
    return a->backend && a->dsn ? 0 : -1;
}

static int storefill_users(struct store *st, const struct model_cfg *m, struct mk_errbuf *eb)
{
    for (uint32_t id = 1; id <= m->users; id++) {
        struct user_rec rec = {0};
        rec.row.id = id;
        rec.row.enabled = true;
        rec.may_download = true;
        rec.class_id = MK_CLASS_DEFAULT;
        rec.up_mult = rec.down_mult = MK_MULT_ONE;
        model_passkey(m->seed, id, rec.row.passkey);
        int rc = store_user_insert(st, &rec, true, eb);
        if (rc != 0 && rc != MK_EEXIST) {
            return rc;
        }
    }
    return 0;
}

static int storefill_torrents(struct store *st, const struct model_cfg *m, struct mk_errbuf *eb)
{
    for (uint32_t i = 0; i < m->torrents; i++) {
        struct torrent_rec rec = {0};
        rec.row.enabled = true;
        rec.up_mult = rec.down_mult = MK_MULT_ONE;
        model_info_hash(m->seed, m->torrent_base + i + 1, rec.row.info_hash);
        int rc = store_torrent_insert(st, &rec, eb);
        if (rc != 0 && rc != MK_EEXIST) {
            return rc;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct storefill_args a = {0};
    if (storefill_parse(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: storefill --backend NAME --dsn DSN --seed S --users N"
                        " --torrents N [--torrent-base B]\n");
        return 2;
    }
    mk_log_setup(MK_LOG_WARN, MK_LOG_TEXT, 2);
    struct store st = {0};
    struct store_cfg cfg = {.path = "", .dsn = a.dsn};
    struct mk_errbuf eb = {{0}};
    int rc = store_open(&st, a.backend, &cfg, &eb);
    if (rc == 0) {
        rc = storefill_users(&st, &a.model, &eb);
    }
    if (rc == 0) {
        rc = storefill_torrents(&st, &a.model, &eb);
    }
    store_close(&st);
    if (rc != 0) {
        fprintf(stderr, "storefill: %s: %s\n", a.backend, eb.msg);
        return 1;
    }
    return 0;
}
