/* cluster/change.h: the change notice nodes of a cluster send each other.
 *
 * Owns: struct change (who changed what) and its text form, the payload of
 * PostgreSQL's NOTIFY mika_changes and Redis's PUBLISH mika:changes:
 *
 *   <origin node>:<kind>[:<key>]
 *   1:user:42   1:class:3   1:torrent:<40 hex>   1:token:42:<40 hex>
 *   1:whitelist   1:settings
 *
 * A notice says only what to re-read; the row itself always comes from the
 * store, so a notice can be repeated, reordered or forged into nothing worse
 * than a re-read. Pure code: no I/O, no globals.
 */
#ifndef MIKA_CLUSTER_CHANGE_H
#define MIKA_CLUSTER_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

enum change_kind {
    CHANGE_USER = 1,  /* id: the user (created, changed, rotated or deleted) */
    CHANGE_CLASS,     /* id: the class; its users' multipliers and rights follow it */
    CHANGE_TORRENT,   /* info_hash: the torrent (created, changed or deleted) */
    CHANGE_WHITELIST, /* the whole client whitelist */
    CHANGE_SETTINGS,  /* live settings, the site-wide event, per-torrent selections */
    CHANGE_TOKEN,     /* id: the user, info_hash: the torrent of a freeleech token */
};

struct change {
    uint16_t origin;          /* the node that made the change, 1..65535 */
    enum change_kind kind;
    uint32_t id;              /* user or class id */
    uint8_t info_hash[20];
};

/* Longer than any payload change_put writes ("65535:token:4294967295:" + 40). */
#define CHANGE_PAYLOAD_MAX 96

/* Writes c's text form, NUL-terminated, into out (cap bytes): its length, or
 * MK_EINVAL for an unknown kind or origin 0, MK_ELIMIT when cap is too small. */
int change_put(const struct change *c, char *out, size_t cap);

/* Parses len bytes of a payload (outside bytes: another node, or anyone who
 * can NOTIFY) into *out. MK_EINVAL with eb naming the part that is wrong. */
int change_parse(const char *s, size_t len, struct change *out, struct mk_errbuf *eb);

/* "user", "class", ...; "?" for an unknown kind. */
const char *change_kind_name(enum change_kind kind);

#endif /* MIKA_CLUSTER_CHANGE_H */
