/* net/udp.h: one worker's UDP tracker sockets (BEP 15).
 *
 * Owns: the worker's SO_REUSEPORT UDP sockets (IPv4, IPv6), reading and
 * answering datagrams in batches (recvmmsg/sendmmsg on Linux), and
 * connection ids: a keyed MAC (SipHash) of the client's address (not its
 * port: libtorrent shares one id among all its sockets) under a key derived from the tracker's secret and the current window of
 * udp.connection_window seconds, accepted in that window and the next. No
 * per-client state is kept, and a spoofed source never sees its id, so it
 * gets no answer to anything but a connect (16 bytes for 16).
 * Not here: the answers' content (net/tracker_udp.c), packet layout (proto/udp.c).
 * Scrape: BEP 15's carries no passkey, so it is answered only for an
 * address that announced with a known passkey within a peer's lifetime
 * (a bounded per-worker table of address tags); others get "unknown
 * passkey", as HTTP answers a scrape without one.
 * Ordering rule (as server.c's): a batch's journal records are committed
 * before any of its answers is sent; if the commit fails, none is sent.
 * The miss path: a passkey or info_hash not in memory is handed to the
 * resolver (no cookie: nothing waits for it) and the datagram is answered
 * at once with "try again later"; the client's retry finds it in memory.
 * Invariant: used only by the worker thread that owns the loop.
 */
#ifndef MIKA_NET_UDP_H
#define MIKA_NET_UDP_H

#include "acct/journal.h"
#include "auth/resolver.h"
#include "net/loop.h"
#include "net/tracker.h"
#include "util/err.h"

struct udp_port;
struct guard; /* net/guard.h */

/* Binds the worker's UDP sockets (per cfg udp.*) and watches them in loop.
 * Borrows everything given. *out is NULL, with MK_OK, when UDP serves no
 * family. journal, inbox and guard may be NULL (no books, no resolver, no
 * passkey-guessing limit); with a guard, UDP announces count towards and
 * obey the same per-address limit as the worker's HTTP requests. */
int udp_port_new(struct udp_port **out, const struct tracker *t, struct tracker_local *local,
                 struct journal_writer *journal, struct resolver_inbox *inbox,
                 struct guard *guard, struct loop *loop, struct mk_errbuf *eb);
/* Stops watching and closes the sockets. NULL is a no-op. */
void udp_port_free(struct udp_port *u);

/* The connection id for a client at addr (family, ip) in window (exposed
 * for unit tests). */
uint64_t udp_connection_id(const struct tracker *t, uint32_t window,
                           const struct tracker_addr *addr);

#endif /* MIKA_NET_UDP_H */
