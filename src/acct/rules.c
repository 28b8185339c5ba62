/* acct/rules.c: the books' arithmetic. See rules.h for every rule.
 *
 * 128-bit intermediates (GCC and Clang on every 64-bit target) keep
 * raw x four per-mille factors exact before the single truncation.
 */
#include "acct/rules.h"

typedef unsigned __int128 u128;

static uint64_t saturate(u128 v)
{
    return v > (u128)INT64_MAX ? (uint64_t)INT64_MAX : (uint64_t)v;
}

uint64_t acct_raw_delta(bool have_prev, uint64_t prev, uint64_t now)
{
    if (!have_prev) {
        return 0;
    }
    return now >= prev ? now - prev : now;
}

static uint64_t apply4(uint64_t raw, uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    if (raw == 0 || (a == ACCT_MULT_ONE && b == ACCT_MULT_ONE && c == ACCT_MULT_ONE &&
                     d == ACCT_MULT_ONE)) {
        /* The result below, without its 128-bit divisions (which cost more
         * than the rest of an announce's accounting): most announces report
         * nothing in one direction, and most torrents have no multiplier. */
        return saturate(raw);
    }
    /* raw < 2^64 and each factor <= 2^17: the product fits in 2^132 only
     * without the divisions, so divide after every second factor; each
     * division is by 1000^2 of a value that was multiplied by it, and the
     * remainders are carried, so the result equals floor(raw*a*b*c*d/1000^4). */
    u128 one2 = (u128)ACCT_MULT_ONE * ACCT_MULT_ONE;
    u128 ab = (u128)a * b;
    u128 cd = (u128)c * d;
    u128 x = (u128)raw * ab; /* < 2^64 * 2^34 */
    u128 q = x / one2, r = x % one2;
    /* floor(x*cd / one2^2) = floor((q*one2 + r)*cd / one2^2) = q*cd/one2 + r*cd/one2^2 */
    u128 hi = q * cd;        /* q < 2^79, cd < 2^34: < 2^113 */
    u128 lo = r * cd;        /* r < 2^20, cd < 2^34 */
    u128 total = hi / one2 + (lo + (hi % one2) * one2) / (one2 * one2);
    return saturate(total);
}

void acct_credit(const struct acct_mults *m, uint64_t raw_up, uint64_t raw_down,
                 uint64_t *credited_up, uint64_t *credited_down)
{
    *credited_up = apply4(raw_up, m->torrent.up, m->user_class.up, m->personal.up, m->event.up);
    *credited_down = m->freeleech ? 0
                                  : apply4(raw_down, m->torrent.down, m->user_class.down,
                                           m->personal.down, m->event.down);
}

uint32_t acct_time_delta(uint32_t prev_seen, uint32_t now, uint32_t cap)
{
    if (now <= prev_seen) {
        return 0;
    }
    uint32_t gap = now - prev_seen;
    return gap > cap ? cap : gap;
}

uint64_t acct_bonus(const struct acct_bonus_params *p, uint32_t seconds, uint64_t size,
                    uint32_t seeders)
{
    if (seconds == 0 || p->points_per_hour == 0) {
        return 0;
    }
    uint64_t units = p->size_unit_bytes ? size / p->size_unit_bytes : 0;
    if (units > p->size_units_max) {
        units = p->size_units_max;
    }
    if (seeders == 0) {
        seeders = 1;
    }
    u128 size_factor = (u128)ACCT_MULT_ONE + (u128)p->size_weight * units;
    u128 seeder_div = (u128)ACCT_MULT_ONE + (u128)p->seeder_weight * (seeders - 1);
    u128 num = (u128)p->points_per_hour * seconds * size_factor;
    u128 den = (u128)3600 * seeder_div;
    return saturate(num / den);
}

bool acct_is_suspicious(uint64_t raw_up, uint32_t seconds, uint32_t leechers,
                        uint64_t max_bytes_per_second)
{
    if (raw_up == 0) {
        return false;
    }
    if (leechers == 0) {
        return true;
    }
    if (max_bytes_per_second == 0) {
        return false;
    }
    uint64_t span = seconds ? seconds : 1;
    return (u128)raw_up > (u128)max_bytes_per_second * span;
}
