/* net/server.c: worker threads serving the HTTP tracker port.
 *
 * Owns: per worker, the listening sockets (SO_REUSEPORT), the journal writer,
 * the connections,
 * their input buffer (max_request_bytes + 1, so an over-long head is seen as
 * such), their output buffer (bounded: past OUT_HIGH_WATER the worker stops
 * reading that connection until the client drains it), the header-read and
 * idle timeouts, and HTTP framing. Requests on one connection are answered
 * strictly in order, which is all pipelining needs.
 * Per-address limits (net/guard.c): each worker owns a guard holding its
 * share of http.max_connections_per_ip and tracker.passkey_guess_limit; the
 * kernel spreads one address's connections over the workers' sockets, so
 * the shares add up to the limit. Connections from trusted proxies are
 * exempt (everyone behind the proxy has its address).
 * Ordering rule: answers produced in a loop turn are held (the connection is
 * "pending") until the turn's journal batch is written in before_wait; only
 * then are they sent. So an answered announce is always in the journal.
 * The miss path: a request whose passkey or info_hash is not in memory
 * (tracker.c answers TRACKER_PARKED) is "parked": its bytes stay in the
 * input buffer, reading stops, a ticket goes to the resolver
 * (auth/resolver.h), and the worker serves others. The answer comes back
 * through the worker's inbox (a pipe in the loop); the request is then
 * parsed and answered again with the lookup's result. The header timeout
 * still runs from its first byte, so a slow store cannot hold a connection
 * longer than a slow client could. A parked connection that closes leaves
 * its ticket with the resolver, cookie cleared; the inbox frees it.
 * UDP (net/udp.c) shares each worker's loop, journal writer, tracker_local
 * and guard; it answers and journals a datagram batch within its handler.
 * Not here: the answers' content (tracker.c), parsing (proto/http.c).
 * Invariant: a connection is touched only by the worker that accepted it.
 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/guard.h"
#include "net/loop.h"
#include "net/sock.h"
#include "net/udp.h"
#include "proto/http.h"
#include "util/log.h"

#define ACCEPT_BATCH 64          /* accepts per readiness event, so one port can't starve the rest */
#define OUT_HIGH_WATER (64 * 1024)
#define TICK_MS 500
#define SETSIZE_SLACK 256        /* fds beyond the connection cap: listeners, store, pipes */

struct conn {
    struct server_worker *w; /* the worker that owns it */
    int fd;
    bool closing;            /* close once the output is written */
    bool reading;            /* LOOP_READ registered */
    bool writing;            /* LOOP_WRITE registered */
    struct tracker_addr src;
    uint64_t guard_key;      /* src's key in the worker's guard */
    bool guarded;            /* counted in the guard: uncount on close */
    struct http_parser parser;
    char *in;
    size_t inlen;
    uint8_t *out;
    size_t outlen, outpos, outcap;
    int64_t request_ms;      /* when the pending request's first byte came; 0 = none */
    int64_t active_ms;       /* when the connection last finished a request (or opened) */
    uint32_t requests;
    bool pending;            /* holds answers waiting for this turn's journal write */
    struct resolver_ticket *ticket; /* parked: the lookup its request waits for */
    int lookup[MISS_KINDS];  /* the resolver's answers for the request in hand */
    struct conn *pending_next;
    struct conn *prev, *next;
};

struct server_worker {
    uint32_t id;
    const struct tracker *t;
    const struct mk_config *cfg;
    struct tracker_local local;
    struct journal_writer journal;
    bool journal_open;
    struct conn *pending;    /* connections with answers to send after the journal write */
    struct loop *loop;
    int listen_fds[2];
    int nlisten;
    int wake_fds[2];         /* pipe: server_worker_stop() writes, the loop reads */
    struct resolver_inbox *inbox; /* the resolver's answers (with t->resolver) */
    struct udp_port *udp;    /* the UDP tracker's sockets (net/udp.c); NULL: none */
    pthread_t thread;
    bool started;
    int setsize;             /* fds the loop can watch */
    struct conn *conns;      /* every open connection, for the timeout scan */
    uint32_t nconns, max_conns;
    uint64_t refused;        /* accepts over the cap since the last log line */
    struct guard *guard;     /* this worker's per-address limits */
    int64_t guard_log_ms;    /* last "address refused" log line, to rate-limit them */
    uint8_t *body;           /* scratch for one answer's body */
    size_t body_cap;
    size_t in_cap;
    size_t out_max;
    struct http_limits limits;
    struct mk_str real_ip_header;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sockets (made by net/sock.c) -------------------------------------- */

/* TCP_NODELAY on each accepted socket where the listener's is not handed
 * down (Linux hands it down: net/sock.c). */
static void nodelay_on_accepted(int fd)
{
#ifdef __linux__
    (void)fd;
#else
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#endif
}

/* ---- connections ------------------------------------------------------- */

static void conn_close(struct server_worker *w, struct conn *c)
{
    if (c->ticket) {
        /* The resolver still holds the ticket; the inbox frees it. */
        c->ticket->cookie = NULL;
        c->ticket = NULL;
    }
    /* The fd is never duplicated: closing it drops its epoll registration,
     * so loop_forget spares the EPOLL_CTL_DEL a loop_del would make. */
    loop_forget(w->loop, c->fd);
    close(c->fd);
    if (c->guarded) {
        guard_conn_close(w->guard, c->guard_key);
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    w->nconns--;
    if (w->local.counters) {
        atomic_fetch_add_explicit(&w->local.counters->conns_closed, 1, memory_order_relaxed);
    }
    free(c->in);
    free(c->out);
    free(c);
}

/* Makes room for n more output bytes, within out_max. */
static bool conn_reserve(struct server_worker *w, struct conn *c, size_t n)
{
    if (c->outpos > 0 && c->outpos == c->outlen) {
        c->outpos = c->outlen = 0;
    }
    if (c->outlen + n <= c->outcap) {
        return true;
    }
    if (c->outlen + n > w->out_max) {
        return false;
    }
    size_t cap = c->outcap ? c->outcap : 1024;
    while (cap < c->outlen + n) {
        cap *= 2;
    }
    if (cap > w->out_max) {
        cap = w->out_max;
    }
    uint8_t *grown = realloc(c->out, cap);
    if (!grown) {
        return false;
    }
    c->out = grown;
    c->outcap = cap;
    return true;
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* Appends s to p; returns the end. */
static char *conn_put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* "HTTP/1.1 <status> <text>\r\nContent-Type: text/plain\r\nContent-Length:
 * <len>\r\n<conn_hdr>\r\n" into head (room for 256); returns its length.
 * By hand rather than snprintf, which cost more than the rest of the framing
 * on every answer. */
static int conn_head(char *head, int status, size_t len, const char *conn_hdr)
{
    char *p = conn_put(head, "HTTP/1.1 ");
    *p++ = (char)('0' + status / 100 % 10);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = conn_put(p, status_text(status));
    p = conn_put(p, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    char digits[20];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + len % 10);
        len /= 10;
    } while (len > 0);
    while (nd > 0) {
        *p++ = digits[--nd];
    }
    p = conn_put(p, "\r\n");
    p = conn_put(p, conn_hdr);
    p = conn_put(p, "\r\n");
    return (int)(p - head);
}

/* Appends one whole answer. Keep-alive is said explicitly to 1.0 clients,
 * which close by default. */
static void conn_respond(struct server_worker *w, struct conn *c, int status, int minor,
                         const uint8_t *body, size_t len)
{
    char head[256];
    const char *conn_hdr = c->closing ? "Connection: close\r\n"
                           : minor == 0 ? "Connection: keep-alive\r\n"
                                        : "";
    int n = conn_head(head, status, len, conn_hdr);
    if (!conn_reserve(w, c, (size_t)n + len)) {
        /* Only a client that never reads can get here: drop it. */
        c->closing = true;
        c->outlen = c->outpos = 0;
        return;
    }
    memcpy(c->out + c->outlen, head, (size_t)n);
    memcpy(c->out + c->outlen + (size_t)n, body, len);
    c->outlen += (size_t)n + len;
}

static void conn_respond_error(struct server_worker *w, struct conn *c, int status)
{
    const char *msg;
    switch (status) {
    case 405: msg = "method not allowed"; break;
    case 414: msg = "request line too long"; break;
    case 431: msg = "request header too large"; break;
    case 505: msg = "HTTP version not supported"; break;
    default: msg = "bad request"; break;
    }
    struct bencode b;
    bencode_init(&b, w->body, w->body_cap);
    bencode_failure(&b, msg);
    c->closing = true;
    conn_respond(w, c, status, 1, b.p, b.len);
}

static void conn_set_interest(struct server_worker *w, struct conn *c, bool reading, bool writing);

static const char passkey_refusal[] = "too many unknown passkeys from this address, try again later";

/* True when b holds exactly tracker.c's "unknown passkey" refusal. */
static bool is_unknown_passkey(const struct bencode *b)
{
    static const char body[] = "d14:failure reason15:unknown passkeye";
    return b->len == sizeof(body) - 1 && memcmp(b->p, body, b->len) == 0;
}

/* tracker_answer with the miss path: a key not in memory is submitted to
 * the resolver; an answer it has at once (a cached negative, a full queue)
 * is given to the tracker straight away, else the request is parked. Each
 * kind is asked once per request, so this loops at most MISS_KINDS times. */
static int conn_answer_lookup(struct server_worker *w, struct conn *c,
                              const struct http_request *req, struct bencode *b)
{
    for (;;) {
        memcpy(w->local.lookup, c->lookup, sizeof(c->lookup));
        int status = tracker_answer(w->t, &w->local, req, &c->src, b);
        if (status != TRACKER_PARKED) {
            return status;
        }
        const struct miss_key *k = &w->local.miss;
        struct resolver_ticket *ticket;
        int rc = resolver_submit(w->t->resolver, w->inbox, k, c, &ticket);
        if (rc == MK_OK) {
            c->ticket = ticket;
            return TRACKER_PARKED;
        }
        c->lookup[k->kind] = rc;
    }
}

/* tracker_answer behind the passkey-guessing guard: an address over the
 * limit is refused whatever its passkey (a guess that hits must not be
 * told so), and its connection closed, so each further guess costs a
 * handshake. */
static int conn_answer(struct server_worker *w, struct conn *c, const struct http_request *req,
                       struct bencode *b)
{
    uint32_t now_s = (uint32_t)(now_ms() / 1000);
    if (c->guarded && guard_passkey_refused(w->guard, c->guard_key, now_s)) {
        guard_passkey_refusal(w->guard);
        atomic_fetch_add_explicit(&w->local.counters->guess_refused, 1, memory_order_relaxed);
        c->closing = true;
        bencode_failure(b, passkey_refusal);
        return 200;
    }
    int status = conn_answer_lookup(w, c, req, b);
    if (status == TRACKER_PARKED) {
        return status;
    }
    if (c->guarded && is_unknown_passkey(b) && guard_passkey_miss(w->guard, c->guard_key, now_s)) {
        atomic_fetch_add_explicit(&w->local.counters->guess_blocked, 1, memory_order_relaxed);
        int64_t now = now_ms();
        if (now - w->guard_log_ms >= 1000) {
            char text[INET6_ADDRSTRLEN];
            inet_ntop(c->src.family, c->src.ip, text, sizeof(text));
            mk_log(MK_LOG_WARN, "http",
                   "worker %u: %s reached its share of %u unknown passkeys a minute;"
                   " refusing it for a while", w->id, text, w->cfg->passkey_guess_limit);
            w->guard_log_ms = now;
        }
    }
    return status;
}

/* Answers every complete request in the input, in order, until the output
 * is past the high-water mark. */
static void conn_process(struct server_worker *w, struct conn *c)
{
    while (!c->closing && c->inlen > 0 && c->outlen - c->outpos < OUT_HIGH_WATER) {
        struct http_request req;
        enum http_parse_result r = http_parse_request(c->in, c->inlen, &c->parser, &w->limits,
                                                      w->real_ip_header, &req);
        if (r == HTTP_PARSE_AGAIN) {
            if (c->inlen >= w->in_cap) {
                conn_respond_error(w, c, 431);
            }
            return;
        }
        if (r == HTTP_PARSE_ERROR) {
            mk_log(MK_LOG_DEBUG, "http", "refused a request with %d from worker %u", req.status,
                   w->id);
            conn_respond_error(w, c, req.status);
            return;
        }
        bool last = !req.keep_alive || c->requests + 1 >= w->cfg->max_keepalive_requests;
        bool was_closing = c->closing;
        c->closing = c->closing || last; /* the answer's head says so */
        struct bencode b;
        bencode_init(&b, w->body, w->body_cap);
        int status = conn_answer(w, c, &req, &b);
        if (status == TRACKER_PARKED) {
            /* Parsed again from the same bytes when the answer comes. */
            c->closing = was_closing;
            http_parser_reset(&c->parser);
            conn_set_interest(w, c, false, c->writing);
            return;
        }
        c->requests++;
        for (unsigned k = 0; k < MISS_KINDS; k++) {
            c->lookup[k] = TRACKER_LOOKUP_NONE;
        }
        if (status != 200) {
            /* A client asking for paths we don't serve is not a tracker client. */
            c->closing = true;
        }
        if (!bencode_ok(&b)) {
            /* tracker_max_body() sizes the buffer; this is a bug, not input. */
            mk_log(MK_LOG_ERROR, "http", "answer did not fit in %zu bytes", w->body_cap);
            bencode_init(&b, w->body, w->body_cap);
            bencode_failure(&b, "internal error");
        }
        conn_respond(w, c, status, req.minor, b.p, b.len);

        memmove(c->in, c->in + req.head_len, c->inlen - req.head_len);
        c->inlen -= req.head_len;
        http_parser_reset(&c->parser);
        c->active_ms = now_ms();
        c->request_ms = c->inlen > 0 ? c->active_ms : 0;
    }
}

/* Writes what it can. Returns false if the connection was closed. */
static bool conn_flush(struct server_worker *w, struct conn *c)
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
            conn_set_interest(w, c,
                              !c->closing && !c->ticket && c->outlen - c->outpos < OUT_HIGH_WATER,
                              true);
            return true;
        }
        conn_close(w, c);
        return false;
    }
    c->outpos = c->outlen = 0;
    if (c->closing) {
        conn_close(w, c);
        return false;
    }
    conn_set_interest(w, c, !c->ticket, false);
    return true;
}

/* After new answers were produced: hold them until the journal is written. */
static void conn_hold(struct server_worker *w, struct conn *c)
{
    if (c->outlen > c->outpos) {
        if (!c->pending) {
            c->pending = true;
            c->pending_next = w->pending;
            w->pending = c;
        }
    } else if (c->closing) {
        conn_close(w, c);
    }
}

static void conn_on_event(struct loop *l, int fd, int mask, void *arg);

static void conn_set_interest(struct server_worker *w, struct conn *c, bool reading, bool writing)
{
    if (reading != c->reading) {
        if (reading) {
            loop_add(w->loop, c->fd, LOOP_READ, conn_on_event, c);
        } else {
            loop_del(w->loop, c->fd, LOOP_READ);
        }
        c->reading = reading;
    }
    if (writing != c->writing) {
        if (writing) {
            loop_add(w->loop, c->fd, LOOP_WRITE, conn_on_event, c);
        } else {
            loop_del(w->loop, c->fd, LOOP_WRITE);
        }
        c->writing = writing;
    }
}

static void conn_on_event(struct loop *l, int fd, int mask, void *arg)
{
    struct conn *c = arg;
    struct server_worker *w = c->w;
    if (c->pending) {
        /* Its answers wait for this turn's journal write; level-triggered
         * readiness brings this event back after before_wait sent them. */
        return;
    }
    if (mask & LOOP_WRITE) {
        if (!conn_flush(w, c)) {
            return;
        }
        if (c->inlen > 0 && !c->closing && c->outlen == 0 && !c->ticket) {
            conn_process(w, c);
            conn_hold(w, c);
            return;
        }
    }
    if (!(mask & LOOP_READ) || c->closing) {
        return;
    }
    if (c->ticket) {
        /* Parked: the request in hand is answered first. */
        conn_set_interest(w, c, false, c->writing);
        return;
    }
    if (c->inlen >= w->in_cap) {
        /* Full input and a backed-up output: wait for the client to read. */
        conn_set_interest(w, c, false, c->writing);
        return;
    }
    ssize_t n = recv(fd, c->in + c->inlen, w->in_cap - c->inlen, 0);
    if (n > 0) {
        if (c->inlen == 0) {
            c->request_ms = now_ms();
        }
        c->inlen += (size_t)n;
        if (c->outlen == 0) {
            conn_process(w, c);
        }
        conn_hold(w, c);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    /* EOF or error: every complete request was already answered; an
     * incomplete one never will be. Finish writing, then close. */
    c->closing = true;
    c->inlen = 0;
    conn_flush(w, c);
}

/* The end of every loop turn: write the turn's journal records, then send
 * the answers that waited for them. Sending may free room for more
 * pipelined requests, whose answers take another round. */
static void on_before_wait(struct loop *l, void *arg)
{
    struct server_worker *w = arg;
    while (w->pending) {
        int rc = w->journal_open ? journal_commit(&w->journal, now_ms()) : MK_OK;
        struct conn *list = w->pending;
        w->pending = NULL;
        struct conn *next;
        for (struct conn *c = list; c; c = next) {
            next = c->pending_next;
            c->pending = false;
            c->pending_next = NULL;
            if (rc != MK_OK) {
                /* These answers are not backed by the books: the client
                 * will announce again, and the kept batch is retried. */
                conn_close(w, c);
                continue;
            }
            if (!conn_flush(w, c)) {
                continue;
            }
            if (c->inlen > 0 && !c->closing && c->outlen == 0 && !c->ticket) {
                conn_process(w, c);
                conn_hold(w, c);
            }
        }
    }
    if (w->journal_open) {
        journal_tick(&w->journal, now_ms());
    }
}

/* A client sends its request as soon as it is connected, so it is usually
 * here by the time the connection is accepted: reading it at once spares a
 * loop turn, and a connection answered and closed in that turn is never
 * registered with the loop at all. Otherwise it waits for readiness as any
 * other. */
static void conn_first_read(struct server_worker *w, struct conn *c)
{
    ssize_t n = recv(c->fd, c->in, w->in_cap, 0);
    if (n > 0) {
        c->request_ms = now_ms();
        c->inlen = (size_t)n;
        conn_process(w, c);
        if (c->outlen > c->outpos || c->closing) {
            conn_hold(w, c); /* sent, and registered if kept, after the journal write */
            return;
        }
        if (c->ticket) {
            return; /* parked: on_inbox answers it, and registers it if kept */
        }
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_close(w, c);
        return;
    }
    if (loop_add(w->loop, c->fd, LOOP_READ, conn_on_event, c) != MK_OK) {
        conn_close(w, c);
        return;
    }
    c->reading = true;
}

static void on_accept(struct loop *l, int lfd, int mask, void *arg)
{
    struct server_worker *w = arg;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE) {
                mk_log(MK_LOG_WARN, "http", "worker %u: out of file descriptors", w->id);
            }
            return;
        }
        if (w->nconns >= w->max_conns || fd >= w->setsize) {
            /* Over the cap: refuse at once rather than let it queue. */
            close(fd);
            if (w->local.counters) {
                atomic_fetch_add_explicit(&w->local.counters->conns_refused, 1,
                                          memory_order_relaxed);
            }
            if (w->refused++ % 1000 == 0) {
                mk_log(MK_LOG_WARN, "http", "worker %u: connection cap %u reached, refusing",
                       w->id, w->max_conns);
            }
            continue;
        }
        struct tracker_addr src = {0};
        if (ss.ss_family == AF_INET6) {
            src.family = AF_INET6;
            memcpy(src.ip, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        } else {
            src.family = AF_INET;
            memcpy(src.ip, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        }
        bool guarded = !config_is_trusted_proxy(w->cfg, src.family, src.ip);
        uint64_t key = guarded ? guard_key(w->guard, src.family, src.ip) : 0;
        if (guarded && !guard_conn_open(w->guard, key)) {
            close(fd);
            if (w->local.counters) {
                atomic_fetch_add_explicit(&w->local.counters->conns_refused, 1,
                                          memory_order_relaxed);
            }
            if (w->refused++ % 1000 == 0) {
                mk_log(MK_LOG_WARN, "http",
                       "worker %u: per-address connection cap %u reached, refusing", w->id,
                       w->cfg->max_connections_per_ip);
            }
            continue;
        }
        struct conn *c = calloc(1, sizeof(*c));
        char *in = malloc(w->in_cap);
        if (!c || !in) {
            free(c);
            free(in);
            if (guarded) {
                guard_conn_close(w->guard, key);
            }
            close(fd);
            continue;
        }
        c->w = w;
        c->fd = fd;
        c->in = in;
        c->src = src;
        c->guard_key = key;
        c->guarded = guarded;
        for (unsigned k = 0; k < MISS_KINDS; k++) {
            c->lookup[k] = TRACKER_LOOKUP_NONE;
        }
        nodelay_on_accepted(fd);
        c->active_ms = now_ms();
        c->next = w->conns;
        if (w->conns) {
            w->conns->prev = c;
        }
        w->conns = c;
        w->nconns++;
        if (w->local.counters) {
            atomic_fetch_add_explicit(&w->local.counters->conns_opened, 1, memory_order_relaxed);
        }
        conn_first_read(w, c);
    }
}

/* Drops connections whose request head is late (slowloris) or that sat idle. */
static void on_tick(struct loop *l, void *arg)
{
    struct server_worker *w = arg;
    int64_t now = now_ms();
    int64_t header_ms = (int64_t)w->cfg->header_timeout * 1000;
    int64_t idle_ms = (int64_t)w->cfg->idle_timeout * 1000;
    struct conn *next;
    for (struct conn *c = w->conns; c; c = next) {
        next = c->next;
        bool late = c->request_ms && now - c->request_ms >= header_ms;
        bool idle = !c->request_ms && c->outlen == 0 && now - c->active_ms >= idle_ms;
        /* A client that stopped reading its answers is as stuck as a slow one. */
        bool stuck = c->outlen > 0 && now - c->active_ms >= idle_ms;
        if ((late || idle || stuck) && !c->pending) {
            conn_close(w, c);
        }
    }
}

/* The resolver answered: each parked request is parsed and answered again
 * with what it learnt (its connection may have closed meanwhile). */
static void on_inbox(struct loop *l, int fd, int mask, void *arg)
{
    struct server_worker *w = arg;
    struct resolver_ticket *t = resolver_inbox_take(w->inbox);
    while (t) {
        struct resolver_ticket *next = t->next;
        struct conn *c = t->cookie;
        if (c) {
            c->ticket = NULL;
            c->lookup[t->kind] = t->result;
        }
        resolver_ticket_free(t);
        t = next;
        /* A pending connection is resumed by before_wait after its send; one
         * with unsent output, by its write event. */
        if (!c || c->pending || c->outlen > c->outpos) {
            continue;
        }
        conn_process(w, c);
        if (!c->ticket && c->outlen == 0 && !c->closing) {
            conn_set_interest(w, c, true, false);
        }
        conn_hold(w, c);
    }
}

static void on_wake(struct loop *l, int fd, int mask, void *arg)
{
    char buf[16];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    loop_stop(l);
}

static void *worker_main(void *arg)
{
    struct server_worker *w = arg;
    int rc = loop_run(w->loop);
    if (rc != MK_OK) {
        mk_log(MK_LOG_ERROR, "http", "worker %u: event loop failed (%s)", w->id, mk_err_name(rc));
    }
    /* Answer what is in flight: write the last batch, send what waited for it. */
    on_before_wait(w->loop, w);
    while (w->conns) {
        conn_close(w, w->conns);
    }
    if (w->journal_open) {
        journal_writer_close(&w->journal);
        w->journal_open = false;
    }
    return NULL;
}

int server_worker_new(struct server_worker **out, uint32_t id, const struct tracker *t,
                      const struct server_journal_cfg *jcfg, uint32_t max_conns,
                      struct mk_errbuf *eb)
{
    const struct mk_config *cfg = t->cfg;
    struct server_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        return mk_fail(eb, MK_ENOMEM, "worker: out of memory");
    }
    w->id = id;
    w->t = t;
    w->cfg = cfg;
    w->listen_fds[0] = w->listen_fds[1] = -1;
    w->wake_fds[0] = w->wake_fds[1] = -1;
    w->max_conns = max_conns;
    w->setsize = (int)(cfg->max_connections + SETSIZE_SLACK);
    w->in_cap = cfg->max_request_bytes + 1;
    w->body_cap = tracker_max_body(cfg);
    w->out_max = OUT_HIGH_WATER + w->body_cap + 512;
    w->limits = (struct http_limits){
        .max_request_line = cfg->max_request_line,
        .max_head = cfg->max_request_bytes,
        .max_headers = cfg->max_headers,
    };
    w->real_ip_header = (struct mk_str){cfg->real_ip_header, strlen(cfg->real_ip_header)};
    /* This worker's share of the per-address limits: max_conns is its share
     * of max_connections, which gives the number of workers. */
    uint32_t nworkers = max_conns ? (cfg->max_connections + max_conns - 1) / max_conns : 1;
    nworkers = nworkers ? nworkers : 1;
    struct guard_cfg gcfg = {
        .max_conns = (cfg->max_connections_per_ip + nworkers - 1) / nworkers,
        .passkey_limit = (cfg->passkey_guess_limit + nworkers - 1) / nworkers,
    };
    int rc = guard_new(&w->guard, &gcfg);
    if (rc != MK_OK) {
        mk_fail(eb, rc, "worker: cannot set up the per-address limits");
        goto out_free;
    }
    w->body = malloc(w->body_cap);
    if (!w->body) {
        rc = mk_fail(eb, MK_ENOMEM, "worker: out of memory");
        goto out_free;
    }
    /* One batch holds a turn's records; a turn answers at most what fits in
     * the connections' input buffers, and a full batch is written early. */
    if (jcfg->enabled) {
        rc = journal_writer_open(&w->journal, jcfg->dir, jcfg->boot, id, 4096,
                                 jcfg->seg_max_bytes, jcfg->seg_max_ms, jcfg->fsync,
                                 jcfg->fsync_interval_ms, eb);
        if (rc != MK_OK) {
            goto out_free;
        }
        w->journal_open = true;
    }
    rc = tracker_local_init(&w->local, t, w->journal_open ? &w->journal : NULL,
                            ((uint64_t)id << 32) ^ (uint64_t)time(NULL));
    if (rc != MK_OK) {
        mk_fail(eb, rc, "worker: out of memory");
        goto out_free;
    }
    rc = loop_new(&w->loop, cfg->event_loop, w->setsize, eb);
    if (rc != MK_OK) {
        goto out_free;
    }
    if (cfg->ipv4) {
        int fd = sock_bind_port(AF_INET, SOCK_STREAM, cfg->bind4, cfg->port, "server.bind4", eb);
        if (fd < 0) {
            rc = fd;
            goto out_free;
        }
        w->listen_fds[w->nlisten++] = fd;
    }
    if (cfg->ipv6) {
        int fd = sock_bind_port(AF_INET6, SOCK_STREAM, cfg->bind6, cfg->port, "server.bind6", eb);
        if (fd < 0) {
            rc = fd;
            goto out_free;
        }
        w->listen_fds[w->nlisten++] = fd;
    }
    if (pipe2(w->wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        rc = mk_fail(eb, MK_EIO, "worker: pipe: %s", strerror(errno));
        goto out_free;
    }
    for (int i = 0; i < w->nlisten; i++) {
        rc = loop_add(w->loop, w->listen_fds[i], LOOP_READ, on_accept, w);
        if (rc != MK_OK) {
            mk_fail(eb, rc, "worker: cannot watch the listening socket");
            goto out_free;
        }
    }
    rc = loop_add(w->loop, w->wake_fds[0], LOOP_READ, on_wake, w);
    if (rc != MK_OK) {
        mk_fail(eb, rc, "worker: cannot watch the wake pipe");
        goto out_free;
    }
    if (t->resolver) {
        rc = resolver_inbox_new(&w->inbox, eb);
        if (rc != MK_OK) {
            goto out_free;
        }
        rc = loop_add(w->loop, resolver_inbox_fd(w->inbox), LOOP_READ, on_inbox, w);
        if (rc != MK_OK) {
            mk_fail(eb, rc, "worker: cannot watch the resolver inbox");
            goto out_free;
        }
    }
    /* UDP shares the worker's loop, journal writer and tracker_local. */
    rc = udp_port_new(&w->udp, t, &w->local, w->journal_open ? &w->journal : NULL, w->inbox,
                      w->guard, w->loop, eb);
    if (rc != MK_OK) {
        goto out_free;
    }
    loop_set_tick(w->loop, TICK_MS, on_tick, w);
    loop_set_before_wait(w->loop, on_before_wait, w);
    *out = w;
    return MK_OK;

out_free:
    server_worker_free(w);
    return rc;
}

int server_worker_start(struct server_worker *w, struct mk_errbuf *eb)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        return mk_fail(eb, MK_EIO, "worker %u: cannot start thread: %s", w->id, strerror(rc));
    }
    w->started = true;
    return MK_OK;
}

void server_worker_stop(struct server_worker *w)
{
    if (!w || !w->started) {
        return;
    }
    ssize_t n = write(w->wake_fds[1], "x", 1);
    (void)n;
    pthread_join(w->thread, NULL);
    w->started = false;
}

void server_worker_free(struct server_worker *w)
{
    if (!w) {
        return;
    }
    server_worker_stop(w);
    for (int i = 0; i < 2; i++) {
        if (w->listen_fds[i] >= 0) {
            close(w->listen_fds[i]);
        }
        if (w->wake_fds[i] >= 0) {
            close(w->wake_fds[i]);
        }
    }
    udp_port_free(w->udp);
    loop_free(w->loop);
    resolver_inbox_free(w->inbox);
    if (w->journal_open) {
        journal_writer_close(&w->journal);
    }
    tracker_local_fini(&w->local);
    guard_free(w->guard);
    free(w->body);
    free(w);
}

const char *server_worker_loop_name(const struct server_worker *w)
{
    return loop_backend_name(w->loop);
}
