/* acct/rules.h: the arithmetic of the books, as pure functions.
 *
 * Owns: how a peer's reports become raw deltas, how raw bytes become credited
 * bytes under every multiplier, how seed time becomes bonus points, and when
 * an upload is too good to be true. Everything is integer fixed-point, so the
 * same inputs give the same books on every machine, and nothing drifts.
 * Not here: where the numbers come from (tracker.c) or go (journal, store).
 * docs/ACCOUNTING.md states every rule with a worked example; keep the two
 * in step.
 */
#ifndef MIKA_ACCT_RULES_H
#define MIKA_ACCT_RULES_H

#include <stdbool.h>
#include <stdint.h>

/* Multipliers are per-mille: 1000 is 1.0x, 0 is "not counted", 2000 double. */
#define ACCT_MULT_ONE 1000u
#define ACCT_MULT_MAX 100000u /* 100x: anything above is a typo, refused by the API */

/* Bonus points are kept in micro-points: 1 point = 1,000,000. */
#define ACCT_POINT 1000000

struct acct_mult {
    uint32_t up;   /* per-mille */
    uint32_t down; /* per-mille */
};

/* Every multiplier that applies to one announce, already resolved for "now":
 * an expired token or event is passed as ACCT_MULT_ONE by the caller. */
struct acct_mults {
    struct acct_mult torrent;  /* the torrent's own factors */
    bool freeleech;            /* the torrent is freeleech: download x 0 */
    struct acct_mult user_class;
    struct acct_mult personal; /* a freeleech token or personal factor, if in force */
    struct acct_mult event;    /* a site-wide event, if in force */
};

/* A report lower than the previous one from the same peer means the client
 * started a new session, whose counters restart at zero: all of it is new.
 * Without a previous report there is no baseline and nothing is credited. */
uint64_t acct_raw_delta(bool have_prev, uint64_t prev, uint64_t now);

/* credited = raw x torrent x class x personal x event, each per-mille, in
 * that order, truncated once at the end (never per factor). Freeleech makes
 * the download side 0 whatever the other factors. Saturates at INT64_MAX. */
void acct_credit(const struct acct_mults *m, uint64_t raw_up, uint64_t raw_down,
                 uint64_t *credited_up, uint64_t *credited_down);

/* Seconds to book as seed or leech time for the gap since the previous
 * announce: the gap, capped at cap (interval x expiry factor). A peer silent
 * for longer is expired, so its next announce has no previous one and books
 * nothing; the cap bounds what a late reaper could let through. */
uint32_t acct_time_delta(uint32_t prev_seen, uint32_t now, uint32_t cap);

/* The bonus formula's settings (config section [bonus]). */
struct acct_bonus_params {
    uint64_t points_per_hour;    /* micro-points per hour of seeding one torrent */
    uint64_t size_unit_bytes;    /* torrent size is counted in these units (e.g. 1 GiB) */
    uint32_t size_weight;        /* per-mille per unit: factor = 1 + weight x units */
    uint32_t size_units_max;     /* units beyond this add nothing */
    uint32_t seeder_weight;      /* per-mille: factor = 1 / (1 + weight x (seeders - 1)) */
};

/* Micro-points earned by seeding a torrent of `size` bytes for `seconds`,
 * with `seeders` seeders (the earner included; 0 is read as 1):
 *   points_per_hour x seconds/3600
 *     x (1000 + size_weight x min(size/size_unit, size_units_max)) / 1000
 *     x 1000 / (1000 + seeder_weight x (seeders - 1))
 * computed in 128-bit and truncated once. */
uint64_t acct_bonus(const struct acct_bonus_params *p, uint32_t seconds, uint64_t size,
                    uint32_t seeders);

/* Why an upload was not credited (0: it was). */
enum acct_suspicion {
    ACCT_SUSPICIOUS_NONE = 0,
    ACCT_SUSPICIOUS_NO_LEECHERS = 1, /* no leecher in the swarm to receive it */
    ACCT_SUSPICIOUS_TOO_FAST = 2,    /* faster than tracker.max_upload_mibps */
};

/* Too good to be true: an upload faster than max_bytes_per_second over the
 * gap (a gap of 0 s counts as 1 s), or any upload into a swarm with no
 * leecher to receive it (leechers: other than the reporting peer). max_bytes_per_second 0 disables the speed check. */
bool acct_is_suspicious(uint64_t raw_up, uint32_t seconds, uint32_t leechers,
                        uint64_t max_bytes_per_second);

#endif /* MIKA_ACCT_RULES_H */
