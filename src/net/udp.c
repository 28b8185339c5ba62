/* net/udp.c: the UDP tracker port of one worker.
 *
 * Owns: socket set-up, the batch loop (read up to UDP_BATCH datagrams,
 * answer each into its own slot, commit the journal, send the answers),
 * connection ids, and the miss path's hand-off to the resolver.
 * Not here: what an answer says (tracker_udp.c), packet bytes (proto/udp.c).
 */
#include "net/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/guard.h"
#include "net/sock.h"
#include "proto/udp.h"
#include "util/log.h"
#include "util/siphash.h"

#define UDP_BATCH 32      /* datagrams per recvmmsg/sendmmsg */
#define UDP_ROUNDS 8      /* batches per readiness event, so one socket can't starve the rest */
/* Larger than any request we answer (a full scrape is 1496 bytes); a bigger
 * datagram arrives truncated (MSG_TRUNC) and is dropped. */
#define UDP_IN_MAX 2048
/* Addresses that announced with a known passkey, for scrape: BEP 15's
 * scrape carries no passkey, and a private tracker tells nothing about its
 * torrents to strangers. A slot holds a 32-bit tag of the address and when
 * it last announced; a newer address may evict an older one sharing its
 * slot (that client's scrapes are refused until its next announce). */
#define UDP_SEEN_SLOTS 65536u

struct udp_port {
    const struct tracker *t;
    struct tracker_local *local;
    struct journal_writer *journal;
    struct resolver_inbox *inbox;
    struct guard *guard;        /* the worker's per-address limits; NULL: none */
    struct loop *loop;
    int fds[2];
    int nfds;
    size_t out_cap;             /* one answer's room: tracker_udp_max_answer */
    uint8_t *in;                /* UDP_BATCH slots of UDP_IN_MAX */
    uint8_t *out;               /* UDP_BATCH slots of out_cap */
    struct sockaddr_storage from[UDP_BATCH];
    socklen_t fromlen[UDP_BATCH];
    size_t inlen[UDP_BATCH];
    bool truncated[UDP_BATCH];
    size_t outlen[UDP_BATCH];
    struct udp_keys {           /* the window keys of the last window seen */
        uint32_t window;        /* keys[0]'s; keys[1] is window - 1's */
        bool valid;
        uint8_t keys[2][16];
    } keys;
    struct udp_seen {
        uint32_t tag;
        uint32_t at;            /* tracker_now(); 0: empty */
    } seen[UDP_SEEN_SLOTS];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connection ids ----------------------------------------------------- */

/* The window's key: the secret rotated by hashing the window number in, so
 * an id from one window says nothing about another's. */
static void window_key(const struct tracker *t, uint32_t window, uint8_t key[16])
{
    uint8_t in[5];
    memcpy(in, &window, 4);
    in[4] = 0;
    uint64_t a = siphash24(in, sizeof(in), t->udp_key);
    in[4] = 1;
    uint64_t b = siphash24(in, sizeof(in), t->udp_key);
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
}

/* The address only, not the port, as opentracker does: libtorrent keeps one
 * id per tracker for the whole process, whatever socket asks next, and a
 * spoofer still needs to receive at the address to learn its id. */
static uint64_t id_with_key(const uint8_t key[16], const struct tracker_addr *addr)
{
    uint8_t in[17];
    in[0] = addr->family == AF_INET6 ? 6 : 4;
    memcpy(in + 1, addr->ip, 16);
    return siphash24(in, sizeof(in), key);
}

uint64_t udp_connection_id(const struct tracker *t, uint32_t window,
                           const struct tracker_addr *addr)
{
    uint8_t key[16];
    window_key(t, window, key);
    return id_with_key(key, addr);
}

static uint32_t current_window(const struct tracker *t)
{
    return tracker_now(t) / t->cfg->udp_window;
}

/* The keys of window w and w - 1, made once per window instead of twice
 * per packet (each is two SipHash runs). */
static const struct udp_keys *window_keys(struct udp_port *u, uint32_t w)
{
    struct udp_keys *k = &u->keys;
    if (k->valid && k->window == w) {
        return k;
    }
    if (k->valid && k->window + 1 == w) {
        memcpy(k->keys[1], k->keys[0], 16);
    } else if (w > 0) {
        window_key(u->t, w - 1, k->keys[1]);
    }
    window_key(u->t, w, k->keys[0]);
    k->window = w;
    k->valid = true;
    return k;
}

static uint64_t current_connection_id(struct udp_port *u, const struct tracker_addr *addr)
{
    return id_with_key(window_keys(u, current_window(u->t))->keys[0], addr);
}

static bool connection_id_is_valid(struct udp_port *u, uint64_t id,
                                   const struct tracker_addr *addr)
{
    uint32_t w = current_window(u->t);
    const struct udp_keys *k = window_keys(u, w);
    return id == id_with_key(k->keys[0], addr) || (w > 0 && id == id_with_key(k->keys[1], addr));
}

/* ---- scrape rights ------------------------------------------------------ */

static struct udp_seen *seen_slot(struct udp_port *u, const struct tracker_addr *addr,
                                  uint32_t *tag)
{
    uint8_t in[18];
    in[0] = 's'; /* another input domain than connection ids' */
    in[1] = addr->family == AF_INET6 ? 6 : 4;
    memcpy(in + 2, addr->ip, 16);
    uint64_t h = siphash24(in, sizeof(in), u->t->udp_key);
    *tag = (uint32_t)(h >> 32);
    return &u->seen[h & (UDP_SEEN_SLOTS - 1)];
}

static void seen_note(struct udp_port *u, const struct tracker_addr *addr)
{
    uint32_t tag;
    struct udp_seen *slot = seen_slot(u, addr, &tag);
    slot->tag = tag;
    slot->at = tracker_now(u->t);
}

/* True if addr announced with a known passkey within a peer's lifetime. */
static bool seen_recently(struct udp_port *u, const struct tracker_addr *addr)
{
    uint32_t tag;
    const struct udp_seen *slot = seen_slot(u, addr, &tag);
    uint64_t ttl = (uint64_t)atomic_load_explicit(&u->t->live.interval, memory_order_relaxed) *
                   u->t->cfg->expiry_factor;
    return slot->at != 0 && slot->tag == tag && tracker_now(u->t) - slot->at <= ttl;
}

/* ---- answering ---------------------------------------------------------- */

static bool source_addr(const struct sockaddr_storage *ss, struct tracker_addr *addr)
{
    memset(addr, 0, sizeof(*addr));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        addr->family = AF_INET;
        memcpy(addr->ip, &sin->sin_addr, 4);
        return true;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        addr->family = AF_INET6;
        memcpy(addr->ip, &sin6->sin6_addr, 16);
        return true;
    }
    return false;
}

/* An announce through the miss path: a key not in memory goes to the
 * resolver and this datagram is told to try again later. */
static void answer_announce(struct udp_port *u, const struct udp_announce *a, uint32_t tid,
                            const struct tracker_addr *src, struct bencode *b)
{
    struct tracker_local *l = u->local;
    for (unsigned k = 0; k < MISS_KINDS; k++) {
        l->lookup[k] = TRACKER_LOOKUP_NONE;
    }
    struct mk_str url = {a->url, a->url_len};
    for (unsigned tries = 0; tries <= MISS_KINDS; tries++) {
        b->len = 0;
        b->overflow = false;
        if (tracker_udp_announce(u->t, l, url, &a->req, tid, src, b) != TRACKER_PARKED) {
            break;
        }
        int rc = MK_EUNAVAIL;
        struct resolver_ticket *ticket;
        if (u->inbox) {
            rc = resolver_submit(u->t->resolver, u->inbox, &l->miss, NULL, &ticket);
        }
        /* Submitted: the ticket comes back to the worker's inbox, which frees
         * it (no cookie); the key is then in memory for the client's retry. */
        l->lookup[l->miss.kind] = rc == MK_OK ? MK_EUNAVAIL : rc;
    }
    for (unsigned k = 0; k < MISS_KINDS; k++) {
        l->lookup[k] = TRACKER_LOOKUP_NONE;
    }
}

/* As conn.c says it: one address guessing passkeys is refused whatever
 * passkey it sends, so a guess that hits is not told so. */
static const char passkey_refusal[] =
    "too many unknown passkeys from this address, try again later";

static bool is_unknown_passkey(const uint8_t *out, size_t len)
{
    static const char text[] = "unknown passkey";
    return len == 8 + sizeof(text) - 1 && out[3] == UDP_ERROR &&
           memcmp(out + 8, text, sizeof(text) - 1) == 0;
}

/* An announce behind the passkey-guessing guard (http's limit, shared with
 * the worker's HTTP side: the connection id proved the address). */
static size_t guarded_announce(struct udp_port *u, const struct udp_announce *a, uint32_t tid,
                               const struct tracker_addr *src, struct bencode *b)
{
    struct tracker_counters *c = u->local->counters;
    uint64_t key = 0;
    uint32_t now_s = (uint32_t)(now_ms() / 1000);
    if (u->guard) {
        key = guard_key(u->guard, src->family, src->ip);
        if (guard_passkey_refused(u->guard, key, now_s)) {
            guard_passkey_refusal(u->guard);
            if (c) {
                atomic_fetch_add_explicit(&c->guess_refused, 1, memory_order_relaxed);
            }
            return udp_put_error(b->p, b->cap, tid, passkey_refusal);
        }
    }
    answer_announce(u, a, tid, src, b);
    if (bencode_ok(b) && b->len >= UDP_ANNOUNCE_HEAD && b->p[3] == UDP_ANNOUNCE) {
        seen_note(u, src);
    }
    if (u->guard && bencode_ok(b) && is_unknown_passkey(b->p, b->len) &&
        guard_passkey_miss(u->guard, key, now_s) && c) {
        atomic_fetch_add_explicit(&c->guess_blocked, 1, memory_order_relaxed);
    }
    return bencode_ok(b) ? b->len : 0;
}

/* The answer to one datagram in out (room u->out_cap); 0: no answer. */
static size_t answer(struct udp_port *u, const uint8_t *p, size_t len,
                     const struct sockaddr_storage *from, uint8_t *out)
{
    struct udp_head h;
    struct tracker_addr src;
    if (udp_parse_head(p, len, &h) != MK_OK || !source_addr(from, &src)) {
        return 0;
    }
    const struct tracker *t = u->t;
    if (h.action == UDP_CONNECT) {
        if (h.connection_id != UDP_PROTOCOL_ID) {
            return 0; /* BEP 15: not a tracker request at all */
        }
        return udp_put_connect(out, u->out_cap, h.transaction_id,
                               current_connection_id(u, &src));
    }
    /* Expired or forged: silence, so a spoofed source gets nothing. */
    if (!connection_id_is_valid(u, h.connection_id, &src)) {
        return 0;
    }
    struct bencode b;
    bencode_init(&b, out, u->out_cap);
    struct mk_errbuf eb = {{0}};
    if (h.action == UDP_ANNOUNCE) {
        struct udp_announce a;
        if (udp_parse_announce(p, len, &a, &eb) != MK_OK) {
            return udp_put_error(out, u->out_cap, h.transaction_id, eb.msg);
        }
        return guarded_announce(u, &a, h.transaction_id, &src, &b);
    } else if (h.action == UDP_SCRAPE) {
        const uint8_t *hashes;
        size_t n;
        /* As over HTTP, nothing is told without a known passkey: here, an
         * announce that carried one. */
        if (!seen_recently(u, &src)) {
            return udp_put_error(out, u->out_cap, h.transaction_id, "unknown passkey");
        }
        if (udp_parse_scrape(p, len, t->cfg->scrape_max_hashes, &hashes, &n, &eb) != MK_OK) {
            return udp_put_error(out, u->out_cap, h.transaction_id, eb.msg);
        }
        tracker_udp_scrape(t, u->local, hashes, n, h.transaction_id, &b);
    } else {
        return udp_put_error(out, u->out_cap, h.transaction_id, "action: unknown");
    }
    if (!bencode_ok(&b)) {
        mk_log(MK_LOG_ERROR, "udp", "an answer outgrew its %zu bytes", u->out_cap);
        return 0;
    }
    return b.len;
}

/* ---- batches ------------------------------------------------------------ */

#ifdef __linux__
/* Reads up to UDP_BATCH datagrams in one call; returns how many (0: none). */
static int recv_batch(struct udp_port *u, int fd)
{
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < UDP_BATCH; i++) {
        iov[i] = (struct iovec){u->in + (size_t)i * UDP_IN_MAX, UDP_IN_MAX};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &u->from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(u->from[i]);
    }
    int n = recvmmsg(fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
    for (int i = 0; i < n; i++) {
        u->inlen[i] = msgs[i].msg_len;
        u->fromlen[i] = msgs[i].msg_hdr.msg_namelen;
        u->truncated[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }
    return n > 0 ? n : 0;
}

/* Sends the non-empty answers of slots 0..n in as few calls as it takes. */
static void send_batch(struct udp_port *u, int fd, int n)
{
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (u->outlen[i] == 0) {
            continue;
        }
        iov[m] = (struct iovec){u->out + (size_t)i * u->out_cap, u->outlen[i]};
        memset(&msgs[m], 0, sizeof(msgs[m]));
        msgs[m].msg_hdr.msg_iov = &iov[m];
        msgs[m].msg_hdr.msg_iovlen = 1;
        msgs[m].msg_hdr.msg_name = &u->from[i];
        msgs[m].msg_hdr.msg_namelen = u->fromlen[i];
        m++;
    }
    int sent = 0;
    while (sent < m) {
        int r = sendmmsg(fd, msgs + sent, (unsigned)(m - sent), MSG_DONTWAIT);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            /* A full socket buffer or an unreachable client: the datagram
             * is lost, as UDP allows; the client asks again. */
            sent++;
            continue;
        }
        sent += r;
    }
}
#else
static int recv_batch(struct udp_port *u, int fd)
{
    int n = 0;
    while (n < UDP_BATCH) {
        struct iovec iov = {u->in + (size_t)n * UDP_IN_MAX, UDP_IN_MAX};
        struct msghdr msg = {.msg_name = &u->from[n], .msg_namelen = sizeof(u->from[n]),
                             .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t r = recvmsg(fd, &msg, MSG_DONTWAIT);
        if (r < 0) {
            break;
        }
        u->inlen[n] = (size_t)r;
        u->fromlen[n] = msg.msg_namelen;
        u->truncated[n] = (msg.msg_flags & MSG_TRUNC) != 0;
        n++;
    }
    return n;
}

static void send_batch(struct udp_port *u, int fd, int n)
{
    for (int i = 0; i < n; i++) {
        if (u->outlen[i] > 0) {
            sendto(fd, u->out + (size_t)i * u->out_cap, u->outlen[i], MSG_DONTWAIT,
                   (struct sockaddr *)&u->from[i], u->fromlen[i]);
        }
    }
}
#endif /* __linux__ */

static void on_readable(struct loop *l, int fd, int mask, void *arg)
{
    struct udp_port *u = arg;
    for (int round = 0; round < UDP_ROUNDS; round++) {
        int n = recv_batch(u, fd);
        if (n == 0) {
            return;
        }
        for (int i = 0; i < n; i++) {
            uint8_t *out = u->out + (size_t)i * u->out_cap;
            u->outlen[i] = u->truncated[i] ? 0
                                           : answer(u, u->in + (size_t)i * UDP_IN_MAX,
                                                    u->inlen[i], &u->from[i], out);
        }
        /* The books first: nothing answered here may be missing from them. */
        if (u->journal && journal_commit(u->journal, now_ms()) != MK_OK) {
            mk_log(MK_LOG_WARN, "udp", "journal write failed: %d answers dropped", n);
            return;
        }
        send_batch(u, fd, n);
        if (n < UDP_BATCH) {
            return;
        }
    }
}

/* ---- set-up ------------------------------------------------------------- */

int udp_port_new(struct udp_port **out, const struct tracker *t, struct tracker_local *local,
                 struct journal_writer *journal, struct resolver_inbox *inbox,
                 struct guard *guard, struct loop *loop, struct mk_errbuf *eb)
{
    const struct mk_config *cfg = t->cfg;
    *out = NULL;
    bool v4 = cfg->ipv4 && cfg->udp_ipv4, v6 = cfg->ipv6 && cfg->udp_ipv6;
    if (!v4 && !v6) {
        return MK_OK;
    }
    struct udp_port *u = calloc(1, sizeof(*u));
    if (!u) {
        return mk_fail(eb, MK_ENOMEM, "udp: out of memory");
    }
    u->t = t;
    u->local = local;
    u->journal = journal;
    u->inbox = t->resolver ? inbox : NULL;
    u->guard = guard;
    u->loop = loop;
    u->fds[0] = u->fds[1] = -1;
    u->out_cap = tracker_udp_max_answer(cfg);
    u->in = malloc((size_t)UDP_BATCH * UDP_IN_MAX);
    u->out = calloc(UDP_BATCH, u->out_cap);
    int rc;
    if (!u->in || !u->out) {
        rc = mk_fail(eb, MK_ENOMEM, "udp: out of memory");
        goto out_free;
    }
    uint16_t port = cfg->udp_port ? cfg->udp_port : cfg->port;
    if (v4) {
        rc = sock_bind_port(AF_INET, SOCK_DGRAM, cfg->bind4, port, "server.bind4", eb);
        if (rc < 0) {
            goto out_free;
        }
        u->fds[u->nfds++] = rc;
    }
    if (v6) {
        rc = sock_bind_port(AF_INET6, SOCK_DGRAM, cfg->bind6, port, "server.bind6", eb);
        if (rc < 0) {
            goto out_free;
        }
        u->fds[u->nfds++] = rc;
    }
    for (int i = 0; i < u->nfds; i++) {
        rc = loop_add(loop, u->fds[i], LOOP_READ, on_readable, u);
        if (rc != MK_OK) {
            mk_fail(eb, rc, "udp: cannot watch the socket");
            goto out_free;
        }
    }
    *out = u;
    return MK_OK;

out_free:
    udp_port_free(u);
    return rc;
}

void udp_port_free(struct udp_port *u)
{
    if (!u) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (u->fds[i] >= 0) {
            loop_forget(u->loop, u->fds[i]);
            close(u->fds[i]);
        }
    }
    free(u->in);
    free(u->out);
    free(u);
}
