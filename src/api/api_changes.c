/* api/api_changes.c: the admin API's side of a cluster.
 *
 * Owns: publishing a notice after each stored change (api_publish), and
 * applying another node's notice (api_apply_change): the row is re-read
 * from the store and put in memory through the same helpers the API's own
 * writes use, so a change made on any node looks the same on every node.
 * Not here: the notices' transport (cluster/changes.c).
 * Invariants: both run with a->mu held for the read and the memory update,
 * so a remote change and a local write to the same object apply in memory
 * in the order the store saw them. A notice only names what to re-read:
 * applying one twice, or one that was never published, is harmless.
 */
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "auth/users.h"
#include "cluster/changes.h"
#include "swarm/torrents.h"
#include "util/log.h"

void api_publish(struct api *a, enum change_kind kind, uint32_t id, const uint8_t *info_hash)
{
    if (a->changes) {
        (void)changes_publish(a->changes, kind, id, info_hash);
    }
}

/* A user created, changed, rotated or deleted elsewhere. */
static int api_change_user(struct api *a, uint32_t id, struct mk_errbuf *eb)
{
    struct user_rec u;
    int rc = store_user_get(&a->store, id, &u, eb);
    if (rc == MK_ENOTFOUND) {
        uint32_t gone = users_remove_id(a->tracker->users, id, NULL);
        uint32_t peers = torrents_remove_user(a->tracker->torrents, id);
        mk_log(MK_LOG_INFO, "cluster", "user %u deleted (%u passkeys, %u peers removed)", id,
               gone, peers);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    api_users_apply(a, &u);
    /* A rotated passkey: the old one is not known here, only that it is
     * no longer this user's. */
    users_remove_id(a->tracker->users, id, u.row.passkey);
    return 0;
}

static int api_change_torrent(struct api *a, const uint8_t ih[20], struct mk_errbuf *eb)
{
    struct torrent_rec t;
    int rc = store_torrent_get(&a->store, ih, &t, eb);
    if (rc == MK_ENOTFOUND) {
        return 0; /* torrents are only ever marked deleted, never removed */
    }
    if (rc != 0) {
        return rc;
    }
    api_torrents_apply(a, &t);
    if (t.row.deleted) {
        torrents_clear_peers(a->tracker->torrents, ih);
    }
    return 0;
}

struct api_token_find {
    const uint8_t *info_hash;
    struct token_row found;
    bool has;
};

static int api_token_match(const struct token_row *row, void *arg)
{
    struct api_token_find *f = arg;
    if (memcmp(row->info_hash, f->info_hash, 20) == 0) {
        f->found = *row;
        f->has = true;
    }
    return 0;
}

static int api_change_token(struct api *a, uint32_t user_id, const uint8_t ih[20],
                            struct mk_errbuf *eb)
{
    struct api_token_find f = {.info_hash = ih};
    int rc = store_load_tokens(&a->store, user_id, (int64_t)time(NULL), api_token_match, &f, eb);
    if (rc == MK_ENOTSUP) {
        return 0; /* a backend without tokens: nobody has one */
    }
    if (rc != 0) {
        return rc;
    }
    if (!f.has) {
        torrents_drop_token(a->tracker->torrents, ih, user_id);
        return 0;
    }
    struct torrent_token tok = {f.found.user_id, f.found.up_mult, f.found.down_mult,
                                f.found.expires};
    return torrents_set_token(a->tracker->torrents, ih, &tok);
}

int api_apply_change(struct api *a, const struct change *c, struct mk_errbuf *eb)
{
    int rc;
    pthread_mutex_lock(&a->mu);
    switch (c->kind) {
    case CHANGE_USER:
        rc = api_change_user(a, c->id, eb);
        break;
    case CHANGE_CLASS:
        /* A deleted class has no users left; a changed one re-puts them. */
        rc = api_users_refresh_class(a, c->id, eb);
        break;
    case CHANGE_TORRENT:
        rc = api_change_torrent(a, c->info_hash, eb);
        break;
    case CHANGE_WHITELIST:
        rc = api_whitelist_refresh(a, eb);
        break;
    case CHANGE_SETTINGS:
        rc = api_settings_load(a, eb);
        break;
    case CHANGE_TOKEN:
        rc = api_change_token(a, c->id, c->info_hash, eb);
        break;
    default:
        rc = mk_fail(eb, MK_EINVAL, "unknown change kind");
        break;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int api_reload_settings(struct api *a, struct mk_errbuf *eb)
{
    pthread_mutex_lock(&a->mu);
    int rc = api_settings_load(a, eb);
    pthread_mutex_unlock(&a->mu);
    return rc;
}
