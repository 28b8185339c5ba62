/* net/sock.h: the tracker's own sockets, bound to the port every worker shares.
 *
 * Owns: making one worker's socket for the tracker port, TCP (listening) or
 * UDP, IPv4 or IPv6, with the options both transports need: SO_REUSEPORT
 * (each worker binds its own socket to the same port and the kernel
 * spreads clients over them), IPV6_V6ONLY (IPv4 has its own socket, so a
 * v4 client is never seen as v4-mapped v6), non-blocking, close-on-exec.
 * Not here: accepting and reading (net/server.c, net/udp.c).
 */
#ifndef MIKA_NET_SOCK_H
#define MIKA_NET_SOCK_H

#include <stdint.h>

#include "util/err.h"

/* A socket of type SOCK_STREAM (listening, TCP_NODELAY handed down to what
 * it accepts where the system does so) or SOCK_DGRAM, of family AF_INET or
 * AF_INET6, bound to bind_text (an address literal) and port. Returns the
 * fd, or a negative MK_* with eb naming key (the config key of the address)
 * and what failed. */
int sock_bind_port(int family, int type, const char *bind_text, uint16_t port, const char *key,
                   struct mk_errbuf *eb);

#endif
