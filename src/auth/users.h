/* auth/users.h: registered users by passkey, in memory.
 *
 * Owns: a hash table from passkey to user, split into shards with one mutex
 * each (held for a lookup's few instructions; no global lock on the hot path).
 * Not here: loading from the store (serve.c, and auth/resolver.c for a
 * passkey not in memory), the API's changes (issue 4).
 * Lookups copy the user out, so no pointer into the table escapes a lock.
 */
#ifndef MIKA_AUTH_USERS_H
#define MIKA_AUTH_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct user_info {
    uint32_t id;
    bool enabled;
    bool can_download;
    uint32_t class_up, class_down;       /* per-mille; 1000 when the row had none */
    uint32_t personal_up, personal_down;
};

struct users;

/* nshards rounded up to a power of two (0 means 64). NULL on ENOMEM. */
struct users *users_new(uint32_t nshards);
void users_free(struct users *u);

/* Copies the user with this passkey into *out; false if there is none. */
bool users_find(struct users *u, const char *passkey, size_t len, struct user_info *out);

/* Inserts or updates the user keyed by row->passkey, stamped with generation.
 * MK_EINVAL for an empty or over-long passkey, MK_ENOMEM. */
int users_put(struct users *u, const struct user_row *row, uint32_t generation);

/* After a reload with this generation: removes users not seen in it (so a
 * rotated or deleted passkey stops working). Returns how many. */
uint32_t users_sweep(struct users *u, uint32_t generation);

size_t users_count(struct users *u);

/* Removes the user with this passkey at once (the admin API: rotation and
 * deletion); false if there is none. */
bool users_remove(struct users *u, const char *passkey, size_t len);

/* Removes user id under every passkey but keep (NULL: every one): what
 * another node's rotation or deletion leaves here, where the old passkey is
 * not known. O(users), one shard lock at a time; never on the hot path.
 * Returns how many entries went. */
uint32_t users_remove_id(struct users *u, uint32_t id, const char *keep);

#endif /* MIKA_AUTH_USERS_H */
