/* net/loop.c: the backend-independent part of the event loop.
 *
 * Owns: backend selection by name, the fd table (interest mask and handler
 * per fd, indexed by fd, sized setsize at creation and never grown), the
 * periodic tick on CLOCK_MONOTONIC, the stop flag, dispatch of what a
 * backend reports to each fd's handler, and the optional doze before a wait
 * that follows a light turn (loop_set_coalesce).
 * Not here: talking to the kernel (loop_epoll.c, loop_kqueue.c, loop_poll.c).
 * Invariants: fds[fd].mask is exactly the interest the backend holds for fd;
 * a handler runs only for the bits of the reported mask that fd is still
 * interested in at the moment of dispatch, so an fd removed by an earlier
 * handler of the same batch is skipped.
 */
#include "net/loop.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A bound on the fd table: 16M fds is far past any RLIMIT_NOFILE we run
 * with, and keeps a typo in the config from asking for gigabytes. */
#define LOOP_SETSIZE_MAX (1 << 24)

struct loop_fd {
    int mask;
    loop_fd_fn fn;
    void *arg;
};

struct loop {
    const struct loop_backend *be;
    void *state;
    int setsize;
    struct loop_fd *fds;
    bool stop;
    int tick_ms; /* 0: no tick */
    void (*tick_fn)(struct loop *l, void *arg);
    void *tick_arg;
    int64_t tick_next_ns; /* CLOCK_MONOTONIC */
    void (*before_wait_fn)(struct loop *l, void *arg);
    void *before_wait_arg;
    int coalesce_ms;      /* 0: never doze */
    unsigned turn_events; /* fds the last wait reported */
};

/* Built backends in order of preference: "auto" takes the first. */
static const struct loop_backend *const loop_backends[] = {
#ifdef MIKA_HAVE_EPOLL
    &loop_backend_epoll,
#endif
#ifdef MIKA_HAVE_KQUEUE
    &loop_backend_kqueue,
#endif
    &loop_backend_poll,
};

/* Every backend we know of, built here or not, to tell "not on this
 * platform" (MK_ENOTSUP) from a typo (MK_EINVAL). */
static const char *const loop_known_names[] = {"epoll", "kqueue", "poll"};

static int64_t loop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int loop_pick(const struct loop_backend **out, const char *name, struct mk_errbuf *eb)
{
    size_t nbuilt = sizeof(loop_backends) / sizeof(loop_backends[0]);
    size_t nknown = sizeof(loop_known_names) / sizeof(loop_known_names[0]);

    if (name == NULL) {
        return mk_fail(eb, MK_EINVAL, "loop backend: missing name");
    }
    if (strcmp(name, "auto") == 0) {
        *out = loop_backends[0];
        return 0;
    }
    for (size_t i = 0; i < nbuilt; i++) {
        if (strcmp(name, loop_backends[i]->name) == 0) {
            *out = loop_backends[i];
            return 0;
        }
    }
    for (size_t i = 0; i < nknown; i++) {
        if (strcmp(name, loop_known_names[i]) == 0) {
            return mk_fail(eb, MK_ENOTSUP, "loop backend: %s is not available on this system",
                           name);
        }
    }
    return mk_fail(eb, MK_EINVAL, "loop backend: unknown name \"%.64s\" (auto, epoll, kqueue, poll)",
                   name);
}

int loop_new(struct loop **out, const char *name, int setsize, struct mk_errbuf *eb)
{
    const struct loop_backend *be = NULL;
    struct loop *l;
    int rc;

    rc = loop_pick(&be, name, eb);
    if (rc < 0) {
        return rc;
    }
    if (setsize <= 0 || setsize > LOOP_SETSIZE_MAX) {
        return mk_fail(eb, MK_EINVAL, "loop setsize: %d not in 1..%d", setsize, LOOP_SETSIZE_MAX);
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return mk_fail(eb, MK_ENOMEM, "loop: out of memory");
    }
    l->fds = calloc((size_t)setsize, sizeof(*l->fds));
    if (l->fds == NULL) {
        rc = mk_fail(eb, MK_ENOMEM, "loop: out of memory for %d fds", setsize);
        goto out_free_loop;
    }
    rc = be->create(&l->state, setsize);
    if (rc < 0) {
        rc = mk_fail(eb, rc, "loop: %s backend could not be created (%s)", be->name,
                     mk_err_name(rc));
        goto out_free_fds;
    }
    l->be = be;
    l->setsize = setsize;
    *out = l;
    return 0;

out_free_fds:
    free(l->fds);
out_free_loop:
    free(l);
    return rc;
}

void loop_free(struct loop *l)
{
    if (l == NULL) {
        return;
    }
    l->be->destroy(l->state);
    free(l->fds);
    free(l);
}

const char *loop_backend_name(const struct loop *l)
{
    return l->be->name;
}

int loop_add(struct loop *l, int fd, int mask, loop_fd_fn fn, void *arg)
{
    struct loop_fd *f;
    int newmask;
    int rc;

    if (fd < 0 || fn == NULL || (mask & ~(LOOP_READ | LOOP_WRITE)) != 0) {
        return MK_EINVAL;
    }
    if (fd >= l->setsize) {
        return MK_ELIMIT;
    }
    f = &l->fds[fd];
    newmask = f->mask | mask;
    if (newmask != f->mask) {
        rc = l->be->set(l->state, fd, f->mask, newmask);
        if (rc < 0) {
            return rc;
        }
    }
    f->mask = newmask;
    f->fn = fn;
    f->arg = arg;
    return 0;
}

void loop_del(struct loop *l, int fd, int mask)
{
    struct loop_fd *f;
    int newmask;

    if (fd < 0 || fd >= l->setsize) {
        return;
    }
    f = &l->fds[fd];
    newmask = f->mask & ~mask;
    if (newmask == f->mask) {
        return;
    }
    /* A failure here means the kernel already forgot fd (closed before
     * loop_del); our table must forget it too, so the result is ignored. */
    (void)l->be->set(l->state, fd, f->mask, newmask);
    f->mask = newmask;
    if (newmask == 0) {
        f->fn = NULL;
        f->arg = NULL;
    }
}

void loop_forget(struct loop *l, int fd)
{
    if (fd < 0 || fd >= l->setsize) {
        return;
    }
    struct loop_fd *f = &l->fds[fd];
    if (f->mask != 0 && !l->be->close_forgets) {
        (void)l->be->set(l->state, fd, f->mask, 0);
    }
    f->mask = 0;
    f->fn = NULL;
    f->arg = NULL;
}

void loop_set_tick(struct loop *l, int period_ms, void (*fn)(struct loop *l, void *arg), void *arg)
{
    if (period_ms <= 0 || fn == NULL) {
        l->tick_ms = 0;
        l->tick_fn = NULL;
        l->tick_arg = NULL;
        return;
    }
    l->tick_ms = period_ms;
    l->tick_fn = fn;
    l->tick_arg = arg;
    l->tick_next_ns = loop_now_ns() + (int64_t)period_ms * 1000000;
}

/* The backend's callback: runs from inside wait(), once per ready fd. */
static void loop_report(struct loop *l, int fd, int mask)
{
    struct loop_fd *f;
    int m;

    l->turn_events++;
    if (fd < 0 || fd >= l->setsize) {
        return;
    }
    f = &l->fds[fd];
    m = mask & f->mask;
    if (m == 0) {
        return;
    }
    f->fn(l, fd, m, f->arg);
}

/* Milliseconds until the next tick, rounded up so that we never wake just
 * before the deadline and spin; -1 without a tick. */
static int loop_timeout_ms(const struct loop *l, int64_t now)
{
    int64_t left;

    if (l->tick_ms == 0) {
        return -1;
    }
    left = l->tick_next_ns - now;
    if (left <= 0) {
        return 0;
    }
    left = (left + 999999) / 1000000;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static void loop_run_tick(struct loop *l, int64_t now)
{
    int64_t period = (int64_t)l->tick_ms * 1000000;

    if (l->tick_ms == 0 || now < l->tick_next_ns) {
        return;
    }
    /* Set the next deadline before calling fn, which may call loop_set_tick.
     * After a stall, skip the missed ticks rather than run them in a burst. */
    l->tick_next_ns += period;
    if (l->tick_next_ns <= now) {
        l->tick_next_ns = now + period;
    }
    l->tick_fn(l, l->tick_arg);
}

/* After a turn that found only a few ready fds, sleeps coalesce_ms before
 * the next wait, so that the wait finds the requests of those milliseconds
 * together: at a moderate rate each wake-up of a thread costs more than the
 * request it is for. A busy turn (LOOP_COALESCE_EVENTS or more) and an idle
 * one (a tick's timeout) go straight back to waiting. */
static void loop_doze(struct loop *l)
{
    if (l->coalesce_ms == 0 || l->turn_events == 0 || l->turn_events >= LOOP_COALESCE_EVENTS) {
        return;
    }
    struct timespec ts = {.tv_sec = l->coalesce_ms / 1000,
                          .tv_nsec = (long)(l->coalesce_ms % 1000) * 1000000};
    /* An interrupted doze is only a shorter one. */
    nanosleep(&ts, NULL);
}

int loop_run(struct loop *l)
{
    l->stop = false;
    while (!l->stop) {
        if (l->before_wait_fn) {
            l->before_wait_fn(l, l->before_wait_arg);
        }
        loop_doze(l);
        l->turn_events = 0;
        int rc = l->be->wait(l->state, loop_timeout_ms(l, loop_now_ns()), l, loop_report);
        if (rc < 0) {
            return MK_EIO;
        }
        if (!l->stop) {
            loop_run_tick(l, loop_now_ns());
        }
    }
    return 0;
}

void loop_set_before_wait(struct loop *l, void (*fn)(struct loop *l, void *arg), void *arg)
{
    l->before_wait_fn = fn;
    l->before_wait_arg = arg;
}

void loop_set_coalesce(struct loop *l, int ms)
{
    l->coalesce_ms = ms < 0 ? 0 : ms;
}

void loop_stop(struct loop *l)
{
    l->stop = true;
}
