/* cli/cli.h: `mika client`: drives the admin API from the command line.
 *
 * Owns: the global options (--url, --key, --key-file, --cacert, --config,
 * --json, --timeout, --help), where the connection settings come from, and
 * the exit codes: 0 done, 1 the API or the connection failed (one line on
 * stderr, with the API's error message), 2 a usage error.
 * Not here: the actions (cli_actions.c), HTTPS (cli_http.c), tables
 * (cli_out.c).
 * Invariant: the API key is never printed, in any message or mode.
 */
#ifndef MIKA_CLI_CLI_H
#define MIKA_CLI_CLI_H

#include <stdbool.h>

#include "cli/cli_http.h"
#include "util/err.h"

/* The connection settings given on the command line; NULL = not given. */
struct cli_flags {
    const char *url;
    const char *key;
    const char *key_file;
    const char *cacert;
    const char *config;
};

/* Fills cfg, each setting from the first source that has it:
 *   URL:  --url, MIKA_API_URL, https://<api.bind>:<api.port> from the config
 *         (0.0.0.0 and :: mean this machine: 127.0.0.1 and [::1]);
 *   key:  --key, --key-file, MIKA_API_KEY, the first of api.keys,
 *         <api.data_dir>/api.key (the key the daemon generates);
 *   CA:   --cacert, MIKA_API_CACERT, MIKA_API_CERT, api.tls_cert,
 *         <api.data_dir>/api-cert.pem
 *         when it exists (the daemon's self-signed certificate), else the
 *         system store.
 * The config is --config's file (or none) with the daemon's
 * MIKA_<SECTION>_<KEY> overrides from envp, read as `mika serve` reads it,
 * so both agree on port and data_dir; the client's own MIKA_API_URL,
 * MIKA_API_KEY, MIKA_API_CACERT and MIKA_API_CERT are not config keys and are
 * left out of that reading. With need_key false a missing key is not an error (GET
 * /health). Fails with MK_EINVAL/MK_EIO and a one-line message (a bad config,
 * an unreadable key file, no key anywhere). */
int cli_resolve(const struct cli_flags *fl, char *const *envp, bool need_key,
                struct cli_http_cfg *cfg, struct mk_errbuf *eb);

/* `mika client ...`: argv[0] is "client". Returns the exit code. */
int cli_main(int argc, char **argv);

#endif /* MIKA_CLI_CLI_H */
