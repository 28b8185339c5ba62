/* net/loop.h: a thin event loop, one per worker thread (the shape of Redis's ae).
 *
 * Owns: readiness notification for file descriptors and a single periodic
 * tick. The backend is chosen at creation: epoll (Linux), kqueue (BSDs,
 * macOS) or poll() (anywhere POSIX). Each backend is one file
 * (loop_epoll.c, loop_kqueue.c, loop_poll.c) that fills struct loop_backend.
 * Not here: sockets, HTTP (server.c).
 * Invariant: a loop is used only by the thread that runs it.
 */
#ifndef MIKA_NET_LOOP_H
#define MIKA_NET_LOOP_H

#include <stdbool.h>

#include "util/err.h"

enum loop_mask { LOOP_READ = 1, LOOP_WRITE = 2 };

struct loop;
/* Called with the ready mask (LOOP_READ|LOOP_WRITE; errors and hang-ups are
 * reported as readable so the owner's read sees them). */
typedef void (*loop_fd_fn)(struct loop *l, int fd, int mask, void *arg);

/* What a backend provides; state is the backend's own. */
struct loop_backend {
    const char *name;
    int (*create)(void **state, int setsize);
    void (*destroy)(void *state);
    /* Sets the interest for fd from old_mask to new_mask (0 = remove). */
    int (*set)(void *state, int fd, int old_mask, int new_mask);
    /* Waits up to timeout_ms (-1 forever); calls report(l, fd, mask) per ready fd. */
    int (*wait)(void *state, int timeout_ms, struct loop *l,
                void (*report)(struct loop *l, int fd, int mask));
    /* True when closing an fd drops its registration in the kernel (epoll,
     * kqueue), so loop_forget need not tell the backend. */
    bool close_forgets;
};

extern const struct loop_backend loop_backend_epoll;  /* only where MIKA_HAVE_EPOLL */
extern const struct loop_backend loop_backend_kqueue; /* only where MIKA_HAVE_KQUEUE */
extern const struct loop_backend loop_backend_poll;

/* name: "auto" (epoll, else kqueue, else poll), "epoll", "kqueue" or "poll".
 * setsize bounds the fds (fd < setsize). MK_ENOTSUP if the backend is not
 * built here. */
int loop_new(struct loop **out, const char *name, int setsize, struct mk_errbuf *eb);
void loop_free(struct loop *l);
const char *loop_backend_name(const struct loop *l);

/* Adds mask to fd's interest with fn/arg as its handler (fn/arg replace any
 * earlier ones). MK_ELIMIT if fd >= setsize. */
int loop_add(struct loop *l, int fd, int mask, loop_fd_fn fn, void *arg);
/* Removes mask from fd's interest; removing all forgets fd. */
void loop_del(struct loop *l, int fd, int mask);
/* Forgets fd entirely, for a caller about to close it: where closing drops
 * the kernel's registration (close_forgets), no system call is made. fd must
 * not be duplicated or shared with another process, and must be closed next. */
void loop_forget(struct loop *l, int fd);

/* Runs fn(l, arg) about every period_ms from inside loop_run. */
void loop_set_tick(struct loop *l, int period_ms, void (*fn)(struct loop *l, void *arg), void *arg);

/* Runs fn(l, arg) at the end of every iteration, after all ready handlers
 * and before waiting again (Redis's beforeSleep): the place to finish work a
 * whole turn batched, e.g. writing the turn's journal records before its
 * answers go out. It also runs once before the first wait. */
void loop_set_before_wait(struct loop *l, void (*fn)(struct loop *l, void *arg), void *arg);

/* With ms > 0: after a turn whose wait reported fewer than
 * LOOP_COALESCE_EVENTS ready fds, and after before_wait has run (so that
 * turn's answers are out), the loop sleeps ms before waiting again. Under a
 * moderate load one wake-up then serves several requests; each waits up to
 * ms longer. Under full load turns are busy and nothing changes. 0: off. */
#define LOOP_COALESCE_EVENTS 4
void loop_set_coalesce(struct loop *l, int ms);

/* Runs until loop_stop(); returns 0 or MK_EIO if the backend failed. */
int loop_run(struct loop *l);
/* Asks loop_run to return after the current iteration; only from the
 * loop's own thread (wake it with a pipe/eventfd registered in the loop). */
void loop_stop(struct loop *l);

#endif /* MIKA_NET_LOOP_H */
