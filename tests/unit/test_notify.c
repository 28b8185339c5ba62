/* tests/unit/test_notify.c: the sd_notify messages a Type=notify unit sees,
 * read from a datagram socket that stands in for systemd's $NOTIFY_SOCKET. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/notify.h"

struct fake_manager {
    int fd;
    char path[108];
};

static int setup(void **state)
{
    static struct fake_manager m;
    m.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(m.fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(m.path, sizeof(m.path), "/tmp/mika-test-notify-%ld", (long)getpid());
    unlink(m.path);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", m.path);
    assert_int_equal(bind(m.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setenv("NOTIFY_SOCKET", m.path, 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    *state = &m;
    return 0;
}

static int teardown(void **state)
{
    struct fake_manager *m = *state;
    close(m->fd);
    unlink(m->path);
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

/* The next datagram, or "" when none is waiting. */
static const char *next_msg(struct fake_manager *m)
{
    static char buf[512];
    ssize_t n = recv(m->fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

#if MIKA_HAVE_SYSTEMD
static void test_notify_ready_sends_ready_and_status(void **state)
{
    struct fake_manager *m = *state;
    struct notify n;
    notify_init(&n);
    notify_ready(&n, NULL);
    assert_string_equal(next_msg(m), "READY=1\nSTATUS=serving");
    notify_ready(&n, "serving 3 torrents");
    assert_string_equal(next_msg(m), "READY=1\nSTATUS=serving 3 torrents");
}

static void test_notify_reload_and_stop_messages(void **state)
{
    struct fake_manager *m = *state;
    struct notify n;
    notify_init(&n);
    notify_reloading(&n);
    assert_non_null(strstr(next_msg(m), "RELOADING=1\n"));
    notify_stopping(&n);
    assert_non_null(strstr(next_msg(m), "STOPPING=1\n"));
}

static void test_notify_watchdog_pings_every_half_interval(void **state)
{
    struct fake_manager *m = *state;
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    struct notify n;
    notify_init(&n);
    assert_int_equal(n.watchdog_ms, 200);
    notify_tick(&n, 1000);
    assert_string_equal(next_msg(m), "WATCHDOG=1");
    notify_tick(&n, 1050);
    assert_string_equal(next_msg(m), "");
    notify_tick(&n, 1100);
    assert_string_equal(next_msg(m), "WATCHDOG=1");
}

static void test_notify_watchdog_for_another_pid_is_off(void **state)
{
    struct fake_manager *m = *state;
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", "1", 1);
    struct notify n;
    notify_init(&n);
    assert_int_equal(n.watchdog_ms, 0);
    notify_tick(&n, 1000);
    assert_string_equal(next_msg(m), "");
}
#endif /* MIKA_HAVE_SYSTEMD */

static void test_notify_without_manager_is_silent(void **state)
{
    struct fake_manager *m = *state;
    unsetenv("NOTIFY_SOCKET");
    struct notify n;
    notify_init(&n);
    notify_ready(&n, NULL);
    notify_stopping(&n);
    notify_tick(&n, 1000);
    assert_int_equal(n.watchdog_ms, 0);
    assert_string_equal(next_msg(m), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#if MIKA_HAVE_SYSTEMD
        cmocka_unit_test_setup_teardown(test_notify_ready_sends_ready_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_reload_and_stop_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_watchdog_pings_every_half_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notify_watchdog_for_another_pid_is_off, setup,
                                        teardown),
#endif /* MIKA_HAVE_SYSTEMD */
        cmocka_unit_test_setup_teardown(test_notify_without_manager_is_silent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
