/* net/loop_epoll.c: the epoll(7) backend of the event loop (Linux).
 *
 * Owns: one epoll instance and the buffer epoll_wait fills.
 * Not here: the fd table and dispatch (loop.c).
 * Invariant: level-triggered, so an fd whose handler did not drain it is
 * reported again by the next wait; nothing here needs to remember it.
 */
#include "net/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Events taken per wait; more ready fds are simply reported next turn. */
#define LOOP_EPOLL_BATCH 256

struct loop_epoll {
    int epfd;
    struct epoll_event events[LOOP_EPOLL_BATCH];
};

static int loop_epoll_create(void **state, int setsize)
{
    struct loop_epoll *s = malloc(sizeof(*s));

    if (s == NULL) {
        return MK_ENOMEM;
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        free(s);
        return MK_EIO;
    }
    *state = s;
    return 0;
}

static void loop_epoll_destroy(void *state)
{
    struct loop_epoll *s = state;

    close(s->epfd);
    free(s);
}

static int loop_epoll_set(void *state, int fd, int old_mask, int new_mask)
{
    struct loop_epoll *s = state;
    struct epoll_event ev = {0};
    int op;

    if (new_mask == 0) {
        /* Fails harmlessly if fd was closed first: close already removed it. */
        return epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : MK_EIO;
    }
    ev.events = ((new_mask & LOOP_READ) ? EPOLLIN : 0) | ((new_mask & LOOP_WRITE) ? EPOLLOUT : 0);
    ev.data.fd = fd;
    op = old_mask == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(s->epfd, op, fd, &ev) == 0) {
        return 0;
    }
    /* The fd was closed and its number reused without a loop_del between:
     * the kernel dropped the old registration, so register afresh. */
    if (op == EPOLL_CTL_MOD && errno == ENOENT && epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
        return 0;
    }
    return MK_EIO;
}

static int loop_epoll_wait(void *state, int timeout_ms, struct loop *l,
                           void (*report)(struct loop *l, int fd, int mask))
{
    struct loop_epoll *s = state;
    int n = epoll_wait(s->epfd, s->events, LOOP_EPOLL_BATCH, timeout_ms);

    if (n < 0) {
        return errno == EINTR ? 0 : MK_EIO;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = s->events[i].events;
        int mask = 0;

        if (e & EPOLLIN) {
            mask |= LOOP_READ;
        }
        if (e & EPOLLOUT) {
            mask |= LOOP_WRITE;
        }
        /* Errors and hang-ups come whatever the interest: hand them to
         * whichever of read/write the fd watches, so its owner sees them and
         * a write-only watcher is not woken forever with nothing to do. */
        if (e & (EPOLLERR | EPOLLHUP)) {
            mask |= LOOP_READ | LOOP_WRITE;
        }
        report(l, s->events[i].data.fd, mask);
    }
    return 0;
}

const struct loop_backend loop_backend_epoll = {
    .name = "epoll",
    .create = loop_epoll_create,
    .destroy = loop_epoll_destroy,
    .set = loop_epoll_set,
    .wait = loop_epoll_wait,
    .close_forgets = true,
};
