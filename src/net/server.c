/* net/server.c: worker threads serving the HTTP tracker port.
 *
 * Owns: per worker, the thread, the event loop and its hooks, the listening
 * sockets (SO_REUSEPORT), accepting (the connection cap and the
 * per-address connection limit), the journal writer, the header-read and
 * idle timeouts, the resolver's inbox, and the end of each loop turn.
 * Per-address limits (net/guard.c): each worker owns a guard holding its
 * share of http.max_connections_per_ip and tracker.passkey_guess_limit; the
 * kernel spreads one address's connections over the workers' sockets, so
 * the shares add up to the limit. Connections from trusted proxies are
 * exempt (everyone behind the proxy has its address).
 * Ordering rule: answers produced in a loop turn are held (the connection is
 * "pending") until the turn's journal batch is written in before_wait; only
 * then are they sent. So an answered announce is always in the journal.
 * The miss path: a request whose passkey or info_hash is not in memory
 * (tracker.c answers TRACKER_PARKED) is "parked" by its connection
 * (conn.c), and the worker serves others. The answer comes back through
 * the worker's inbox (a pipe in the loop); the request is then parsed and
 * answered again with the lookup's result. The header timeout still runs
 * from its first byte, so a slow store cannot hold a connection longer than
 * a slow client could. A parked connection that closes leaves its ticket
 * with the resolver, cookie cleared; the inbox frees it.
 * UDP (net/udp.c) shares each worker's loop, journal writer, tracker_local
 * and guard; it answers and journals a datagram batch within its handler.
 * Not here: a connection's buffers, HTTP framing and answering (conn.c),
 * the answers' content (tracker.c), parsing (proto/http.c).
 * Invariant: a connection is touched only by the worker that accepted it.
 */
#include "net/server.h"

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
#include "net/server_int.h"
#include "net/sock.h"
#include "net/udp.h"
#include "util/log.h"

#define ACCEPT_BATCH 64          /* accepts per readiness event, so one port can't starve the rest */
#define TICK_MS 500
#define SETSIZE_SLACK 256        /* fds beyond the connection cap: listeners, store, pipes */

int64_t server_now_ms(void)
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

/* The end of every loop turn: write the turn's journal records, then send
 * the answers that waited for them. Sending may free room for more
 * pipelined requests, whose answers take another round. */
static void on_before_wait(struct loop *l, void *arg)
{
    struct server_worker *w = arg;
    while (w->pending) {
        int rc = w->journal_open ? journal_commit(&w->journal, server_now_ms()) : MK_OK;
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
        journal_tick(&w->journal, server_now_ms());
    }
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
        c->active_ms = server_now_ms();
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
    int64_t now = server_now_ms();
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
    loop_set_coalesce(w->loop, (int)cfg->coalesce_ms);
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
