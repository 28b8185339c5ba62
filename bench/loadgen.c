/* bench/loadgen.c: mika's load generator, one epoll loop on one thread.
 *
 * Owns: the command line, connections (a new one per request, or keep-alive
 * with optional pipelining), building announce and scrape requests from the
 * population (model.c), reading answers (status, Content-Length, bencoded
 * failures, peers returned), and the timed window: its own CPU (getrusage),
 * the server's CPU (/proc/PID/stat and the threads' schedstat) and the server
 * core's busy time (/proc/stat), sampled at the window's two edges, printed
 * as one JSON line.
 * With --udp the same population announces (or scrapes) over BEP 15: each
 * "connection" is a UDP socket with one request in flight, which gets a
 * connection id first and a new one every UDP_CID_RENEW_NS; a request
 * unanswered after UDP_TIMEOUT_NS is counted lost (socket_errors) and the
 * socket moves on. mika's passkey goes in BEP 41's URL data.
 * With --rate N requests are issued at no more than N a second over TCP
 * (a burst of one per connection at most): an operator's announce rate,
 * for what depends on it (the books' write-behind groups), where without it
 * the load is as fast as the server answers.
 * With --ip-param each peer names a stable address of the networks given
 * (BEP 7 ipv4=, the IP field over UDP), so that a tracker honouring it
 * (mika's tracker.allow_ip_param) locates peers all over a GeoIP database.
 * Not here: starting servers, repetitions, tables (bench/run).
 * Invariants: one thread, no allocation per request (connections come from
 * a pool made at start); a connection has at most `pipeline` requests in
 * flight; a request of a peer is built when it is sent, so a peer's counters
 * only grow in the order its announces are sent.
 *
 *   loadgen run    --port P [options]     load, then one JSON line on stdout
 *   loadgen gendb  --db FILE [population] users and torrents into mika's DB
 *   loadgen hashes [population]           the torrents' info_hashes, hex, one a line
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

#define LG_PIPELINE_MAX 64
#define LG_REQ_MAX 4096          /* one request: a 50-hash scrape is about 3.6 kB */
#define LG_IN_CAP (64 * 1024)    /* answers waiting to be parsed on one connection */
#define LG_SCRAPE_MAX 64
#define LG_EVENTS 512
#define LG_HIST_SUB 8            /* latency histogram: 8 buckets per power of two */
#define LG_HIST_N (40 * LG_HIST_SUB)
#define LG_NETS_MAX 256          /* networks of --ip-param */

enum lg_style {
    LG_STYLE_MIKA,               /* /<passkey>/announce */
    LG_STYLE_OPEN,               /* /announce: opentracker has no passkeys */
};

enum lg_kind {
    LG_ANNOUNCE,
    LG_SCRAPE,
};

enum lg_event {
    LG_EV_NONE,
    LG_EV_STARTED,
    LG_EV_STOPPED,
    LG_EV_COMPLETED,
};

struct lg_opts {
    struct in_addr host;
    uint16_t port;
    enum lg_style style;
    enum lg_kind kind;
    uint32_t scrape_hashes;
    uint32_t conns;
    bool keepalive;
    uint32_t pipeline;
    double warmup_s, duration_s;
    uint64_t requests;           /* stop after this many answers (0 = timed) */
    bool preload;                /* announce every peer once, started, in order */
    uint32_t numwant;
    uint32_t stop_permille, complete_permille;
    bool src_bind;               /* new connections come from the peer's own address */
    bool udp;                    /* BEP 15 instead of HTTP */
    uint32_t rate;               /* requests a second at most (TCP); 0: as fast as answered */
    int server_pid;
    int server_cpu;
    struct model_cfg model;
    const char *db;
    /* --ip-param: each peer names a stable address of one of these in ipv4=
     * (the BEP 15 IP field over UDP); none: the connection's address. */
    struct model_net nets[LG_NETS_MAX];
    uint32_t nnets;
};

struct lg_conn {
    int fd;
    bool connected;
    bool closing;                /* the server said Connection: close; no more requests */
    bool out_watch;              /* EPOLLOUT registered */
    uint32_t inflight;
    uint32_t sent_head;
    int64_t sent_ns[LG_PIPELINE_MAX];
    char *in;
    size_t inlen;
    char *out;
    size_t outlen, outpos;
};

/* One UDP socket: one request in flight. */
struct lg_udp {
    int fd;
    uint64_t cid;                /* 0: needs a connect */
    int64_t cid_ns;              /* when cid was given */
    uint32_t tid;
    bool inflight;
    bool connecting;             /* the request in flight is a connect */
    int64_t sent_ns;
};

struct lg_counts {
    uint64_t answered, failures, http_errors, sock_errors, connects, connect_pending;
    uint64_t peers_returned, bytes_in;
    uint64_t hist[LG_HIST_N];
};

struct lg_sample {
    int64_t ns;
    uint64_t self_user_us, self_sys_us;
    uint64_t server_user_ticks, server_sys_ticks;
    uint64_t server_sched_ns;
    uint64_t core_busy, core_total;
};

struct lg {
    struct lg_opts o;
    struct model m;
    uint64_t rng;
    int ep;
    struct lg_conn *conns;
    uint32_t *idle;              /* stack of closed connection slots */
    uint32_t nidle;
    uint32_t open;
    uint32_t preload_next;
    uint64_t issued;
    struct lg_counts c;          /* since the window opened */
    bool in_window, done;
    int64_t start_ns, window_ns, end_ns;
    struct lg_sample s0;
    char failure_sample[160];
    char *reqbuf;
    struct lg_udp *udp;
};

static int64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t lg_rand(struct lg *g)
{
    g->rng += 0x9e3779b97f4a7c15ull;
    return model_mix(g->rng);
}

/* ---- sampling: own CPU, the server's CPU, the server core -------------- */

static void lg_self_us(uint64_t *user, uint64_t *sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec;
    *sys = (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
}

static size_t lg_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

/* utime and stime of the whole process (all threads), in clock ticks. */
static void lg_proc_ticks(int pid, uint64_t *user, uint64_t *sys)
{
    char path[64], buf[1024];
    *user = *sys = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (lg_read_file(path, buf, sizeof(buf)) == 0) {
        return;
    }
    const char *p = strrchr(buf, ')');
    if (!p) {
        return;
    }
    /* After ")": field 3 (state) onwards; utime and stime are fields 14 and 15. */
    uint64_t ut = 0, st = 0;
    int field = 2;
    for (p++; *p && field < 15; p++) {
        if (*p == ' ') {
            field++;
            if (field == 14) {
                ut = strtoull(p + 1, NULL, 10);
            } else if (field == 15) {
                st = strtoull(p + 1, NULL, 10);
            }
        }
    }
    *user = ut;
    *sys = st;
}

/* Run time of every thread, in ns: finer than the tick-based stat figures. */
static uint64_t lg_proc_sched_ns(int pid)
{
    char path[96], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) {
        return 0;
    }
    uint64_t sum = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
        if (lg_read_file(path, buf, sizeof(buf)) > 0) {
            sum += strtoull(buf, NULL, 10);
        }
    }
    closedir(d);
    return sum;
}

static void lg_core_ticks(int cpu, uint64_t *busy, uint64_t *total)
{
    char buf[16384], tag[16];
    *busy = *total = 0;
    if (cpu < 0 || lg_read_file("/proc/stat", buf, sizeof(buf)) == 0) {
        return;
    }
    snprintf(tag, sizeof(tag), "cpu%d ", cpu);
    const char *line = strstr(buf, tag);
    if (!line) {
        return;
    }
    const char *p = line + strlen(tag);
    for (int i = 0; i < 8; i++) {
        char *end;
        uint64_t v = strtoull(p, &end, 10);
        *total += v;
        if (i != 3 && i != 4) { /* idle, iowait */
            *busy += v;
        }
        p = end;
    }
}

static void lg_sample(const struct lg *g, struct lg_sample *s)
{
    s->ns = lg_now_ns();
    lg_self_us(&s->self_user_us, &s->self_sys_us);
    s->server_user_ticks = s->server_sys_ticks = 0;
    if (g->o.server_pid > 0) {
        lg_proc_ticks(g->o.server_pid, &s->server_user_ticks, &s->server_sys_ticks);
    }
    s->server_sched_ns = g->o.server_pid > 0 ? lg_proc_sched_ns(g->o.server_pid) : 0;
    lg_core_ticks(g->o.server_cpu, &s->core_busy, &s->core_total);
}

/* ---- requests ---------------------------------------------------------- */

static char *lg_put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static char *lg_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}

/* RFC 3986 unreserved bytes stay, the rest is %XX, as clients send them. */
static char *lg_put_pct(char *p, const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return p;
}

static char *lg_put_ipv4(char *p, uint32_t ip)
{
    for (int shift = 24; shift >= 0; shift -= 8) {
        p = lg_put_u64(p, (ip >> shift) & 0xff);
        if (shift) {
            *p++ = '.';
        }
    }
    return p;
}

/* The address peer i names, host order; 0 without --ip-param. */
static uint32_t lg_peer_ip_param(const struct lg *g, uint32_t i)
{
    return g->o.nnets ? model_peer_net_ip(g->o.model.seed, i, g->o.nets, g->o.nnets) : 0;
}

static char *lg_put_path(const struct lg *g, char *p, uint32_t user, const char *what)
{
    if (g->o.style == LG_STYLE_MIKA) {
        char key[MODEL_PASSKEY_LEN + 1];
        model_passkey(g->o.model.seed, user, key);
        *p++ = '/';
        p = lg_put(p, key);
    }
    *p++ = '/';
    return lg_put(p, what);
}

static char *lg_put_head(const struct lg *g, char *p)
{
    p = lg_put(p, " HTTP/1.1\r\nHost: ");
    p = lg_put(p, inet_ntoa(g->o.host));
    p = lg_put(p, "\r\nUser-Agent: qBittorrent/4.6.5\r\nAccept-Encoding: gzip\r\n");
    if (!g->o.keepalive) {
        p = lg_put(p, "Connection: close\r\n");
    }
    return lg_put(p, "\r\n");
}

/* Picks the next peer and moves its session on: the mix of events. */
static uint32_t lg_next_peer(struct lg *g, enum lg_event *ev)
{
    struct model *m = &g->m;
    if (g->o.preload) {
        uint32_t i = g->preload_next++;
        m->peers[i].active = true;
        *ev = LG_EV_STARTED;
        return i;
    }
    uint32_t i = (uint32_t)(lg_rand(g) % m->cfg.peers);
    struct model_peer *p = &m->peers[i];
    uint64_t r = lg_rand(g);
    uint32_t roll = (uint32_t)(r % 1000);
    if (!p->active) {
        /* A new session (another download, or a seeder coming back): counters
         * start again from zero, and it is a seeder as often as at the start,
         * so that completions do not turn a busy small swarm into seeders only. */
        p->active = true;
        p->uploaded = p->downloaded = 0;
        p->seeder = r % 100 < m->cfg.seeders_pct;
        p->left = p->seeder ? 0 : m->torrent_size[p->torrent];
        *ev = LG_EV_STARTED;
    } else if (roll < g->o.stop_permille) {
        p->active = false;
        *ev = LG_EV_STOPPED;
    } else if (!p->seeder && roll < g->o.stop_permille + g->o.complete_permille) {
        p->downloaded += p->left;
        p->left = 0;
        p->seeder = true;
        *ev = LG_EV_COMPLETED;
    } else {
        uint64_t up = (r >> 12) % (16u << 20);
        p->uploaded += up;
        if (!p->seeder) {
            uint64_t down = (r >> 36) % (16u << 20);
            if (down >= p->left) {
                down = p->left - 1;
            }
            p->downloaded += down;
            p->left -= down;
        }
        *ev = LG_EV_NONE;
    }
    return i;
}

static size_t lg_build_announce(struct lg *g, char *buf, uint32_t *peer_out)
{
    static const char *const ev_names[] = {
        [LG_EV_NONE] = NULL,
        [LG_EV_STARTED] = "started",
        [LG_EV_STOPPED] = "stopped",
        [LG_EV_COMPLETED] = "completed",
    };
    enum lg_event ev;
    uint32_t i = lg_next_peer(g, &ev);
    const struct model_peer *p = &g->m.peers[i];
    uint8_t hash[20], pid[20];
    model_info_hash(g->o.model.seed, g->o.model.torrent_base + p->torrent + 1, hash);
    model_peer_id(g->o.model.seed, i, pid);
    char *q = lg_put(buf, "GET ");
    q = lg_put_path(g, q, p->user, "announce?info_hash=");
    q = lg_put_pct(q, hash, 20);
    q = lg_put(q, "&peer_id=");
    q = lg_put_pct(q, pid, 20);
    q = lg_put(q, "&port=");
    q = lg_put_u64(q, model_peer_port(i));
    q = lg_put(q, "&uploaded=");
    q = lg_put_u64(q, p->uploaded);
    q = lg_put(q, "&downloaded=");
    q = lg_put_u64(q, p->downloaded);
    q = lg_put(q, "&left=");
    q = lg_put_u64(q, p->left);
    q = lg_put(q, "&corrupt=0&key=");
    q = lg_put_u64(q, 10000000 + model_mix(i) % 90000000);
    if (g->o.nnets) {
        q = lg_put(q, "&ipv4=");
        q = lg_put_ipv4(q, lg_peer_ip_param(g, i));
    }
    if (ev_names[ev]) {
        q = lg_put(q, "&event=");
        q = lg_put(q, ev_names[ev]);
    }
    q = lg_put(q, "&numwant=");
    q = lg_put_u64(q, g->o.numwant);
    q = lg_put(q, "&compact=1&no_peer_id=1&supportcrypto=1&redundant=0");
    q = lg_put_head(g, q);
    *peer_out = i;
    return (size_t)(q - buf);
}

/* Distinct torrents, each picked with its popularity (the torrent of a random
 * peer); a hash already in the list is skipped. */
static size_t lg_build_scrape(struct lg *g, char *buf)
{
    uint32_t picked[LG_SCRAPE_MAX];
    uint32_t n = 0, want = g->o.scrape_hashes;
    if (want > g->m.cfg.torrents) {
        want = g->m.cfg.torrents;
    }
    for (uint32_t tries = 0; n < want && tries < want * 20; tries++) {
        uint32_t t = g->m.peers[lg_rand(g) % g->m.cfg.peers].torrent;
        if (tries >= want * 10) {
            t = (uint32_t)(lg_rand(g) % g->m.cfg.torrents);
        }
        bool seen = false;
        for (uint32_t k = 0; k < n && !seen; k++) {
            seen = picked[k] == t;
        }
        if (!seen) {
            picked[n++] = t;
        }
    }
    uint32_t user = 1 + (uint32_t)(lg_rand(g) % g->m.cfg.users);
    char *q = lg_put(buf, "GET ");
    q = lg_put_path(g, q, user, "scrape?");
    for (uint32_t k = 0; k < n; k++) {
        uint8_t hash[20];
        model_info_hash(g->o.model.seed, g->o.model.torrent_base + picked[k] + 1, hash);
        q = lg_put(q, k ? "&info_hash=" : "info_hash=");
        q = lg_put_pct(q, hash, 20);
    }
    q = lg_put_head(g, q);
    return (size_t)(q - buf);
}

/* ---- connections ------------------------------------------------------- */

/* --rate: whether the requests issued so far are behind the schedule. Apart
 * from lg_may_issue, which says whether there is work left at all: a
 * connection held back is kept, one with no work left is closed. */
static bool lg_on_schedule(const struct lg *g)
{
    if (g->o.rate == 0) {
        return true;
    }
    double due = (double)(lg_now_ns() - g->start_ns) * 1e-9 * g->o.rate;
    return (double)g->issued < due + 1;
}

static bool lg_may_issue(const struct lg *g)
{
    if (g->done) {
        return false;
    }
    if (g->o.preload) {
        return g->preload_next < g->m.cfg.peers;
    }
    return g->o.requests == 0 || g->issued < g->o.requests;
}

static void lg_conn_close(struct lg *g, struct lg_conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->inflight = 0;
    c->inlen = c->outlen = c->outpos = 0;
    c->connected = c->closing = c->out_watch = false;
    g->open--;
    g->idle[g->nidle++] = (uint32_t)(c - g->conns);
}

static void lg_sock_error(struct lg *g, struct lg_conn *c, const char *what, int err)
{
    if (g->c.sock_errors++ == 0 && !g->failure_sample[0]) {
        snprintf(g->failure_sample, sizeof(g->failure_sample), "socket: %s: %s", what,
                 strerror(err));
    }
    lg_conn_close(g, c);
}

static void lg_watch_out(struct lg *g, struct lg_conn *c, bool on)
{
    if (c->out_watch == on) {
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->out_watch = on;
}

/* Writes what it can; false if the connection was closed. */
static bool lg_flush(struct lg *g, struct lg_conn *c)
{
    while (c->outpos < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outpos, c->outlen - c->outpos, MSG_NOSIGNAL);
        if (n > 0) {
            c->outpos += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->connected) {
                g->c.connect_pending++;
            }
            lg_watch_out(g, c, true);
            return true;
        }
        lg_sock_error(g, c, "send", errno);
        return false;
    }
    c->outpos = c->outlen = 0;
    c->connected = true;
    lg_watch_out(g, c, false);
    return true;
}

/* Appends requests until `pipeline` are in flight (one without keep-alive). */
static bool lg_fill(struct lg *g, struct lg_conn *c, int64_t now)
{
    uint32_t depth = g->o.keepalive ? g->o.pipeline : 1;
    uint32_t peer = 0;
    bool added = false;
    while (c->inflight < depth && !c->closing && lg_may_issue(g) && lg_on_schedule(g) &&
           c->outlen + LG_REQ_MAX <= (size_t)depth * LG_REQ_MAX) {
        size_t n = g->o.kind == LG_ANNOUNCE ? lg_build_announce(g, c->out + c->outlen, &peer)
                                            : lg_build_scrape(g, c->out + c->outlen);
        c->outlen += n;
        c->sent_ns[(c->sent_head + c->inflight) % LG_PIPELINE_MAX] = now;
        c->inflight++;
        g->issued++;
        added = true;
        if (!g->o.keepalive) {
            break;
        }
    }
    (void)peer;
    return added ? lg_flush(g, c) : true;
}

/* False when no socket could be made (the slot goes back to the idle stack). */
static bool lg_conn_open(struct lg *g, struct lg_conn *c, int64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g->c.sock_errors++;
        g->idle[g->nidle++] = (uint32_t)(c - g->conns);
        return false;
    }
    c->fd = fd;
    g->open++;
    g->c.connects++;
    int one = 1;
    if (g->o.keepalive && g->o.pipeline > 1) {
        /* Pipelined requests go out in one write, but a partial write must
         * not wait on Nagle for the rest. One request per write needs nothing. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    /* The request is built first: with --src-bind its peer decides the address. */
    uint32_t peer = 0;
    size_t n = 0;
    if (lg_may_issue(g)) {
        n = g->o.kind == LG_ANNOUNCE ? lg_build_announce(g, c->out, &peer)
                                     : lg_build_scrape(g, c->out);
    }
    if (n == 0) {
        lg_conn_close(g, c);
        return true;
    }
    if (g->o.src_bind && g->o.kind == LG_ANNOUNCE) {
        struct sockaddr_in src = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(model_peer_ip(peer))};
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            lg_sock_error(g, c, "bind", errno);
            return true;
        }
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(g->o.port),
                              .sin_addr = g->o.host};
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
        lg_sock_error(g, c, "connect", errno);
        return true;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    epoll_ctl(g->ep, EPOLL_CTL_ADD, fd, &ev);
    c->outlen = n;
    c->sent_ns[c->sent_head % LG_PIPELINE_MAX] = now;
    c->inflight = 1;
    g->issued++;
    /* On loopback the handshake has usually finished by now: try at once, and
     * wait for EPOLLOUT only if the kernel says not yet. */
    if (lg_flush(g, c) && g->o.keepalive) {
        lg_fill(g, c, now);
    }
    return true;
}

/* ---- answers ----------------------------------------------------------- */

static size_t lg_hist_bucket(uint64_t us)
{
    if (us < LG_HIST_SUB) {
        return (size_t)us;
    }
    int lg2 = 63 - __builtin_clzll(us);
    size_t sub = (size_t)((us >> (lg2 - 3)) & (LG_HIST_SUB - 1));
    size_t b = (size_t)(lg2 - 2) * LG_HIST_SUB + sub;
    return b < LG_HIST_N ? b : LG_HIST_N - 1;
}

static uint64_t lg_hist_value(size_t b)
{
    if (b < LG_HIST_SUB) {
        return b;
    }
    int lg2 = (int)(b / LG_HIST_SUB) + 2;
    return ((uint64_t)(LG_HIST_SUB + b % LG_HIST_SUB)) << (lg2 - 3);
}

static void lg_note_failure(struct lg *g, const char *what, const char *body, size_t len)
{
    if (g->failure_sample[0]) {
        return;
    }
    size_t n = len < 100 ? len : 100;
    int k = snprintf(g->failure_sample, sizeof(g->failure_sample), "%s: ", what);
    for (size_t i = 0; i < n && k + 1 < (int)sizeof(g->failure_sample); i++) {
        char ch = body[i];
        g->failure_sample[k++] = ch >= 32 && ch < 127 && ch != '"' && ch != '\\' ? ch : '.';
    }
    g->failure_sample[k] = '\0';
}

/* Length of the complete answer at buf, 0 if incomplete, -1 if malformed.
 * Without Content-Length the answer ends at the connection's end (eof). */
static long lg_answer(struct lg *g, struct lg_conn *c, const char *buf, size_t len, bool eof)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) {
        return len >= LG_IN_CAP ? -1 : 0;
    }
    size_t head = (size_t)(end - buf) + 4;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0) {
        return -1;
    }
    int status = atoi(buf + 9);
    long clen = -1;
    for (const char *l = memchr(buf, '\n', head); l && l + 1 < end; l = memchr(l + 1, '\n',
                                                                           (size_t)(end - l - 1))) {
        const char *h = l + 1;
        if (strncasecmp(h, "content-length:", 15) == 0) {
            clen = strtol(h + 15, NULL, 10);
        } else if (strncasecmp(h, "connection:", 11) == 0) {
            const char *v = h + 11;
            while (*v == ' ') {
                v++;
            }
            if (strncasecmp(v, "close", 5) == 0) {
                c->closing = true;
            }
        }
    }
    size_t total;
    if (clen >= 0) {
        total = head + (size_t)clen;
        if (total > len) {
            return total > LG_IN_CAP ? -1 : 0;
        }
    } else if (eof) {
        total = len;
    } else {
        return 0;
    }
    const char *body = buf + head;
    size_t blen = total - head;
    if (status != 200) {
        g->c.http_errors++;
        lg_note_failure(g, "http", buf, head);
    } else if (memmem(body, blen, "14:failure reason", 17)) {
        g->c.failures++;
        lg_note_failure(g, "failure", body, blen);
    } else {
        const char *pp = memmem(body, blen, "5:peers", 7);
        if (pp && pp + 7 < body + blen) {
            g->c.peers_returned += strtoull(pp + 7, NULL, 10) / 6;
        }
    }
    return (long)total;
}

static void lg_answered(struct lg *g, struct lg_conn *c, int64_t now)
{
    int64_t sent = c->sent_ns[c->sent_head % LG_PIPELINE_MAX];
    c->sent_head++;
    c->inflight--;
    g->c.answered++;
    uint64_t us = now > sent ? (uint64_t)(now - sent) / 1000 : 0;
    g->c.hist[lg_hist_bucket(us)]++;
}

/* Parses every complete answer in the input; false if the connection was closed. */
static bool lg_parse(struct lg *g, struct lg_conn *c, bool eof, int64_t now)
{
    size_t pos = 0;
    while (c->inflight > 0 && pos < c->inlen) {
        long n = lg_answer(g, c, c->in + pos, c->inlen - pos, eof);
        if (n < 0) {
            g->c.http_errors++;
            lg_note_failure(g, "malformed", c->in + pos, c->inlen - pos);
            lg_conn_close(g, c);
            return false;
        }
        if (n == 0) {
            break;
        }
        pos += (size_t)n;
        g->c.bytes_in += (uint64_t)n;
        lg_answered(g, c, now);
    }
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
    }
    return true;
}

static void lg_on_readable(struct lg *g, struct lg_conn *c, uint32_t events, int64_t now)
{
    bool hup = (events & (EPOLLRDHUP | EPOLLHUP)) != 0;
    for (;;) {
        size_t room = LG_IN_CAP - c->inlen;
        ssize_t n = read(c->fd, c->in + c->inlen, room);
        if (n > 0) {
            c->inlen += (size_t)n;
            if (!lg_parse(g, c, false, now)) {
                return;
            }
            /* Edge-triggered: a short read drained the socket, and a later
             * byte or FIN raises a new edge. Without keep-alive the server's
             * FIN is expected right behind the answer, so read on to it. */
            if ((size_t)n < room && g->o.keepalive && !hup) {
                break;
            }
            continue;
        }
        if (n == 0) {
            if (c->inflight > 0 && lg_parse(g, c, true, now) && c->inflight > 0) {
                g->c.http_errors++;
                lg_note_failure(g, "closed early", c->in, c->inlen);
            }
            if (c->fd >= 0) {
                lg_conn_close(g, c);
            }
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            lg_sock_error(g, c, "read", errno);
            return;
        }
        break;
    }
    if (g->o.keepalive && c->inflight == 0 && c->closing) {
        return; /* wait for the server's FIN, then reconnect */
    }
    if (g->o.keepalive && c->inflight == 0 && !lg_may_issue(g)) {
        lg_conn_close(g, c);
        return;
    }
    if (g->o.keepalive) {
        lg_fill(g, c, now);
    }
}

static void lg_on_event(struct lg *g, struct lg_conn *c, uint32_t events, int64_t now)
{
    if (events & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        lg_sock_error(g, c, c->connected ? "connection" : "connect", err ? err : EIO);
        return;
    }
    if ((events & EPOLLOUT) && (c->outpos < c->outlen || !c->connected)) {
        if (!lg_flush(g, c)) {
            return;
        }
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
        lg_on_readable(g, c, events, now);
    }
}

/* ---- the window and the report ----------------------------------------- */

static void lg_window_open(struct lg *g, int64_t now)
{
    memset(&g->c, 0, sizeof(g->c));
    lg_sample(g, &g->s0);
    g->in_window = true;
    g->window_ns = now;
}

static uint64_t lg_percentile(const struct lg_counts *c, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)c->answered), seen = 0;
    for (size_t b = 0; b < LG_HIST_N; b++) {
        seen += c->hist[b];
        if (seen >= want && c->hist[b]) {
            return lg_hist_value(b);
        }
    }
    return 0;
}

static void lg_report(struct lg *g)
{
    struct lg_sample s1;
    lg_sample(g, &s1);
    const struct lg_counts *c = &g->c;
    double secs = (double)(s1.ns - g->s0.ns) / 1e9;
    double req = c->answered ? (double)c->answered : 1;
    double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
    double server_user = (double)(s1.server_user_ticks - g->s0.server_user_ticks) * tick_us;
    double server_sys = (double)(s1.server_sys_ticks - g->s0.server_sys_ticks) * tick_us;
    double server_us = server_user + server_sys;
    double sched_us = (double)(s1.server_sched_ns - g->s0.server_sched_ns) / 1e3;
    double core_us = (double)(s1.core_busy - g->s0.core_busy) * tick_us;
    double core_total = (double)(s1.core_total - g->s0.core_total);
    double self_user = (double)(s1.self_user_us - g->s0.self_user_us);
    double self_sys = (double)(s1.self_sys_us - g->s0.self_sys_us);
    double self_us = self_user + self_sys;
    printf("{\"kind\":\"%s\",\"transport\":\"%s\",\"keepalive\":%s,\"pipeline\":%u,\"conns\":%u,\"scrape_hashes\":%u,"
           "\"answered\":%llu,\"seconds\":%.3f,\"rps\":%.1f,"
           "\"failures\":%llu,\"http_errors\":%llu,\"socket_errors\":%llu,"
           "\"connects\":%llu,\"connect_pending\":%llu,"
           "\"peers_per_answer\":%.2f,\"bytes_per_answer\":%.1f,"
           "\"loadgen_cpu_us\":%.0f,\"loadgen_us_per_req\":%.3f,\"loadgen_user_us_per_req\":%.3f,"
           "\"server_cpu_us\":%.0f,\"server_us_per_req\":%.3f,\"server_user_us_per_req\":%.3f,"
           "\"server_sys_us_per_req\":%.3f,\"server_sched_us_per_req\":%.3f,"
           "\"core_busy_us_per_req\":%.3f,\"core_busy_share\":%.3f,"
           "\"lat_p50_us\":%llu,\"lat_p99_us\":%llu,\"failure_sample\":\"%s\"}\n",
           g->o.kind == LG_ANNOUNCE ? "announce" : "scrape", g->o.udp ? "udp" : "http",
           g->o.keepalive ? "true" : "false",
           g->o.keepalive ? g->o.pipeline : 1, g->o.conns,
           g->o.kind == LG_SCRAPE ? g->o.scrape_hashes : 0, (unsigned long long)c->answered,
           secs, (double)c->answered / secs, (unsigned long long)c->failures,
           (unsigned long long)c->http_errors, (unsigned long long)c->sock_errors,
           (unsigned long long)c->connects, (unsigned long long)c->connect_pending,
           (double)c->peers_returned / req, (double)c->bytes_in / req, self_us, self_us / req,
           self_user / req, server_us, server_us / req, server_user / req, server_sys / req,
           sched_us / req, core_us / req,
           core_total > 0 ? (double)(s1.core_busy - g->s0.core_busy) / core_total : 0.0,
           (unsigned long long)lg_percentile(c, 0.5), (unsigned long long)lg_percentile(c, 0.99),
           g->failure_sample);
    fflush(stdout);
}

/* ---- UDP (BEP 15) ------------------------------------------------------- */

#define UDP_TIMEOUT_NS 1000000000LL   /* an answer later than this is lost */
#define UDP_CID_RENEW_NS 50000000000LL /* before the server's 60..120 s lifetime ends */
#define UDP_PROTOCOL_ID 0x41727101980ULL

static uint8_t *lg_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *lg_be64(uint8_t *p, uint64_t v)
{
    return lg_be32(lg_be32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

static uint32_t lg_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The next request of socket u into buf: a connect when it has no id. */
static size_t lg_udp_build(struct lg *g, struct lg_udp *u, uint8_t *buf, int64_t now)
{
    u->tid = (uint32_t)lg_rand(g);
    if (u->cid == 0 || now - u->cid_ns > UDP_CID_RENEW_NS) {
        u->connecting = true;
        uint8_t *q = lg_be64(buf, UDP_PROTOCOL_ID);
        q = lg_be32(q, 0);
        q = lg_be32(q, u->tid);
        return (size_t)(q - buf);
    }
    u->connecting = false;
    uint8_t *q = lg_be64(buf, u->cid);
    if (g->o.kind == LG_SCRAPE) {
        q = lg_be32(q, 2);
        q = lg_be32(q, u->tid);
        uint32_t n = g->o.scrape_hashes < g->m.cfg.torrents ? g->o.scrape_hashes
                                                            : g->m.cfg.torrents;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t t = g->m.peers[lg_rand(g) % g->m.cfg.peers].torrent;
            model_info_hash(g->o.model.seed, g->o.model.torrent_base + t + 1, q);
            q += 20;
        }
        return (size_t)(q - buf);
    }
    static const uint32_t ev_codes[] = {
        [LG_EV_NONE] = 0, [LG_EV_COMPLETED] = 1, [LG_EV_STARTED] = 2, [LG_EV_STOPPED] = 3,
    };
    enum lg_event ev;
    uint32_t i = lg_next_peer(g, &ev);
    const struct model_peer *p = &g->m.peers[i];
    q = lg_be32(q, 1);
    q = lg_be32(q, u->tid);
    model_info_hash(g->o.model.seed, g->o.model.torrent_base + p->torrent + 1, q);
    model_peer_id(g->o.model.seed, i, q + 20);
    q += 40;
    q = lg_be64(q, p->downloaded);
    q = lg_be64(q, p->left);
    q = lg_be64(q, p->uploaded);
    q = lg_be32(q, ev_codes[ev]);
    q = lg_be32(q, lg_peer_ip_param(g, i)); /* 0: the sender's address */
    q = lg_be32(q, (uint32_t)(10000000 + model_mix(i) % 90000000));
    q = lg_be32(q, g->o.numwant);
    uint32_t port = model_peer_port(i);
    *q++ = (uint8_t)(port >> 8);
    *q++ = (uint8_t)port;
    if (g->o.style == LG_STYLE_MIKA) {
        char key[MODEL_PASSKEY_LEN + 1];
        model_passkey(g->o.model.seed, p->user, key);
        char url[MODEL_PASSKEY_LEN + 16];
        int n = snprintf(url, sizeof(url), "/%s/announce", key);
        *q++ = 2; /* BEP 41 URL data, as libtorrent sends it: no end-of-options */
        *q++ = (uint8_t)n;
        memcpy(q, url, (size_t)n);
        q += n;
    }
    return (size_t)(q - buf);
}

static void lg_udp_send(struct lg *g, struct lg_udp *u, int64_t now)
{
    uint8_t buf[LG_REQ_MAX];
    if (!lg_may_issue(g)) {
        return;
    }
    size_t n = lg_udp_build(g, u, buf, now);
    if (send(u->fd, buf, n, 0) != (ssize_t)n) {
        g->c.sock_errors++;
        return;
    }
    u->inflight = true;
    u->sent_ns = now;
    if (!u->connecting) {
        g->issued++;
    }
}

static void lg_udp_readable(struct lg *g, struct lg_udp *u, int64_t now)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(u->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0) {
            return;
        }
        if (n < 8 || !u->inflight || lg_get32(buf + 4) != u->tid) {
            continue; /* late answer to a request counted lost */
        }
        uint32_t action = lg_get32(buf);
        u->inflight = false;
        if (u->connecting) {
            if (action == 0 && n >= 16) {
                u->cid = (uint64_t)lg_get32(buf + 8) << 32 | lg_get32(buf + 12);
                u->cid_ns = now;
                g->c.connects++;
            } else {
                g->c.http_errors++;
                lg_note_failure(g, "connect", (const char *)buf + 8, (size_t)n - 8);
            }
        } else {
            g->c.answered++;
            g->c.bytes_in += (uint64_t)n;
            uint64_t us = (uint64_t)(now - u->sent_ns) / 1000;
            g->c.hist[lg_hist_bucket(us)]++;
            if (action == 3) {
                g->c.failures++;
                lg_note_failure(g, "failure", (const char *)buf + 8, (size_t)n - 8);
            } else if (action == 1 && n >= 20) {
                g->c.peers_returned += (uint64_t)(n - 20) / 6;
            }
        }
        lg_udp_send(g, u, now);
    }
}

static int lg_run_udp(struct lg *g)
{
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    g->udp = calloc(g->o.conns, sizeof(*g->udp));
    if (g->ep < 0 || !g->udp) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(g->o.port),
                              .sin_addr = g->o.host};
    for (uint32_t i = 0; i < g->o.conns; i++) {
        struct lg_udp *u = &g->udp[i];
        u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (u->fd < 0 || connect(u->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
            fprintf(stderr, "loadgen: udp socket: %s\n", strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = u};
        epoll_ctl(g->ep, EPOLL_CTL_ADD, u->fd, &ev);
    }
    struct epoll_event evs[LG_EVENTS];
    g->start_ns = lg_now_ns();
    bool timed = g->o.requests == 0 && !g->o.preload;
    int64_t warm_end = g->start_ns + (int64_t)(g->o.warmup_s * 1e9);
    g->end_ns = warm_end + (int64_t)(g->o.duration_s * 1e9);
    if (!timed || g->o.warmup_s <= 0) {
        lg_window_open(g, g->start_ns);
    }
    int64_t last_answer = g->start_ns;
    while (!g->done) {
        int64_t now = lg_now_ns();
        bool busy = false;
        for (uint32_t i = 0; i < g->o.conns; i++) {
            struct lg_udp *u = &g->udp[i];
            if (u->inflight && now - u->sent_ns > UDP_TIMEOUT_NS) {
                u->inflight = false;
                g->c.sock_errors++; /* lost */
            }
            if (!u->inflight) {
                lg_udp_send(g, u, now);
            }
            busy |= u->inflight;
        }
        if (!busy && !lg_may_issue(g)) {
            break;
        }
        int n = epoll_wait(g->ep, evs, LG_EVENTS, 100);
        now = lg_now_ns();
        for (int i = 0; i < n; i++) {
            lg_udp_readable(g, evs[i].data.ptr, now);
        }
        if (n > 0) {
            last_answer = now;
        } else if (now - last_answer > 10000000000LL) {
            fprintf(stderr, "loadgen: no progress for 10 s\n");
            break;
        }
        if (timed && !g->in_window && now >= warm_end) {
            lg_window_open(g, now);
        }
        if (timed && now >= g->end_ns) {
            g->done = true;
        }
    }
    lg_report(g);
    for (uint32_t i = 0; i < g->o.conns; i++) {
        close(g->udp[i].fd);
    }
    free(g->udp);
    close(g->ep);
    return g->c.answered > 0 ? 0 : 1;
}

static int lg_run(struct lg *g)
{
    g->ep = epoll_create1(EPOLL_CLOEXEC);
    g->conns = calloc(g->o.conns, sizeof(*g->conns));
    g->idle = calloc(g->o.conns, sizeof(*g->idle));
    uint32_t depth = g->o.keepalive ? g->o.pipeline : 1;
    if (g->ep < 0 || !g->conns || !g->idle) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (uint32_t i = 0; i < g->o.conns; i++) {
        g->conns[i].fd = -1;
        g->idle[g->nidle++] = g->o.conns - 1 - i;
        g->conns[i].in = malloc(LG_IN_CAP);
        g->conns[i].out = malloc((size_t)depth * LG_REQ_MAX);
        if (!g->conns[i].in || !g->conns[i].out) {
            fprintf(stderr, "loadgen: out of memory\n");
            return 1;
        }
    }
    struct epoll_event evs[LG_EVENTS];
    g->start_ns = lg_now_ns();
    bool timed = g->o.requests == 0 && !g->o.preload;
    int64_t warm_end = g->start_ns + (int64_t)(g->o.warmup_s * 1e9);
    g->end_ns = warm_end + (int64_t)(g->o.duration_s * 1e9);
    if (!timed || g->o.warmup_s <= 0) {
        lg_window_open(g, g->start_ns);
    }
    int64_t last_event_ns = g->start_ns;
    while (!g->done) {
        int64_t now = lg_now_ns();
        while (g->nidle > 0 && lg_may_issue(g) && lg_on_schedule(g)) {
            if (!lg_conn_open(g, &g->conns[g->idle[--g->nidle]], now)) {
                break;
            }
        }
        if (g->open == 0 && !lg_may_issue(g)) {
            break;
        }
        /* Held back by --rate, a keep-alive connection with nothing in
         * flight has no event to wake it: look again within a millisecond. */
        int n = epoll_wait(g->ep, evs, LG_EVENTS, g->o.rate ? 1 : 100);
        now = lg_now_ns();
        for (int i = 0; i < n; i++) {
            struct lg_conn *c = evs[i].data.ptr;
            if (c->fd >= 0) {
                lg_on_event(g, c, evs[i].events, now);
            }
        }
        for (uint32_t i = 0; g->o.rate && g->o.keepalive && i < g->o.conns; i++) {
            struct lg_conn *c = &g->conns[i];
            if (c->fd >= 0 && c->connected && c->inflight == 0) {
                (void)lg_fill(g, c, now); /* a send error closes it: reopened at the top */
            }
        }
        if (n > 0) {
            last_event_ns = now;
        }
        if (now - last_event_ns > 10000000000) { /* 10 s without any event: the server is gone */
            fprintf(stderr, "loadgen: no progress for 10 s\n");
            break;
        }
        if (timed && !g->in_window && now >= warm_end) {
            lg_window_open(g, now);
        }
        if (timed && now >= g->end_ns) {
            g->done = true;
        }
        if (g->c.sock_errors > 1000 && g->c.answered == 0) {
            fprintf(stderr, "loadgen: %s\n", g->failure_sample);
            break;
        }
    }
    lg_report(g);
    for (uint32_t i = 0; i < g->o.conns; i++) {
        if (g->conns[i].fd >= 0) {
            close(g->conns[i].fd);
        }
        free(g->conns[i].in);
        free(g->conns[i].out);
    }
    free(g->conns);
    free(g->idle);
    close(g->ep);
    return g->c.answered > 0 ? 0 : 1;
}

/* ---- command line ------------------------------------------------------ */

static void lg_usage(void)
{
    fprintf(stderr,
            "usage: loadgen run --port P [options] | gendb --db FILE [population] |"
            " hashes [population]\n"
            "population: --seed N --users N --torrents N --torrent-base N --peers N --zipf S\n"
            "            --seeders-pct N\n"
            "run: --host A --style mika|open --scrape N (else announce) --conns N --keepalive\n"
            "     --pipeline N --warmup S --duration S --requests N --preload --numwant N\n"
            "     --stop-permille N --complete-permille N --src-bind --server-pid P --server-cpu C\n"
            "     --udp (BEP 15 on --port; --conns sockets, one request in flight each)\n"
            "     --ip-param CIDR[,CIDR...] (each peer sends a stable ipv4= in one of them)\n"
            "     --rate N (TCP: at most N requests a second)\n");
}

static bool lg_parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* "10.1.0.0/16,10.2.0.0/16": IPv4 networks of prefix 8..30, at most LG_NETS_MAX. */
static bool lg_parse_nets(const char *list, struct lg_opts *o)
{
    char buf[32];
    o->nnets = 0;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *slash = memchr(p, '/', len);
        if (!slash || (size_t)(slash - p) >= sizeof(buf) || o->nnets == LG_NETS_MAX) {
            return false;
        }
        memcpy(buf, p, (size_t)(slash - p));
        buf[slash - p] = '\0';
        struct in_addr a;
        char *pend;
        unsigned long plen = strtoul(slash + 1, &pend, 10);
        if (inet_pton(AF_INET, buf, &a) != 1 || pend != p + len || plen < 8 || plen > 30) {
            return false;
        }
        uint32_t mask = ~0u << (32 - plen);
        o->nets[o->nnets++] = (struct model_net){.base = ntohl(a.s_addr) & mask,
                                                 .prefix = (uint8_t)plen};
        p += len + (end ? 1 : 0);
    }
    return o->nnets > 0;
}

static int lg_options(int argc, char **argv, struct lg_opts *o)
{
    enum {
        O_HOST = 256, O_PORT, O_STYLE, O_SCRAPE, O_CONNS, O_KEEPALIVE, O_PIPELINE, O_WARMUP,
        O_DURATION, O_REQUESTS, O_PRELOAD, O_NUMWANT, O_STOP, O_COMPLETE, O_SRC_BIND, O_PID,
        O_CPU, O_SEED, O_USERS, O_TORRENTS, O_TBASE, O_PEERS, O_ZIPF, O_SEEDERS, O_DB, O_UDP,
        O_IP_PARAM, O_RATE,
    };
    static const struct option longopts[] = {
        {"host", 1, NULL, O_HOST}, {"port", 1, NULL, O_PORT}, {"style", 1, NULL, O_STYLE},
        {"scrape", 1, NULL, O_SCRAPE}, {"conns", 1, NULL, O_CONNS},
        {"keepalive", 0, NULL, O_KEEPALIVE}, {"pipeline", 1, NULL, O_PIPELINE},
        {"warmup", 1, NULL, O_WARMUP}, {"duration", 1, NULL, O_DURATION},
        {"requests", 1, NULL, O_REQUESTS}, {"preload", 0, NULL, O_PRELOAD},
        {"numwant", 1, NULL, O_NUMWANT}, {"stop-permille", 1, NULL, O_STOP},
        {"complete-permille", 1, NULL, O_COMPLETE}, {"src-bind", 0, NULL, O_SRC_BIND},
        {"server-pid", 1, NULL, O_PID}, {"server-cpu", 1, NULL, O_CPU},
        {"seed", 1, NULL, O_SEED}, {"users", 1, NULL, O_USERS},
        {"torrents", 1, NULL, O_TORRENTS}, {"torrent-base", 1, NULL, O_TBASE},
        {"peers", 1, NULL, O_PEERS}, {"zipf", 1, NULL, O_ZIPF},
        {"seeders-pct", 1, NULL, O_SEEDERS}, {"db", 1, NULL, O_DB}, {"udp", 0, NULL, O_UDP},
        {"ip-param", 1, NULL, O_IP_PARAM}, {"rate", 1, NULL, O_RATE},
        {NULL, 0, NULL, 0},
    };
    *o = (struct lg_opts){
        .style = LG_STYLE_MIKA, .kind = LG_ANNOUNCE, .conns = 64, .pipeline = 1,
        .warmup_s = 1, .duration_s = 10, .numwant = 50, .stop_permille = 20,
        .complete_permille = 2, .server_pid = -1, .server_cpu = -1,
        .model = {.seed = 1, .users = 100000, .torrents = 10000, .peers = 400000, .zipf = 1.0,
                  .seeders_pct = 10},
    };
    inet_pton(AF_INET, "127.0.0.1", &o->host);
    int port = 0;
    for (int opt; (opt = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        uint32_t v = 0;
        bool ok = true;
        switch (opt) {
        case O_HOST: ok = inet_pton(AF_INET, optarg, &o->host) == 1; break;
        case O_PORT: ok = lg_parse_u32(optarg, &v) && v > 0 && v < 65536; port = (int)v; break;
        case O_STYLE:
            ok = strcmp(optarg, "mika") == 0 || strcmp(optarg, "open") == 0;
            o->style = optarg[0] == 'o' ? LG_STYLE_OPEN : LG_STYLE_MIKA;
            break;
        case O_SCRAPE:
            ok = lg_parse_u32(optarg, &o->scrape_hashes) && o->scrape_hashes >= 1 &&
                 o->scrape_hashes <= LG_SCRAPE_MAX;
            o->kind = LG_SCRAPE;
            break;
        case O_CONNS: ok = lg_parse_u32(optarg, &o->conns) && o->conns > 0; break;
        case O_KEEPALIVE: o->keepalive = true; break;
        case O_PIPELINE:
            ok = lg_parse_u32(optarg, &o->pipeline) && o->pipeline >= 1 &&
                 o->pipeline <= LG_PIPELINE_MAX;
            break;
        case O_WARMUP: o->warmup_s = atof(optarg); break;
        case O_DURATION: o->duration_s = atof(optarg); break;
        case O_REQUESTS: ok = lg_parse_u32(optarg, &v); o->requests = v; break;
        case O_PRELOAD: o->preload = true; break;
        case O_NUMWANT: ok = lg_parse_u32(optarg, &o->numwant); break;
        case O_STOP: ok = lg_parse_u32(optarg, &o->stop_permille); break;
        case O_COMPLETE: ok = lg_parse_u32(optarg, &o->complete_permille); break;
        case O_SRC_BIND: o->src_bind = true; break;
        case O_PID: ok = lg_parse_u32(optarg, &v); o->server_pid = (int)v; break;
        case O_CPU: ok = lg_parse_u32(optarg, &v); o->server_cpu = (int)v; break;
        case O_SEED: ok = lg_parse_u32(optarg, &v); o->model.seed = v; break;
        case O_USERS: ok = lg_parse_u32(optarg, &o->model.users); break;
        case O_TORRENTS: ok = lg_parse_u32(optarg, &o->model.torrents); break;
        case O_TBASE: ok = lg_parse_u32(optarg, &o->model.torrent_base); break;
        case O_PEERS: ok = lg_parse_u32(optarg, &o->model.peers); break;
        case O_ZIPF: o->model.zipf = atof(optarg); break;
        case O_SEEDERS: ok = lg_parse_u32(optarg, &o->model.seeders_pct); break;
        case O_DB: o->db = optarg; break;
        case O_UDP: o->udp = true; break;
        case O_IP_PARAM: ok = lg_parse_nets(optarg, o); break;
        case O_RATE: ok = lg_parse_u32(optarg, &o->rate); break;
        default: ok = false; break;
        }
        if (!ok) {
            fprintf(stderr, "loadgen: bad option value\n");
            lg_usage();
            return -1;
        }
    }
    o->port = (uint16_t)port;
    return 0;
}

static int lg_hashes(const struct lg_opts *o)
{
    for (uint32_t i = 0; i < o->model.torrents; i++) {
        uint8_t h[20];
        model_info_hash(o->model.seed, o->model.torrent_base + i + 1, h);
        for (int k = 0; k < 20; k++) {
            printf("%02x", h[k]);
        }
        putchar('\n');
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        lg_usage();
        return 2;
    }
    const char *cmd = argv[1];
    static struct lg g; /* large (the histogram); one per process, owned by main */
    if (lg_options(argc - 1, argv + 1, &g.o) != 0) {
        return 2;
    }
    if (strcmp(cmd, "hashes") == 0) {
        return lg_hashes(&g.o);
    }
    if (strcmp(cmd, "gendb") == 0) {
        if (!g.o.db) {
            lg_usage();
            return 2;
        }
        return model_write_db(&g.o.model, g.o.db) == 0 ? 0 : 1;
    }
    if (strcmp(cmd, "run") != 0 || g.o.port == 0) {
        lg_usage();
        return 2;
    }
    if (model_init(&g.m, &g.o.model) != 0) {
        fprintf(stderr, "loadgen: cannot build the population (sizes, memory)\n");
        return 1;
    }
    g.rng = g.o.model.seed * 0x2545f4914f6cdd1dull + (uint64_t)getpid();
    if (g.o.preload) {
        g.o.requests = g.o.model.peers;
    } else {
        /* Timed runs follow a preload made by another process: every peer is
         * in its swarm already, so its first announce here is a regular one
         * (with new counters, hence a delta to book), not `started`. */
        for (uint32_t i = 0; i < g.m.cfg.peers; i++) {
            g.m.peers[i].active = true;
        }
    }
    int rc = g.o.udp ? lg_run_udp(&g) : lg_run(&g);
    model_fini(&g.m);
    return rc;
}
