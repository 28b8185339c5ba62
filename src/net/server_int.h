/* net/server_int.h: what server.c and conn.c share, and nothing else
 * includes.
 *
 * Owns: a worker (struct server_worker) and a connection (struct conn) as
 * both files see them, and the calls between them. server.c accepts,
 * times out and resumes connections and ends each loop turn; conn.c reads,
 * answers, holds and writes them.
 * Invariant: a connection is touched only by the worker that accepted it.
 */
#ifndef MIKA_NET_SERVER_INT_H
#define MIKA_NET_SERVER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acct/journal.h"
#include "net/server.h"
#include "net/tracker.h"
#include "proto/http.h"

/* Past this many unsent bytes a connection is not read until the client
 * drains it; a worker's out_max is this plus one answer. */
#define OUT_HIGH_WATER (64 * 1024)

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


/* server.c: a coarse monotonic clock, in milliseconds. */
int64_t server_now_ms(void);

/* conn.c. Each may close c (conn_close frees it): callers do not touch c
 * after a call that says so. */
/* Uncounts and frees c; its parked ticket, if any, stays with the resolver. */
void conn_close(struct server_worker *w, struct conn *c);
/* Answers every complete request in the input, in order, until the output
 * is past the high-water mark. */
void conn_process(struct server_worker *w, struct conn *c);
/* Writes what it can. Returns false if the connection was closed. */
bool conn_flush(struct server_worker *w, struct conn *c);
/* After new answers were produced: hold them until the journal is written
 * (or close c, if it has nothing to send and is closing). */
void conn_hold(struct server_worker *w, struct conn *c);
void conn_set_interest(struct server_worker *w, struct conn *c, bool reading, bool writing);
/* A new connection's first read, before it is registered with the loop;
 * may answer (held), park or close it. */
void conn_first_read(struct server_worker *w, struct conn *c);

#endif /* MIKA_NET_SERVER_INT_H */
