/* net/loop_poll.c: the poll(2) backend of the event loop (anywhere POSIX).
 *
 * Owns: a dense pollfd array (one slot per watched fd, swap-remove) and the
 * map fd -> slot, so adding and removing are O(1); each wait costs
 * O(watched fds), which is why epoll/kqueue are preferred where they exist.
 * Not here: the fd table and dispatch (loop.c).
 * Invariants: slot[pfds[i].fd] == i for every i < n, slot[fd] == -1 for
 * unwatched fds. wait() copies the ready fds out before reporting any, since
 * a handler may add or remove fds and so reorder pfds.
 */
#include "net/loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

struct loop_poll_ready {
    int fd;
    int mask;
};

struct loop_poll {
    int setsize;
    nfds_t n;
    struct pollfd *pfds;            /* [setsize], first n in use */
    int *slot;                      /* [setsize] */
    struct loop_poll_ready *ready;  /* [setsize] */
};

static void loop_poll_destroy(void *state)
{
    struct loop_poll *s = state;

    free(s->pfds);
    free(s->slot);
    free(s->ready);
    free(s);
}

static int loop_poll_create(void **state, int setsize)
{
    struct loop_poll *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return MK_ENOMEM;
    }
    s->setsize = setsize;
    s->pfds = calloc((size_t)setsize, sizeof(*s->pfds));
    s->slot = calloc((size_t)setsize, sizeof(*s->slot));
    s->ready = calloc((size_t)setsize, sizeof(*s->ready));
    if (s->pfds == NULL || s->slot == NULL || s->ready == NULL) {
        loop_poll_destroy(s);
        return MK_ENOMEM;
    }
    for (int i = 0; i < setsize; i++) {
        s->slot[i] = -1;
    }
    *state = s;
    return 0;
}

static short loop_poll_events(int mask)
{
    return (short)(((mask & LOOP_READ) ? POLLIN : 0) | ((mask & LOOP_WRITE) ? POLLOUT : 0));
}

static int loop_poll_set(void *state, int fd, int old_mask, int new_mask)
{
    struct loop_poll *s = state;
    int i;

    if (fd < 0 || fd >= s->setsize) {
        return MK_ELIMIT;
    }
    i = s->slot[fd];
    if (new_mask == 0) {
        if (i >= 0) {
            nfds_t last = s->n - 1;
            s->pfds[i] = s->pfds[last];
            s->slot[s->pfds[i].fd] = i;
            s->slot[fd] = -1;
            s->n = last;
        }
        return 0;
    }
    if (i < 0) {
        i = (int)s->n++;
        s->slot[fd] = i;
        s->pfds[i].fd = fd;
    }
    s->pfds[i].events = loop_poll_events(new_mask);
    s->pfds[i].revents = 0;
    return 0;
}

static int loop_poll_wait(void *state, int timeout_ms, struct loop *l,
                          void (*report)(struct loop *l, int fd, int mask))
{
    struct loop_poll *s = state;
    int nready = poll(s->pfds, s->n, timeout_ms);
    int k = 0;

    if (nready < 0) {
        return errno == EINTR ? 0 : MK_EIO;
    }
    for (nfds_t i = 0; i < s->n && k < nready; i++) {
        short re = s->pfds[i].revents;
        int mask = 0;

        if (re == 0) {
            continue;
        }
        if (re & POLLIN) {
            mask |= LOOP_READ;
        }
        if (re & POLLOUT) {
            mask |= LOOP_WRITE;
        }
        /* As in loop_epoll.c: the owner sees errors through whichever of
         * read/write it watches. POLLNVAL means it closed fd before
         * loop_del; reporting it lets the owner notice instead of spinning
         * silently. */
        if (re & (POLLERR | POLLHUP | POLLNVAL)) {
            mask |= LOOP_READ | LOOP_WRITE;
        }
        s->ready[k].fd = s->pfds[i].fd;
        s->ready[k].mask = mask;
        k++;
    }
    for (int j = 0; j < k; j++) {
        report(l, s->ready[j].fd, s->ready[j].mask);
    }
    return 0;
}

const struct loop_backend loop_backend_poll = {
    .name = "poll",
    .create = loop_poll_create,
    .destroy = loop_poll_destroy,
    .set = loop_poll_set,
    .wait = loop_poll_wait,
    .close_forgets = false,
};
