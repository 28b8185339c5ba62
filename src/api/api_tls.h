/* api/api_tls.h: the admin API's certificate and bearer keys.
 *
 * Owns: loading the configured PEM files, or generating a self-signed
 * certificate and key (ECDSA P-256, CN mika, SAN localhost, 127.0.0.1, ::1,
 * valid 10 years) into data_dir on first start; loading or generating the
 * bearer key file; comparing a presented key in constant time.
 * Files in data_dir (what `mika client` reads): API_TLS_CERT_FILE,
 * API_TLS_KEY_FILE, API_TLS_BEARER_FILE, each written mode 0600 through a
 * temporary file and rename, never half-written.
 */
#ifndef MIKA_API_API_TLS_H
#define MIKA_API_API_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "util/err.h"

#define API_TLS_CERT_FILE "api-cert.pem"
#define API_TLS_KEY_FILE "api-key.pem"
#define API_TLS_BEARER_FILE "api.key"
#define API_TLS_MAX_KEYS 16
#define API_TLS_PEM_MAX (256 * 1024)

struct api_tls {
    char *cert_pem;             /* owned, NUL-terminated */
    char *key_pem;              /* owned, NUL-terminated */
    char fingerprint[96];       /* SHA-256 of the certificate (DER), "AB:CD:..." */
    bool generated;             /* written by this start */
    unsigned char key_digests[API_TLS_MAX_KEYS][32]; /* SHA-256 of each bearer key */
    size_t nkeys;
};

/* Fills tls from cfg: api.tls_cert/tls_key or data_dir's generated pair, and
 * api.keys or data_dir/api.key (generated when absent). MK_EIO naming the
 * file, MK_EINVAL for unusable contents. */
int api_tls_load(struct api_tls *tls, const struct mk_config *cfg, struct mk_errbuf *eb);
void api_tls_fini(struct api_tls *tls);

/* True when key[0..len) is one of the bearer keys. Hashes it and compares
 * with every configured digest without stopping early, so the time taken
 * does not depend on how much of which key matched. */
bool api_tls_key_ok(const struct api_tls *tls, const char *key, size_t len);

/* Writes a self-signed certificate and its key as PEM (for tests and the
 * first start). Caller frees both with gnutls_free(). */
int api_tls_generate(char **cert_pem, char **key_pem, struct mk_errbuf *eb);

/* SHA-256 fingerprint of the first certificate in pem, "AB:CD:...". */
int api_tls_fingerprint(const char *pem, char *out, size_t cap, struct mk_errbuf *eb);

#endif /* MIKA_API_API_TLS_H */
