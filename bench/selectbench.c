/* bench/selectbench.c: CPU per announce of each peer selection strategy, in
 * the swarm (the part that differs between strategies): the requester's
 * upsert plus picking numwant peers, under no lock, one thread.
 *
 * Swarms of 100 and 100 000 IPv4 peers (a quarter seeders), located around
 * 40 population centres with a 5 % share of unknown locations; each
 * announce is by a random member asking for 50 peers. Printed: ns per
 * announce (the least of 5 runs, as the machine may be shared) and the
 * ratio to random. The rest of an announce (HTTP, auth,
 * books, bencode) is the same for every strategy, so the ratio for a whole
 * announce is closer to 1 than this one.
 *
 * Build: cmake --build build --target selectbench; run: build/selectbench
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "swarm/cell.h"
#include "swarm/select.h"

#define NUMWANT 50

struct world {
    uint16_t *cells;
    uint16_t *nets;
};

static uint16_t world_locate(void *arg, const uint8_t *ip, unsigned len)
{
    (void)len;
    const struct world *w = arg;
    uint32_t id = (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
    return w->cells[id];
}

static uint16_t world_locate_net(void *arg, const uint8_t *ip, unsigned len)
{
    (void)len;
    const struct world *w = arg;
    uint32_t id = (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
    return w->nets[id];
}

static uint64_t key_of(uint32_t id)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull + 7;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

static void report_of(struct peer_report *r, struct world *w, uint32_t id, uint32_t n)
{
    memset(r, 0, sizeof(*r));
    r->key = key_of(id);
    r->user_id = id;
    r->addr[0] = (uint8_t)(id >> 24);
    r->addr[1] = (uint8_t)(id >> 16);
    r->addr[2] = (uint8_t)(id >> 8);
    r->addr[3] = (uint8_t)id;
    r->seeder = id < n / 4;
    r->now = 100;
    r->locate = world_locate;
    r->locate_net = world_locate_net;
    r->locate_arg = w;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ns per announce for one strategy on a fresh swarm of n peers. */
static double run(const struct select_ops *ops, uint32_t n, uint32_t announces)
{
    struct rng rng;
    rng_seed(&rng, 42);
    struct world w = {.cells = calloc(n, sizeof(uint16_t)), .nets = calloc(n, sizeof(uint16_t))};
    double centres[40][2];
    for (int c = 0; c < 40; c++) {
        centres[c][0] = -40.0 + (double)rng_below(&rng, 100);
        centres[c][1] = -170.0 + (double)rng_below(&rng, 340);
    }
    for (uint32_t id = 0; id < n; id++) {
        if (rng_below(&rng, 20) == 0) {
            continue; /* unknown */
        }
        /* Skewed: low-numbered centres are bigger. */
        uint32_t c = rng_below(&rng, 1 + rng_below(&rng, 40));
        double lat = centres[c][0] + ((double)rng_below(&rng, 1001) - 500.0) / 100.0;
        double lon = centres[c][1] + ((double)rng_below(&rng, 1001) - 500.0) / 100.0;
        w.cells[id] = cell_of(lat, lon);
        /* A network per centre and a few national ones across centres. */
        w.nets[id] = (uint16_t)(1 + (rng_below(&rng, 3) == 0 ? 100 + c % 5 : c));
    }
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    struct peer_report r;
    struct peer_prev prev;
    for (uint32_t id = 0; id < n; id++) {
        report_of(&r, &w, id, n);
        (void)peerset_upsert(&ps, &r, &prev);
    }
    struct selector s = {.ops = ops};
    static uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    uint64_t sink = 0;
    /* One warm-up pass builds nearest's buckets, as the first announce would. */
    for (int pass = 0; pass < 2; pass++) {
        double t0 = cpu_seconds();
        for (uint32_t a = 0; a < announces; a++) {
            uint32_t id = rng_below(&rng, n);
            report_of(&r, &w, id, n);
            (void)peerset_upsert(&ps, &r, &prev);
            struct select_query q = {.ps = &ps, .rng = &rng, .self_key = r.key,
                                     .for_seeder = r.seeder, .numwant = NUMWANT};
            sink += selector_pick(&s, &q, out);
            sink += out[0];
        }
        double t1 = cpu_seconds();
        if (pass == 1) {
            peerset_fini(&ps);
            free(w.cells);
            free(w.nets);
            if (sink == 0) {
                fprintf(stderr, "nothing picked\n");
            }
            return (t1 - t0) * 1e9 / announces;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t announces = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 200000;
    static const char *const names[] = {"random", "seeders-first", "nearest", "same-network"};
    static const uint32_t sizes[] = {100, 100000};
    /* A second argument runs one swarm size only, of any size (for a
     * profiler, or the 1M-peer swarm of the bench's sweep). */
    uint32_t only = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
    const uint32_t *run_sizes = only ? &only : sizes;
    size_t nsizes = only ? 1 : sizeof(sizes) / sizeof(sizes[0]);
    printf("%-14s %8s %12s %8s\n", "strategy", "peers", "ns/announce", "ratio");
    for (size_t si = 0; si < nsizes; si++) {
        double base = 0;
        for (size_t k = 0; k < 4; k++) {
            double ns = 0;
            for (int rep = 0; rep < 5; rep++) {
                double x = run(select_find(names[k]), run_sizes[si], announces);
                ns = rep == 0 || x < ns ? x : ns;
            }
            if (k == 0) {
                base = ns;
            }
            printf("%-14s %8u %12.1f %8.2f\n", names[k], run_sizes[si], ns, ns / base);
        }
    }
    return 0;
}
