/* api/api.h: the admin REST API (JSON over HTTPS) as the daemon sees it.
 *
 * Owns: starting and stopping the API server: its own port, its own threads
 * (libmicrohttpd), its own store connection, its TLS certificate and bearer
 * keys (generated into api.data_dir when the config names none).
 * Not here: answering announces (net/), the books (acct/). The routes and
 * their JSON are in api_*.c; docs/api.yaml is their contract.
 * Invariant: a change is written to the store before it is applied in
 * memory, and both happen before the 2xx answer leaves.
 */
#ifndef MIKA_API_API_H
#define MIKA_API_API_H

#include <stdatomic.h>
#include <stdint.h>

#include "conf/config.h"
#include "store/store.h"
#include "net/tracker.h"
#include "util/err.h"

/* What the API reaches into; all borrowed and alive until api_stop. */
struct api_deps {
    const struct mk_config *cfg;
    struct tracker *tracker;              /* live settings, users, torrents, whitelist */
    const _Atomic uint32_t *generation;   /* serve.c's load generation, for the *_put calls */
    const struct store_place *places;     /* [3]: where users, torrents and peers live */
    struct changes *changes;              /* cluster/changes.h; NULL on a single node */
};

struct api;

/* Opens the API's store connection, loads stored live settings into the
 * tracker, prepares certificate and keys, and starts listening. *out is NULL
 * and 0 is returned when api.enabled is false. A port that cannot be bound is
 * MK_EUNAVAIL (the caller decides whether that is fatal); unusable
 * certificate, key or store files are other errors. */
int api_start(struct api **out, const struct api_deps *deps, struct mk_errbuf *eb);

/* Stops accepting, finishes the requests in flight, closes the store.
 * NULL is a no-op. */
void api_stop(struct api *a);

struct change;
/* Applies another node's change notice to memory exactly as this node's own
 * API would after storing it: re-reads the row from the store and puts it
 * (or removes it), with the API's lock held so it orders with local writes.
 * Called from the cluster's listener thread. 0, or an mk_err (the store is
 * unavailable: the caller reloads later). */
int api_apply_change(struct api *a, const struct change *c, struct mk_errbuf *eb);
/* Reloads the live settings (interval, event, selections) from the store. */
int api_reload_settings(struct api *a, struct mk_errbuf *eb);

#endif /* MIKA_API_API_H */
