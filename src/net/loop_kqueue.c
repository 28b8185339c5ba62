/* net/loop_kqueue.c: the kqueue(2) backend of the event loop (BSDs, macOS).
 *
 * Owns: one kqueue and the buffer kevent() fills.
 * Not here: the fd table and dispatch (loop.c).
 * Invariants: interest in reading and writing are two separate filters
 * (EVFILT_READ, EVFILT_WRITE), added and deleted one at a time so that a
 * failing change is known exactly. Filters are level-triggered (no
 * EV_CLEAR), like the epoll backend. A ready fd may come back as two events,
 * one per filter; loop.c re-checks interest per event, so that is harmless.
 * CMake builds this file only where kqueue exists; the #ifdef makes a stray
 * compile elsewhere an empty translation unit.
 */
#ifdef MIKA_HAVE_KQUEUE

#include "net/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

/* Events taken per wait; more ready filters are reported next turn. */
#define LOOP_KQUEUE_BATCH 256

struct loop_kqueue {
    int kq;
    struct kevent events[LOOP_KQUEUE_BATCH];
};

static int loop_kqueue_create(void **state, int setsize)
{
    struct loop_kqueue *s = malloc(sizeof(*s));

    if (s == NULL) {
        return MK_ENOMEM;
    }
    s->kq = kqueue();
    if (s->kq < 0) {
        free(s);
        return MK_EIO;
    }
    *state = s;
    return 0;
}

static void loop_kqueue_destroy(void *state)
{
    struct loop_kqueue *s = state;

    close(s->kq);
    free(s);
}

static int loop_kqueue_change(int kq, int fd, int filter, int flags)
{
    struct kevent ch;

    EV_SET(&ch, fd, filter, flags, 0, 0, NULL);
    return kevent(kq, &ch, 1, NULL, 0, NULL) == 0 ? 0 : MK_EIO;
}

static int loop_kqueue_set(void *state, int fd, int old_mask, int new_mask)
{
    struct loop_kqueue *s = state;
    int add = new_mask & ~old_mask;
    int del = old_mask & ~new_mask;

    /* Deletes fail harmlessly when fd was closed first: close(2) already
     * removed its filters. */
    if (del & LOOP_READ) {
        (void)loop_kqueue_change(s->kq, fd, EVFILT_READ, EV_DELETE);
    }
    if (del & LOOP_WRITE) {
        (void)loop_kqueue_change(s->kq, fd, EVFILT_WRITE, EV_DELETE);
    }
    if ((add & LOOP_READ) && loop_kqueue_change(s->kq, fd, EVFILT_READ, EV_ADD) < 0) {
        return MK_EIO;
    }
    if ((add & LOOP_WRITE) && loop_kqueue_change(s->kq, fd, EVFILT_WRITE, EV_ADD) < 0) {
        /* Undo the read half so the kernel holds what loop.c believes. */
        if (add & LOOP_READ) {
            (void)loop_kqueue_change(s->kq, fd, EVFILT_READ, EV_DELETE);
        }
        return MK_EIO;
    }
    return 0;
}

static int loop_kqueue_wait(void *state, int timeout_ms, struct loop *l,
                            void (*report)(struct loop *l, int fd, int mask))
{
    struct loop_kqueue *s = state;
    struct timespec ts;
    struct timespec *tsp = NULL;
    int n;

    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    n = kevent(s->kq, NULL, 0, s->events, LOOP_KQUEUE_BATCH, tsp);
    if (n < 0) {
        return errno == EINTR ? 0 : MK_EIO;
    }
    for (int i = 0; i < n; i++) {
        const struct kevent *e = &s->events[i];
        int mask = 0;

        /* EV_EOF needs nothing extra: the owner's read sees end of file,
         * its write sees EPIPE. EV_ERROR goes to whichever it watches. */
        if (e->flags & EV_ERROR) {
            mask = LOOP_READ | LOOP_WRITE;
        } else if (e->filter == EVFILT_READ) {
            mask = LOOP_READ;
        } else if (e->filter == EVFILT_WRITE) {
            mask = LOOP_WRITE;
        }
        if (mask != 0) {
            report(l, (int)e->ident, mask);
        }
    }
    return 0;
}

const struct loop_backend loop_backend_kqueue = {
    .name = "kqueue",
    .create = loop_kqueue_create,
    .destroy = loop_kqueue_destroy,
    .set = loop_kqueue_set,
    .wait = loop_kqueue_wait,
    .close_forgets = true,
};

#endif /* MIKA_HAVE_KQUEUE */
