/* net/conn.c: one HTTP connection of a tracker worker (net/server.c).
 *
 * Owns: a connection's input buffer (max_request_bytes + 1, so an over-long
 * head is seen as such), its output buffer (bounded: past OUT_HIGH_WATER
 * the worker stops reading that connection until the client drains it),
 * HTTP framing of answers (status line, headers, keep-alive), answering
 * its requests strictly in order (all pipelining needs), the
 * passkey-guessing guard in front of tracker_answer, parking a request on a
 * miss (its bytes stay in the input, reading stops, a ticket goes to the
 * resolver), and its loop interest.
 * Not here: accepting, timeouts, the resolver's inbox and the journal write
 * that releases held answers (server.c); the answers' content (tracker.c),
 * parsing (proto/http.c).
 * Invariants: a connection is touched only by the worker that accepted it;
 * answers produced in a loop turn are held (conn_hold) until the turn's
 * journal batch is written, never sent before.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/guard.h"
#include "net/loop.h"
#include "net/server_int.h"
#include "proto/http.h"
#include "util/log.h"

void conn_close(struct server_worker *w, struct conn *c)
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
    uint32_t now_s = (uint32_t)(server_now_ms() / 1000);
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
        int64_t now = server_now_ms();
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
void conn_process(struct server_worker *w, struct conn *c)
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
        c->active_ms = server_now_ms();
        c->request_ms = c->inlen > 0 ? c->active_ms : 0;
    }
}

/* Writes what it can. Returns false if the connection was closed. */
bool conn_flush(struct server_worker *w, struct conn *c)
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
void conn_hold(struct server_worker *w, struct conn *c)
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

void conn_set_interest(struct server_worker *w, struct conn *c, bool reading, bool writing)
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
            c->request_ms = server_now_ms();
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

/* A client sends its request as soon as it is connected, so it is usually
 * here by the time the connection is accepted: reading it at once spares a
 * loop turn, and a connection answered and closed in that turn is never
 * registered with the loop at all. Otherwise it waits for readiness as any
 * other. */
void conn_first_read(struct server_worker *w, struct conn *c)
{
    ssize_t n = recv(c->fd, c->in, w->in_cap, 0);
    if (n > 0) {
        c->request_ms = server_now_ms();
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
