/* cli/cli_http.h: one HTTPS request to the admin API, through libcurl.
 *
 * Owns: the TLS policy of the client side (TLS 1.2 or newer, the peer's
 * certificate verified against the configured CA file or the system store,
 * host name checked, no redirects followed, https only), the bearer header,
 * and a bounded response buffer.
 * Not here: what the request means (cli_actions.c) or how answers are shown
 * (cli_out.c).
 * Invariant: the API key goes into the Authorization header and nowhere else:
 * never into a message, a log line or curl's verbose output.
 */
#ifndef MIKA_CLI_CLI_HTTP_H
#define MIKA_CLI_CLI_HTTP_H

#include <stddef.h>

#include "util/err.h"

/* Largest answer the client accepts; lists are paginated well below this. */
#define CLI_HTTP_MAX_RESPONSE (32u << 20)

struct cli_http_cfg {
    char url[512];     /* base URL, no trailing slash: https://127.0.0.1:34001 */
    char key[512];     /* bearer key; "" sends no Authorization header */
    char cacert[4096]; /* PEM file of trusted certificates; "" = the system store */
    long timeout_s;    /* whole request; 0 = 30 s */
};

struct cli_http_resp {
    long status;             /* HTTP status */
    char *body;              /* NUL-terminated, owned: cli_http_resp_fini() frees it */
    size_t len;              /* bytes of body, NUL excluded */
    char content_type[128];  /* "" if the server sent none */
};

/* Process-wide libcurl set-up; call once before any thread exists, and
 * cli_http_global_fini() at exit. */
int cli_http_global_init(struct mk_errbuf *eb);
void cli_http_global_fini(void);

/* Sends method path (appended to cfg->url; already percent-encoded) with an
 * optional body of ctype, and fills out. Any HTTP status is a success here:
 * the caller decides what a 4xx means. Fails with MK_EUNAVAIL (cannot connect,
 * TLS failure, timeout; eb says which, with curl's reason), MK_ELIMIT (answer
 * over CLI_HTTP_MAX_RESPONSE), MK_EINVAL (URL not https) or MK_ENOMEM. On
 * failure out holds nothing to free. */
int cli_http_request(const struct cli_http_cfg *cfg, const char *method, const char *path,
                     const char *ctype, const void *body, size_t body_len,
                     struct cli_http_resp *out, struct mk_errbuf *eb);

/* Frees out's body; safe on a zeroed or already finished struct. */
void cli_http_resp_fini(struct cli_http_resp *out);

#endif /* MIKA_CLI_CLI_HTTP_H */
