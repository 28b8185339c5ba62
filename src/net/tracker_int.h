/* net/tracker_int.h: what the tracker's files share, and nothing else
 * includes.
 *
 * Owns: the failure kinds and their words, the reply writers both transports
 * answer through, and the steps of a request both run (who asks, the
 * announce itself, counting the answer). Contracts of net/tracker.h's
 * functions stay there.
 * Files: tracker.c (lifecycle, settings, the announce), tracker_http.c (the
 * HTTP routes), tracker_udp.c (BEP 15), tracker_stats.c (counters),
 * tracker_restore.c (peers from the store at start, and expiry).
 */
#ifndef MIKA_NET_TRACKER_INT_H
#define MIKA_NET_TRACKER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net/tracker.h"

/* Every refusal a client can get for a well-formed request, and its words.
 * Parameter errors are not here: the parser's message names the key. */
enum tracker_failure {
    FAIL_UNKNOWN_PASSKEY,
    FAIL_ACCOUNT_DISABLED,
    FAIL_NO_DOWNLOAD,
    FAIL_UNREGISTERED,
    FAIL_TORRENT_DISABLED,
    FAIL_CLIENT,
    FAIL_FAMILY_V4,
    FAIL_FAMILY_V6,
    FAIL_SWARM_FULL,
    FAIL_NOT_FOUND,
    FAIL_BOOKS,
    FAIL_LOOKUP,
};

/* A refusal whose text is none of tracker_failure_reasons (a bad parameter:
 * the parser's message) counts as bad_request. */
#define FAIL_BAD_REQUEST (FAIL_LOOKUP + 1)
_Static_assert(FAIL_BAD_REQUEST + 1 == TRACKER_FAILURE_KINDS,
               "TRACKER_FAILURE_KINDS counts every failure and bad_request");

/* tracker.c: the words of each enum tracker_failure. */
extern const char *const tracker_failure_reasons[FAIL_BAD_REQUEST];

/* Where an announce's answer goes and in which framing: a bencoded body
 * (HTTP) or a BEP 15 packet (UDP) for transaction tid. The announce logic is
 * one; only these writers differ. */
struct tracker_reply {
    struct bencode *b;
    bool udp;
    uint32_t tid;
};

/* tracker.c: the failure kind of a refusal's words: FAIL_BAD_REQUEST unless
 * they are one of tracker_failure_reasons. */
unsigned tracker_failure_kind_text(const char *text, size_t n);

/* tracker.c: appends n bytes written by a udp_put_* call; 0 means no room. */
void tracker_reply_udp_advance(struct bencode *b, size_t n);
/* tracker.c: a refusal in rp's framing; both return 200. */
int tracker_reply_failure_msg(struct tracker_reply *rp, const char *msg);
int tracker_reply_failure(struct tracker_reply *rp, enum tracker_failure f);

/* tracker.c: "/<passkey>/<action>" -> views; false when the path has
 * another shape. */
bool tracker_split_path(struct mk_str path, struct mk_str *passkey, struct mk_str *action);

/* tracker.c: a peer's key in its swarm, from its peer_id and user. */
uint64_t tracker_peer_identity(const struct tracker *t, const uint8_t peer_id[20],
                               uint32_t user_id);

/* tracker.c: the enabled user of passkey: true. Otherwise false, with
 * *status the answer's (a refusal written to rp, or TRACKER_PARKED). */
bool tracker_find_user(const struct tracker *t, struct tracker_local *l, struct mk_str passkey,
                       struct user_info *user, struct tracker_reply *rp, int *status);

/* tracker.c: an announce however it came: a is parsed, addr is the client's
 * address (the source, or what a trusted proxy saw). Both transports run
 * this; answers an HTTP status or TRACKER_PARKED. */
int tracker_announce(const struct tracker *t, struct tracker_local *l,
                     const struct user_info *user, struct announce_req a,
                     struct tracker_addr addr, struct tracker_reply *rp);

/* tracker_stats.c: counts one answer of either transport: its failure kind
 * (or TRACKER_FAILURE_KINDS), and an announce's latency from t0. */
void tracker_count_answer(struct tracker_local *l, unsigned kind, bool is_scrape,
                          const struct timespec *t0_p);

#endif /* MIKA_NET_TRACKER_INT_H */
