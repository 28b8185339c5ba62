/* util/notify.c: sd_notify(3) messages for systemd's Type=notify.
 *
 * Owns: the watchdog schedule and the text of each message.
 * Not here: when the daemon is ready or stopping (serve.c decides).
 * Without libsystemd (MIKA_HAVE_SYSTEMD unset: the BSDs, macOS) the same
 * functions compile to no-ops; the choice is made once, in send_state().
 */
#include "util/notify.h"

#include <stdio.h>

#if MIKA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static void send_state(const char *state)
{
    /* unset_environment = 0: threads started later read no environment of
     * ours, and unsetting would race with them. A failure (no manager, a
     * full socket) changes nothing for the tracker, so it is not reported. */
    (void)sd_notify(0, state);
}

static uint64_t watchdog_usec(void)
{
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
#else
static void send_state(const char *state)
{
    (void)state;
}

static uint64_t watchdog_usec(void)
{
    return 0;
}
#endif /* MIKA_HAVE_SYSTEMD */

void notify_init(struct notify *n)
{
    n->watchdog_ms = watchdog_usec() / 1000;
    n->next_ping_ms = 0;
}

void notify_ready(struct notify *n, const char *status)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status ? status : "serving");
    send_state(msg);
}

void notify_reloading(struct notify *n)
{
    send_state("RELOADING=1\nSTATUS=reloading users, torrents and the whitelist");
}

void notify_stopping(struct notify *n)
{
    send_state("STOPPING=1\nSTATUS=stopping: draining the books to the store");
}

void notify_tick(struct notify *n, int64_t now_ms)
{
    if (n->watchdog_ms == 0 || now_ms < n->next_ping_ms) {
        return;
    }
    send_state("WATCHDOG=1");
    n->next_ping_ms = now_ms + (int64_t)(n->watchdog_ms / 2);
}
