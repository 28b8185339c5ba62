/* net/sock.c: the tracker port's sockets. See sock.h. */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

/* TCP_NODELAY: answers are one write each, never to wait for Nagle. Linux
 * hands it down from the listener to every accepted socket, which spares a
 * setsockopt per connection (net/server.c sets it on each accepted socket
 * elsewhere). */
static void nodelay_on_listener(int fd)
{
#ifdef __linux__
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#else
    (void)fd;
#endif
}

int sock_bind_port(int family, int type, const char *bind_text, uint16_t port, const char *key,
                   struct mk_errbuf *eb)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        if (inet_pton(AF_INET, bind_text, &sin->sin_addr) != 1) {
            return mk_fail(eb, MK_EINVAL, "%s: \"%s\" is not an IPv4 address", key, bind_text);
        }
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, bind_text, &sin6->sin6_addr) != 1) {
            return mk_fail(eb, MK_EINVAL, "%s: \"%s\" is not an IPv6 address", key, bind_text);
        }
        len = sizeof(*sin6);
    }
    bool tcp = type == SOCK_STREAM;
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return mk_fail(eb, MK_EIO, "%s: socket: %s", key, strerror(errno));
    }
    int one = 1;
    if (tcp) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int e = errno;
        close(fd);
        return mk_fail(eb, MK_EIO, "%s: SO_REUSEPORT: %s", key, strerror(e));
    }
    if (tcp) {
        nodelay_on_listener(fd);
    }
    if (family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 || (tcp && listen(fd, LISTEN_BACKLOG) != 0)) {
        int e = errno;
        close(fd);
        return mk_fail(eb, MK_EIO, "%s: cannot %s [%s]:%u: %s", key,
                       tcp ? "listen on" : "bind UDP", bind_text, port, strerror(e));
    }
    return fd;
}
