/* auth/whitelist.h: the client whitelist, matched on peer_id prefixes (BEP 20).
 *
 * Owns: the shared list (replaced whole on load and reload, with a version
 * number) and each worker's private copy of it. A worker checks one atomic
 * version per announce and copies the list only when it changed, so matching
 * takes no lock.
 */
#ifndef MIKA_AUTH_WHITELIST_H
#define MIKA_AUTH_WHITELIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct whitelist;

struct whitelist *whitelist_new(void);
void whitelist_free(struct whitelist *wl);

/* Replaces the list with a copy of rows[0..n) and bumps the version. */
int whitelist_replace(struct whitelist *wl, const struct whitelist_row *rows, size_t n);
size_t whitelist_count(struct whitelist *wl);

/* A worker's private copy. */
struct whitelist_view {
    uint64_t version;
    struct whitelist_row *rows; /* owned */
    size_t n;
};

void whitelist_view_init(struct whitelist_view *v);
void whitelist_view_fini(struct whitelist_view *v);
/* Copies the shared list if its version moved; MK_ENOMEM keeps the old copy. */
int whitelist_view_refresh(struct whitelist_view *v, struct whitelist *wl);
/* The longest prefix that starts peer_id, or NULL if none does. */
const struct whitelist_row *whitelist_match(const struct whitelist_view *v,
                                            const uint8_t peer_id[20]);

#endif /* MIKA_AUTH_WHITELIST_H */
