/* store/sums.c: one accounting batch summed per user, per (user, torrent)
 * and per torrent (store/sums.h says why). */
#include "store/sums.h"

#include <stdlib.h>
#include <string.h>

#include "util/radix.h"

uint64_t sums_add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static int sums_cmp_user(const void *a, const void *b)
{
    uint32_t x = ((const struct sum_user *)a)->id, y = ((const struct sum_user *)b)->id;
    return x < y ? -1 : x > y;
}

static int sums_cmp_history(const void *a, const void *b)
{
    const struct sum_history *x = a, *y = b;
    if (x->user_id != y->user_id) {
        return x->user_id < y->user_id ? -1 : 1;
    }
    return x->torrent_id < y->torrent_id ? -1 : x->torrent_id > y->torrent_id;
}

static int sums_cmp_torrent(const void *a, const void *b)
{
    uint32_t x = ((const struct sum_torrent *)a)->id, y = ((const struct sum_torrent *)b)->id;
    return x < y ? -1 : x > y;
}

/* The flusher hands over a batch sorted by user and torrent, so users and
 * history rows arrive in order: a check is linear where qsort is not. */
static void sums_sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    const char *p = v;
    for (size_t i = 1; i < n; i++) {
        if (cmp(p + (i - 1) * size, p + i * size) > 0) {
            qsort(v, n, size, cmp);
            return;
        }
    }
}

void sums_free(struct store_sums *m)
{
    free(m->users);
    free(m->history);
    free(m->torrents);
    memset(m, 0, sizeof(*m));
}

/* Sorts torrent sums by id: they come in the batch's user order, a group
 * holds hundreds of thousands, and a radix sort of (id, bytes) pairs costs
 * a fraction of qsort's comparisons. Without memory for its scratch, qsort. */
static void sums_sort_torrents(struct sum_torrent *v, size_t n)
{
    struct radix_item *items = n > 1 ? malloc(2 * n * sizeof(*items)) : NULL;
    if (!items) {
        sums_sort(v, n, sizeof(*v), sums_cmp_torrent);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        items[i] = (struct radix_item){.key = v[i].id, .idx = v[i].n};
    }
    radix_sort(items, items + n, n);
    for (size_t i = 0; i < n; i++) {
        v[i] = (struct sum_torrent){.id = (uint32_t)items[i].key, .n = items[i].idx};
    }
    free(items);
}

size_t sums_merge_torrents(struct sum_torrent *v, size_t n)
{
    sums_sort_torrents(v, n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && v[k - 1].id == v[i].id) {
            v[k - 1].n = sums_add_sat(v[k - 1].n, v[i].n);
        } else {
            v[k++] = v[i];
        }
    }
    return k;
}

static size_t sums_merge_users(struct sum_user *v, size_t n)
{
    sums_sort(v, n, sizeof(*v), sums_cmp_user);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && v[k - 1].id == v[i].id) {
            for (int j = 0; j < SUM_USER_FIELDS; j++) {
                v[k - 1].v[j] = sums_add_sat(v[k - 1].v[j], v[i].v[j]);
            }
        } else {
            v[k++] = v[i];
        }
    }
    return k;
}

static size_t sums_merge_history(struct sum_history *v, size_t n)
{
    sums_sort(v, n, sizeof(*v), sums_cmp_history);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && sums_cmp_history(&v[k - 1], &v[i]) == 0) {
            struct sum_history *a = &v[k - 1];
            for (int j = 0; j < SUM_HISTORY_FIELDS; j++) {
                a->v[j] = sums_add_sat(a->v[j], v[i].v[j]);
            }
            a->first = v[i].first < a->first ? v[i].first : a->first;
            a->last = v[i].last > a->last ? v[i].last : a->last;
        } else {
            v[k++] = v[i];
        }
    }
    return k;
}

int sums_build(struct store_sums *m, const struct acct_delta *rows, size_t n)
{
    memset(m, 0, sizeof(*m));
    size_t cap = n ? n : 1;
    m->users = calloc(cap, sizeof(*m->users));
    m->history = calloc(cap, sizeof(*m->history));
    m->torrents = calloc(cap, sizeof(*m->torrents));
    if (!m->users || !m->history || !m->torrents) {
        sums_free(m);
        return MK_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct acct_delta *d = &rows[i];
        uint64_t cu = d->has_credit ? d->credited_up : d->uploaded;
        uint64_t cd = d->has_credit ? d->credited_down : d->downloaded;
        if (acct_delta_has_books(d)) {
            m->users[m->nusers++] = (struct sum_user){
                .id = d->user_id,
                .v = {cu, cd, d->uploaded, d->downloaded, d->seed_seconds, d->leech_seconds,
                      d->bonus, d->announces}};
        }
        if (d->announces) {
            m->history[m->nhistory++] = (struct sum_history){
                .user_id = d->user_id,
                .torrent_id = d->torrent_id,
                .v = {cu, cd, d->uploaded, d->downloaded, d->seed_seconds, d->leech_seconds,
                      d->announces},
                .first = d->first_at ? d->first_at : d->at,
                .last = d->at};
            if (d->downloaded) {
                m->torrents[m->ntorrents++] =
                    (struct sum_torrent){.id = d->torrent_id, .n = d->downloaded};
            }
        }
    }
    m->nusers = sums_merge_users(m->users, m->nusers);
    m->nhistory = sums_merge_history(m->history, m->nhistory);
    m->ntorrents = sums_merge_torrents(m->torrents, m->ntorrents);
    return 0;
}
