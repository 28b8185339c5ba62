/* store/redis_apply.c: the redis backend's books: apply(), apply_segment(),
 * apply_segments(), pruning peers and applied segment ids.
 *
 * Owns: the one Lua script that applies a batch (summed per user, per
 * (user, torrent) and per torrent by store/sums.c) with the segment check.
 * Not here: the connection and the script cache (redis.c), the keys' list
 * (docs/STORES.md).
 * Invariants: a batch is one script: all of it or, when any of its segments
 * is already in mika:journal_applied, none of it (MK_EEXIST); the script
 * never fails after its first write; counters stay 64-bit (decimal strings
 * end to end).
 */
#include "store/redis_admin.h"
#include "store/sums.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* ---- apply ---------------------------------------------------------------------- */

/* The whole batch, atomically: Redis runs a script alone, and this one
 * checks the segments first and then never stops half-way (Redis would keep
 * the writes made before an error): every later command goes through
 * call(), which logs a failure (a key an operator gave the wrong type, a
 * field that is not a number) to the server's log and goes on, and an
 * overflowing HINCRBY saturates at 2^63-1. Counters arrive as decimal
 * strings and are never turned into Lua numbers (doubles from 2^53 up);
 * times and peer versions are (both below 2^53).
 * Cost (a loopback redis-server 7.0 on a busy 2-core machine, ~80 us of
 * its CPU per announce): the commands the script runs (2-4 us each with
 * Lua's glue, ~18 per announce), each ARGV string (0.2 us, 0.45 us in a
 * list of 150k) and the AOF. Lua's tonumber and string.format cost about
 * as much as an HINCRBY: adding counters in Lua after one HMGET per row
 * sent 7.8 commands per announce instead of 17.8 and saved nothing; so did
 * reading the rows first and sending the sums (more ARGV). So the script
 * stays simple and the C side sends fewer rows: sums per user, history row
 * and torrent (store/sums.c), the newest report of each peer only, and
 * many segments per script (apply_segments), where they merge more.
 * A script holds the server: a group of segments is held for as long as
 * its rows take (a flusher's group may be several times a segment).
 * ARGV: nids, then each segment's field and records, then kinds, nusers,
 * nhistory, ntorrents, nevents, then the users (id and 8 counters), the
 * history rows (user, torrent, 7 counters, first, last), the torrents (id,
 * transferred) and the events: S user torrent at | X user torrent at
 * uploaded reason | P key family ip port uploaded downloaded seeder partial
 * last_seen version gone node. The C side builds exactly this; a malformed
 * list is refused before anything is written. Exactly once: if any of the
 * segments is in mika:journal_applied (or named twice), nothing is written
 * and the answer is EEXIST; otherwise all of them are recorded. */
static const char REDIS_APPLY[] =
    "local a = ARGV\n"
    "local MAX = '9223372036854775807'\n"
    "local function call(...)\n"
    "  local r = redis.pcall(...)\n"
    "  if type(r) == 'table' and r.err then\n"
    "    redis.log(redis.LOG_WARNING, 'mika apply: ' .. select(1, ...) .. ' ' ..\n"
    "              tostring(select(2, ...)) .. ': ' .. r.err)\n"
    "    return nil\n"
    "  end\n"
    "  return r\n"
    "end\n"
    "local function add(k, f, v)\n"
    "  if v == '0' then return end\n"
    "  local r = redis.pcall('HINCRBY', k, f, v)\n"
    "  if type(r) == 'table' and r.err then\n"
    "    if string.find(r.err, 'overflow', 1, true) then call('HSET', k, f, MAX)\n"
    "    else redis.log(redis.LOG_WARNING, 'mika apply: ' .. k .. ' ' .. f .. ': ' .. r.err) end\n"
    "  end\n"
    "end\n"
    "local sizes = {S = 4, X = 6, P = 13}\n"
    "local nids = tonumber(a[1])\n"
    "if not nids or nids < 0 or 2 * nids + 6 > #a then\n"
    "  return redis.error_reply('mika: bad apply header')\n"
    "end\n"
    "local hdr = 2 * nids + 2\n"
    "local nu, nh, nt, ne = tonumber(a[hdr + 1]), tonumber(a[hdr + 2]), tonumber(a[hdr + 3]),\n"
    "                       tonumber(a[hdr + 4])\n"
    "if not (nu and nh and nt and ne) then return redis.error_reply('mika: bad apply header') end\n"
    "local i = hdr + 5 + 9 * nu + 11 * nh + 2 * nt\n"
    "for _ = 1, ne do\n"
    "  local n = sizes[a[i]]\n"
    "  if not n then return redis.error_reply('mika: bad apply event') end\n"
    "  i = i + n\n"
    "end\n"
    "if i ~= #a + 1 then return redis.error_reply('mika: bad apply length') end\n"
    "local seen = {}\n"
    "for j = 1, nids do\n"
    "  local f = a[2 * j]\n"
    "  if seen[f] or redis.call('HEXISTS', 'mika:journal_applied', f) == 1 then\n"
    "    return 'EEXIST segment ' .. f\n"
    "  end\n"
    "  seen[f] = true\n"
    "end\n"
    "local now = redis.call('TIME')[1]\n"
    "for j = 1, nids do\n"
    "  redis.call('HSET', 'mika:journal_applied', a[2 * j], a[2 * j + 1])\n"
    "  redis.call('ZADD', 'mika:journal_applied_at', now, a[2 * j])\n"
    "end\n"
    "local kinds = tonumber(a[hdr]) or 7\n"
    "local users = kinds % 2 == 1\n"
    "local torrents = math.floor(kinds / 2) % 2 == 1\n"
    "local ihs = {}\n"
    "local function ih(tid)\n"
    "  if ihs[tid] == nil then\n"
    "    local m = call('ZRANGEBYSCORE', 'mika:torrents', tid, tid, 'LIMIT', 0, 1) or {}\n"
    "    ihs[tid] = m[1] or false\n"
    "  end\n"
    "  return ihs[tid]\n"
    "end\n"
    "local function hmember(tid)\n"
    "  return string.format('%08x', 4294967295 - (tonumber(tid) or 0))\n"
    "end\n"
    "local UF = {'uploaded', 'downloaded', 'raw_uploaded', 'raw_downloaded', 'seed_time',\n"
    "            'leech_time', 'bonus', 'announces'}\n"
    "i = hdr + 5\n"
    "for _ = 1, nu do\n"
    "  local k = 'mika:user:' .. a[i]\n"
    "  if call('EXISTS', k) == 1 then\n"
    "    for j = 1, 8 do add(k, UF[j], a[i + j]) end\n"
    "  end\n"
    "  i = i + 9\n"
    "end\n"
    "for _ = 1, nh do\n"
    "  local uid, tid = a[i], a[i + 1]\n"
    "  local k = 'mika:history:' .. uid .. ':' .. tid\n"
    "  for j = 1, 6 do add(k, UF[j], a[i + 1 + j]) end\n"
    "  add(k, 'announces', a[i + 8])\n"
    "  local cur = call('HMGET', k, 'first_announce', 'last_announce') or {}\n"
    "  local first, last = a[i + 9], a[i + 10]\n"
    "  local f0, l0 = tonumber(cur[1] or ''), tonumber(cur[2] or '')\n"
    "  if f0 and f0 <= tonumber(first) then first = cur[1] end\n"
    "  if l0 and l0 >= tonumber(last) then last = cur[2] end\n"
    "  call('HSET', k, 'first_announce', first, 'last_announce', last)\n"
    "  call('ZADD', 'mika:user:' .. uid .. ':history', last, hmember(tid))\n"
    "  i = i + 11\n"
    "end\n"
    "for _ = 1, nt do\n"
    "  local t = ih(a[i])\n"
    "  if t then add('mika:torrent:' .. t, 'transferred', a[i + 1]) end\n"
    "  i = i + 2\n"
    "end\n"
    "for _ = 1, ne do\n"
    "  local t = a[i]\n"
    "  if t == 'S' then\n"
    "    local uid, tid, at = a[i + 1], a[i + 2], a[i + 3]\n"
    "    if call('HSETNX', 'mika:user:' .. uid .. ':snatches', tid, at) == 1 then\n"
    "      call('ZADD', 'mika:snatches', 0,\n"
    "           string.format('%010d:%010d', tonumber(tid) or 0, tonumber(uid) or 0))\n"
    "      local h = torrents and ih(tid)\n"
    "      if h then add('mika:torrent:' .. h, 'snatches', '1') end\n"
    "    end\n"
    "    if users then\n"
    "      local k = 'mika:history:' .. uid .. ':' .. tid\n"
    "      call('HSETNX', k, 'completed_at', at)\n"
    "      call('HSETNX', k, 'first_announce', at)\n"
    "      if call('HSETNX', k, 'last_announce', at) == 1 then\n"
    "        call('ZADD', 'mika:user:' .. uid .. ':history', at, hmember(tid))\n"
    "      end\n"
    "    end\n"
    "  elseif t == 'X' then\n"
    "    local n = call('INCR', 'mika:seq:suspicious') or 0\n"
    "    call('ZADD', 'mika:user:' .. a[i + 1] .. ':suspicious', a[i + 3],\n"
    "         string.format('%016x', n) .. ':' .. a[i + 2] .. ':' .. a[i + 4] .. ':' .. a[i + 5])\n"
    "  elseif t == 'P' then\n"
    "    local k = 'mika:peer:' .. a[i + 1]\n"
    "    local v = tonumber(call('HGET', k, 'version') or '')\n"
    "    if not v or tonumber(a[i + 10]) > v then\n"
    "      call('HSET', k, 'family', a[i + 2], 'ip', a[i + 3], 'port', a[i + 4],\n"
    "           'uploaded', a[i + 5], 'downloaded', a[i + 6], 'seeder', a[i + 7],\n"
    "           'partial', a[i + 8], 'last_seen', a[i + 9], 'version', a[i + 10],\n"
    "           'gone', a[i + 11], 'node', a[i + 12])\n"
    "      call('ZADD', 'mika:peers', a[i + 9], a[i + 1])\n"
    "    end\n"
    "  end\n"
    "  i = i + sizes[t]\n"
    "end\n"
    "return 'OK'\n";

/* Redis integers are signed 64-bit: a sum past it is stored as the maximum. */
static uint64_t redis_clamp(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

/* What is written per announce, not summed: a snatch, a suspicious upload.
 * Answers how many events it added. */
static size_t redis_args_events(struct redis_args *a, uint32_t kinds, const struct acct_delta *d)
{
    size_t n = 0;
    /* Both users' and torrents' backends keep the snatch row: the counter
     * moves only when the row is new (store.h, kinds). */
    if (d->snatch && (kinds & (STORE_KIND_USERS | STORE_KIND_TORRENTS))) {
        redis_arg_str(a, "S");
        redis_arg_u64(a, d->user_id);
        redis_arg_u64(a, d->torrent_id);
        redis_arg_i64(a, d->at);
        n++;
    }
    if (d->suspicious && (kinds & STORE_KIND_USERS)) {
        static const char *const reasons[] = {"", "no_leechers", "too_fast", "unknown"};
        redis_arg_str(a, "X");
        redis_arg_u64(a, d->user_id);
        redis_arg_u64(a, d->torrent_id);
        redis_arg_i64(a, d->at);
        redis_arg_u64(a, redis_clamp(d->suspicious_up));
        redis_arg_str(a, reasons[d->suspicious & 3]);
        n++;
    }
    return n;
}

/* A peer's report, and where it came in the batch. */
struct redis_peer_ref {
    const struct acct_delta *d;
    size_t at;
};

/* By peer (torrent, user, peer_id), then newest version first, then batch
 * order: the first of each peer's run is the report the script would keep
 * if it were given all of them in order (a report replaces the stored one
 * only when its version is higher). */
static int redis_peer_ref_cmp(const void *pa, const void *pb)
{
    const struct redis_peer_ref *a = pa, *b = pb;
    if (a->d->torrent_id != b->d->torrent_id) {
        return a->d->torrent_id < b->d->torrent_id ? -1 : 1;
    }
    if (a->d->user_id != b->d->user_id) {
        return a->d->user_id < b->d->user_id ? -1 : 1;
    }
    int c = memcmp(a->d->peer.peer_id, b->d->peer.peer_id, sizeof(a->d->peer.peer_id));
    if (c != 0) {
        return c;
    }
    if (a->d->peer.version != b->d->peer.version) {
        return a->d->peer.version > b->d->peer.version ? -1 : 1;
    }
    return a->at < b->at ? -1 : a->at > b->at;
}

static bool redis_same_peer(const struct acct_delta *a, const struct acct_delta *b)
{
    return a->torrent_id == b->torrent_id && a->user_id == b->user_id &&
           memcmp(a->peer.peer_id, b->peer.peer_id, sizeof(a->peer.peer_id)) == 0;
}

static void redis_args_peer(struct redis_args *a, const struct acct_delta *d)
{
    const struct peer_row *pr = &d->peer;
    unsigned char key[REDIS_PEER_KEY];
    uint32_t ids[2] = {d->torrent_id, d->user_id};
    for (int j = 0; j < 2; j++) {
        key[4 * j] = (unsigned char)(ids[j] >> 24);
        key[4 * j + 1] = (unsigned char)(ids[j] >> 16);
        key[4 * j + 2] = (unsigned char)(ids[j] >> 8);
        key[4 * j + 3] = (unsigned char)ids[j];
    }
    memcpy(key + 8, pr->peer_id, 20);
    redis_arg_str(a, "P");
    redis_arg(a, key, sizeof(key));
    redis_arg_u64(a, pr->family == 6 ? 6 : 4);
    redis_arg(a, pr->ip, pr->family == 6 ? 16 : 4);
    redis_arg_u64(a, pr->port);
    redis_arg_u64(a, redis_clamp(pr->uploaded));
    redis_arg_u64(a, redis_clamp(pr->downloaded));
    redis_arg_u64(a, pr->seeder);
    redis_arg_u64(a, pr->partial);
    redis_arg_i64(a, pr->last_seen);
    redis_arg_i64(a, pr->version);
    redis_arg_u64(a, pr->gone);
    redis_arg_u64(a, pr->node_id);
}

/* Adds the newest report of each peer among rows[0..n) to a; answers how
 * many. Why: a peer that announced several times in a group would cost
 * the script an HGET, an HSET and a ZADD per report for the same end
 * state. MK_ENOMEM. */
static int redis_args_peers(struct redis_args *a, const struct acct_delta *rows, size_t n,
                            size_t *added)
{
    *added = 0;
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        np += rows[i].has_peer;
    }
    if (np == 0) {
        return 0;
    }
    struct redis_peer_ref *refs = calloc(np, sizeof(*refs));
    if (!refs) {
        return MK_ENOMEM;
    }
    np = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].has_peer) {
            refs[np++] = (struct redis_peer_ref){&rows[i], i};
        }
    }
    qsort(refs, np, sizeof(*refs), redis_peer_ref_cmp);
    for (size_t i = 0; i < np; i++) {
        if (i == 0 || !redis_same_peer(refs[i - 1].d, refs[i].d)) {
            redis_args_peer(a, refs[i].d);
            (*added)++;
        }
    }
    free(refs);
    return 0;
}

/* Applies rows with the segments ids[0..nids) (none: a plain apply) in one
 * script. */
static int redis_apply_batch(struct redis_store *s, const struct store_segment_id *ids,
                             size_t nids, const struct acct_delta *rows, size_t n,
                             struct mk_errbuf *eb)
{
    uint32_t kinds = nids && ids[0].kinds ? ids[0].kinds : STORE_KIND_ALL;
    struct store_sums m;
    if (sums_build(&m, rows, n) < 0) {
        return mk_fail(eb, MK_ENOMEM, "redis: out of memory summing %zu deltas", n);
    }
    bool users = kinds & STORE_KIND_USERS, torrents = kinds & STORE_KIND_TORRENTS;
    size_t nusers = users ? m.nusers : 0, nhistory = users ? m.nhistory : 0;
    size_t ntorrents = torrents ? m.ntorrents : 0;
    /* The events go first into their own list: their count is a header. */
    struct redis_args ev, a;
    redis_args_init(&ev);
    redis_args_init(&a);
    size_t nevents = 0;
    for (size_t i = 0; i < n; i++) {
        nevents += redis_args_events(&ev, kinds, &rows[i]);
    }
    size_t npeers = 0;
    if ((kinds & STORE_KIND_PEERS) && redis_args_peers(&ev, rows, n, &npeers) < 0) {
        ev.oom = true;
    }
    nevents += npeers;
    redis_arg_u64(&a, nids);
    for (size_t i = 0; i < nids; i++) {
        char field[80];
        snprintf(field, sizeof(field), "%" PRIu64 ":%" PRIu32 ":%" PRIu64, ids[i].boot,
                 ids[i].writer, ids[i].seq);
        redis_arg_str(&a, field);
        redis_arg_u64(&a, ids[i].records ? ids[i].records : n);
    }
    redis_arg_u64(&a, kinds);
    redis_arg_u64(&a, nusers);
    redis_arg_u64(&a, nhistory);
    redis_arg_u64(&a, ntorrents);
    redis_arg_u64(&a, nevents);
    for (size_t i = 0; i < nusers; i++) {
        redis_arg_u64(&a, m.users[i].id);
        for (int j = 0; j < SUM_USER_FIELDS; j++) {
            redis_arg_u64(&a, redis_clamp(m.users[i].v[j]));
        }
    }
    for (size_t i = 0; i < nhistory; i++) {
        const struct sum_history *h = &m.history[i];
        redis_arg_u64(&a, h->user_id);
        redis_arg_u64(&a, h->torrent_id);
        for (int j = 0; j < SUM_HISTORY_FIELDS; j++) {
            redis_arg_u64(&a, redis_clamp(h->v[j]));
        }
        redis_arg_i64(&a, h->first);
        redis_arg_i64(&a, h->last);
    }
    for (size_t i = 0; i < ntorrents; i++) {
        redis_arg_u64(&a, m.torrents[i].id);
        redis_arg_u64(&a, redis_clamp(m.torrents[i].n));
    }
    for (size_t i = 0; i < ev.n; i++) {
        redis_arg(&a, ev.v[i], ev.len[i]);
    }
    a.oom = a.oom || ev.oom;
    sums_free(&m);
    redis_args_fini(&ev);
    int err = redis_eval(s, REDIS_APPLY, &a, NULL, 0, eb);
    redis_args_fini(&a);
    if (err == MK_EEXIST && nids == 1) {
        return mk_fail(eb, MK_EEXIST,
                       "redis: segment %" PRIu64 "/%" PRIu32 "/%" PRIu64 " was applied before",
                       ids[0].boot, ids[0].writer, ids[0].seq);
    }
    if (err == MK_EEXIST) {
        return mk_fail(eb, MK_EEXIST, "redis: a segment of %zu (from %" PRIu64 "/%" PRIu32
                       "/%" PRIu64 ") was applied before; none of them applied now",
                       nids, ids[0].boot, ids[0].writer, ids[0].seq);
    }
    return err;
}

int redis_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return redis_apply_batch(ctx, NULL, 0, rows, n, eb);
}

int redis_apply_segment(void *ctx, const struct store_segment_id *id,
                        const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    return redis_apply_batch(ctx, id, 1, rows, n, eb);
}

int redis_apply_segments(void *ctx, const struct store_segment_id *ids, size_t nids,
                         const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    if (nids == 0) {
        return mk_fail(eb, MK_EINVAL, "redis: apply_segments: no segment");
    }
    return redis_apply_batch(ctx, ids, nids, rows, n, eb);
}

/* Deletes one page of peers last seen before ARGV[1]; answers how many. */
static const char REDIS_PRUNE[] =
    "local m = redis.call('ZRANGEBYSCORE', 'mika:peers', '-inf', '(' .. ARGV[1],\n"
    "                     'LIMIT', 0, tonumber(ARGV[2]))\n"
    "for _, k in ipairs(m) do\n"
    "  redis.call('DEL', 'mika:peer:' .. k)\n"
    "  redis.call('ZREM', 'mika:peers', k)\n"
    "end\n"
    "return 'OK ' .. #m\n";

int redis_apply_prune_peers(void *ctx, int64_t seen_before, struct mk_errbuf *eb)
{
    /* A page per script: the server is never held for the whole set. */
    for (;;) {
        struct redis_args a;
        redis_args_init(&a);
        redis_arg_i64(&a, seen_before);
        redis_arg_i64(&a, REDIS_PAGE);
        char done[24] = "";
        int err = redis_eval(ctx, REDIS_PRUNE, &a, done, sizeof(done), eb);
        redis_args_fini(&a);
        if (err < 0 || strtol(done, NULL, 10) < REDIS_PAGE) {
            return err;
        }
    }
}

/* Segment ids recorded before ARGV[1] (mika:journal_applied_at, the
 * server's clock), of node ARGV[2] (the top 16 bits of the boot id; 0: every
 * node), a page of ARGV[4] from offset ARGV[3] of those recorded before: the
 * ids of other nodes are passed over, so the caller moves the offset by what
 * it answers ("OK <looked at> <forgotten>"). The boot id is a decimal 64-bit
 * number, past a double's 53 bits: its node is found by long division. */
static const char REDIS_PRUNE_APPLIED[] =
    "local node = tonumber(ARGV[2])\n"
    "local function node_of(f)\n"
    "  local b = string.match(f, '^(%d+):')\n"
    "  if not b then return -1 end\n"
    "  local q, r = 0, 0\n"
    "  for c in string.gmatch(b, '%d') do\n"
    "    r = r * 10 + tonumber(c)\n"
    "    local d = math.floor(r / 281474976710656)\n"
    "    q, r = q * 10 + d, r - d * 281474976710656\n"
    "  end\n"
    "  return q\n"
    "end\n"
    "local m = redis.call('ZRANGEBYSCORE', 'mika:journal_applied_at', '-inf', '(' .. ARGV[1],\n"
    "                     'LIMIT', tonumber(ARGV[3]), tonumber(ARGV[4]))\n"
    "local gone = 0\n"
    "for _, f in ipairs(m) do\n"
    "  if node == 0 or node_of(f) == node then\n"
    "    redis.call('HDEL', 'mika:journal_applied', f)\n"
    "    redis.call('ZREM', 'mika:journal_applied_at', f)\n"
    "    gone = gone + 1\n"
    "  end\n"
    "end\n"
    "return 'OK ' .. #m .. ' ' .. gone\n";

int redis_apply_prune_applied(void *ctx, int64_t applied_before, uint16_t node,
                              struct mk_errbuf *eb)
{
    long long offset = 0;
    for (;;) {
        struct redis_args a;
        redis_args_init(&a);
        redis_arg_i64(&a, applied_before);
        redis_arg_i64(&a, node);
        redis_arg_i64(&a, offset);
        redis_arg_i64(&a, REDIS_PAGE);
        char done[48] = "";
        int err = redis_eval(ctx, REDIS_PRUNE_APPLIED, &a, done, sizeof(done), eb);
        redis_args_fini(&a);
        char *end;
        long long seen = strtoll(done, &end, 10), gone = strtoll(end, NULL, 10);
        if (err < 0 || seen < REDIS_PAGE) {
            return err;
        }
        offset += seen - gone;
    }
}
