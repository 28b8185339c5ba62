/* store/sums.h: one accounting batch summed per user, per (user, torrent)
 * and per torrent, for backends that write each row once per batch.
 *
 * Owns: turning a batch of struct acct_delta into three arrays, each sorted
 * by its key with one entry per key, the counters added with saturation.
 * Why: a server store makes a new row version (PostgreSQL), a row lock
 * (MySQL) or a command (Redis) per update; a busy user or a popular
 * torrent updated thousands of times in one batch is written once instead,
 * and keys in sorted order make concurrent nodes take row locks alike.
 * Not here: writing the sums (each backend), snatches, suspicious uploads
 * and peers (written per delta, not summed).
 */
#ifndef MIKA_STORE_SUMS_H
#define MIKA_STORE_SUMS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The counters of a user's sum, in order; a history sum has the same ones
 * but SUM_BONUS (it keeps SUM_ANNOUNCES at index SUM_BONUS). */
enum sum_field {
    SUM_CREDITED_UP,
    SUM_CREDITED_DOWN,
    SUM_RAW_UP,
    SUM_RAW_DOWN,
    SUM_SEED_TIME,
    SUM_LEECH_TIME,
    SUM_BONUS,
    SUM_ANNOUNCES,
    SUM_USER_FIELDS,
};
#define SUM_HISTORY_FIELDS 7 /* credited up, down; raw up, down; seed, leech; announces */

struct sum_user {
    uint32_t id;
    uint64_t v[SUM_USER_FIELDS];
};

struct sum_history {
    uint32_t user_id, torrent_id;
    uint64_t v[SUM_HISTORY_FIELDS];
    int64_t first, last; /* earliest and latest announce, unix seconds */
};

struct sum_torrent {
    uint32_t id;
    uint64_t n; /* bytes transferred (a caller may count other things, e.g. snatches) */
};

struct store_sums {
    struct sum_user *users;       /* rows with any counter to add */
    struct sum_history *history;  /* rows with announces > 0 */
    struct sum_torrent *torrents; /* downloaded bytes of rows with announces > 0 */
    size_t nusers, nhistory, ntorrents;
};

/* a + b, or UINT64_MAX when it would wrap. */
uint64_t sums_add_sat(uint64_t a, uint64_t b);

/* Sums rows[0..n) into m (arrays allocated here: sums_free). MK_ENOMEM. */
int sums_build(struct store_sums *m, const struct acct_delta *rows, size_t n);
void sums_free(struct store_sums *m);

/* Sorts v[0..n) by id and merges entries of one id, adding n; answers the
 * entries left. */
size_t sums_merge_torrents(struct sum_torrent *v, size_t n);

#endif /* MIKA_STORE_SUMS_H */
