/* util/notify.h: telling the service manager how the daemon is doing.
 *
 * Under systemd with Type=notify ($NOTIFY_SOCKET set) these send READY=1,
 * RELOADING=1, STOPPING=1, STATUS=... and WATCHDOG=1 through libsystemd's
 * sd_notify(3). Without $NOTIFY_SOCKET, or in a build without libsystemd,
 * every call is a cheap no-op, so callers never test for systemd.
 * Safe from any thread; nothing here blocks (a datagram to a local socket).
 */
#ifndef MIKA_UTIL_NOTIFY_H
#define MIKA_UTIL_NOTIFY_H

#include <stdint.h>

struct notify {
    uint64_t watchdog_ms; /* 0: the manager wants no keep-alives */
    int64_t next_ping_ms; /* monotonic time of the next WATCHDOG=1 */
};

/* Reads $WATCHDOG_USEC (through sd_watchdog_enabled) once, at start-up. */
void notify_init(struct notify *n);
/* The stores are loaded and the ports are open: start-up is over. */
void notify_ready(struct notify *n, const char *status);
/* A SIGHUP reload begins; notify_ready() ends it. */
void notify_reloading(struct notify *n);
/* Shutdown began: the workers stop and the books drain. */
void notify_stopping(struct notify *n);
/* Called from the main loop at least every few hundred ms: sends WATCHDOG=1
 * once half the manager's interval has passed since the last one, so a hung
 * main thread (the one that reaps and reloads) gets the daemon restarted. */
void notify_tick(struct notify *n, int64_t now_ms);

#endif /* MIKA_UTIL_NOTIFY_H */
