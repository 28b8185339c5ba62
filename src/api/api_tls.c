/* api/api_tls.c: the admin API's certificate, its key, and the bearer keys.
 *
 * Owns: reading PEM and key files (bounded by API_TLS_PEM_MAX), generating a
 * self-signed certificate with GnuTLS's x509 API, generating the bearer key
 * file, writing files mode 0600 via a temporary name and rename(2), and the
 * constant-time key check.
 * Not here: TLS itself (libmicrohttpd runs GnuTLS with these PEMs).
 * Invariant: never logs a key; logs file paths and the fingerprint only.
 */
#include "api/api_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define API_TLS_VALID_SECONDS (10LL * 365 * 86400 + 3 * 86400) /* 10 years and leap days */
#define API_TLS_BEARER_LEN 40
#define API_TLS_KEY_MIN 16
#define API_TLS_KEY_MAX 128

static int api_tls_gnutls_fail(struct mk_errbuf *eb, int rc, const char *what)
{
    return mk_fail(eb, MK_EIO, "tls: %s: %s", what, gnutls_strerror(rc));
}

/* Reads a whole file of at most API_TLS_PEM_MAX bytes, NUL-terminated. */
static int api_tls_read_file(const char *path, char **out, struct mk_errbuf *eb)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mk_fail(eb, MK_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    char *buf = malloc(API_TLS_PEM_MAX + 1);
    if (!buf) {
        fclose(f);
        return mk_fail(eb, MK_ENOMEM, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, API_TLS_PEM_MAX + 1, f);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err || n > API_TLS_PEM_MAX) {
        free(buf);
        return mk_fail(eb, err ? MK_EIO : MK_ELIMIT, "%s: %s", path,
                       err ? "read error" : "larger than 256 KiB");
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* Writes data to dir/name with mode 0600: a temporary file, then rename, so
 * a crash never leaves half a key behind. */
static int api_tls_write_file(const char *dir, const char *name, const char *data, size_t len,
                              struct mk_errbuf *eb)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return mk_fail(eb, MK_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return mk_fail(eb, MK_EIO, "%s: write: %s", tmp, strerror(e));
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mk_fail(eb, MK_EIO, "%s: %s", path, strerror(e));
    }
    return 0;
}

static bool api_tls_exists(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void api_tls_warn_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
        mk_log(MK_LOG_WARN, "api", "%s is readable by others (mode %03o); chmod 600 it", path,
               (unsigned)(st.st_mode & 0777));
    }
}

int api_tls_fingerprint(const char *pem, char *out, size_t cap, struct mk_errbuf *eb)
{
    gnutls_x509_crt_t crt;
    int rc = gnutls_x509_crt_init(&crt);
    if (rc < 0) {
        return api_tls_gnutls_fail(eb, rc, "certificate");
    }
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
    rc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    unsigned char fp[32];
    size_t fplen = sizeof(fp);
    if (rc >= 0) {
        rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fplen);
    }
    gnutls_x509_crt_deinit(crt);
    if (rc < 0) {
        return mk_fail(eb, MK_EINVAL, "tls: not a PEM certificate: %s", gnutls_strerror(rc));
    }
    if (cap < fplen * 3) {
        return mk_fail(eb, MK_ELIMIT, "tls: fingerprint buffer too small");
    }
    for (size_t i = 0; i < fplen; i++) {
        snprintf(out + 3 * i, 4, "%02X%s", fp[i], i + 1 < fplen ? ":" : "");
    }
    return 0;
}

/* The certificate's extensions: a self-signed CA for exactly this server, so
 * clients can use the file itself as their trust anchor. */
static int api_tls_fill_cert(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
    unsigned char serial[16];
    if (getrandom(serial, sizeof(serial), 0) != (ssize_t)sizeof(serial)) {
        return GNUTLS_E_RANDOM_FAILED;
    }
    serial[0] &= 0x7f; /* a positive serial number (RFC 5280) */
    static const unsigned char lo4[4] = {127, 0, 0, 1};
    static const unsigned char lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    time_t now = time(NULL);
    unsigned char kid[64];
    size_t kidlen = sizeof(kid);
    int rc = gnutls_x509_crt_set_version(crt, 3);
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_activation_time(crt, now - 3600);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_expiration_time(crt, now + API_TLS_VALID_SECONDS);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "mika", 4);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                                  GNUTLS_FSAN_APPEND);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, lo4, 4,
                                                  GNUTLS_FSAN_APPEND);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, lo6, 16,
                                                  GNUTLS_FSAN_APPEND);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_key(crt, key);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_basic_constraints(crt, 1, 0);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
                                                    GNUTLS_KEY_KEY_CERT_SIGN);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_get_key_id(crt, 0, kid, &kidlen);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_subject_key_id(crt, kid, kidlen);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_set_authority_key_id(crt, kid, kidlen);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
    }
    return rc;
}

int api_tls_generate(char **cert_pem, char **key_pem, struct mk_errbuf *eb)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
    const char *what = "key";
    int rc = gnutls_x509_privkey_init(&key);
    if (rc >= 0) {
        /* P-256: generated in a millisecond, accepted by every TLS client. */
        rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                          GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    }
    if (rc >= 0) {
        what = "certificate";
        rc = gnutls_x509_crt_init(&crt);
    }
    if (rc >= 0) {
        rc = api_tls_fill_cert(crt, key);
    }
    if (rc >= 0) {
        rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c);
    }
    if (rc >= 0) {
        rc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k);
    }
    if (crt) {
        gnutls_x509_crt_deinit(crt);
    }
    if (key) {
        gnutls_x509_privkey_deinit(key);
    }
    if (rc < 0) {
        gnutls_free(c.data);
        gnutls_free(k.data);
        return api_tls_gnutls_fail(eb, rc, what);
    }
    /* export2 data is not NUL-terminated: copy into strings. */
    *cert_pem = gnutls_malloc(c.size + 1);
    *key_pem = gnutls_malloc(k.size + 1);
    if (!*cert_pem || !*key_pem) {
        gnutls_free(*cert_pem);
        gnutls_free(*key_pem);
        gnutls_free(c.data);
        gnutls_free(k.data);
        return mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    memcpy(*cert_pem, c.data, c.size);
    (*cert_pem)[c.size] = '\0';
    memcpy(*key_pem, k.data, k.size);
    (*key_pem)[k.size] = '\0';
    gnutls_memset(k.data, 0, k.size);
    gnutls_free(c.data);
    gnutls_free(k.data);
    return 0;
}

static char *api_tls_strdup(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n + 1);
    }
    return p;
}

/* The generated pair in data_dir: reused when both files exist, written when
 * neither does; one without the other is an error (someone is mid-change). */
static int api_tls_load_generated(struct api_tls *tls, const char *dir, struct mk_errbuf *eb)
{
    bool have_cert = api_tls_exists(dir, API_TLS_CERT_FILE);
    bool have_key = api_tls_exists(dir, API_TLS_KEY_FILE);
    char cpath[4200], kpath[4200];
    snprintf(cpath, sizeof(cpath), "%s/%s", dir, API_TLS_CERT_FILE);
    snprintf(kpath, sizeof(kpath), "%s/%s", dir, API_TLS_KEY_FILE);
    if (have_cert != have_key) {
        return mk_fail(eb, MK_EINVAL, "%s exists without %s: remove it to generate a new pair",
                       have_cert ? cpath : kpath, have_cert ? kpath : cpath);
    }
    if (have_cert) {
        api_tls_warn_mode(kpath);
        int rc = api_tls_read_file(cpath, &tls->cert_pem, eb);
        return rc == 0 ? api_tls_read_file(kpath, &tls->key_pem, eb) : rc;
    }
    char *c, *k;
    int rc = api_tls_generate(&c, &k, eb);
    if (rc != 0) {
        return rc;
    }
    /* The key first: a certificate on disk always has its key beside it. */
    rc = api_tls_write_file(dir, API_TLS_KEY_FILE, k, strlen(k), eb);
    if (rc == 0) {
        rc = api_tls_write_file(dir, API_TLS_CERT_FILE, c, strlen(c), eb);
    }
    if (rc == 0) {
        tls->cert_pem = api_tls_strdup(c);
        tls->key_pem = api_tls_strdup(k);
        rc = tls->cert_pem && tls->key_pem ? 0 : mk_fail(eb, MK_ENOMEM, "out of memory");
    }
    gnutls_memset(k, 0, strlen(k));
    gnutls_free(c);
    gnutls_free(k);
    tls->generated = rc == 0;
    return rc;
}

static bool api_tls_key_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("-._~+/=", c) != NULL);
}

static int api_tls_add_key(struct api_tls *tls, const char *key, size_t len, const char *from,
                           struct mk_errbuf *eb)
{
    if (len < API_TLS_KEY_MIN || len > API_TLS_KEY_MAX) {
        return mk_fail(eb, MK_EINVAL, "%s: a key must be %d..%d characters", from,
                       API_TLS_KEY_MIN, API_TLS_KEY_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if (!api_tls_key_char((unsigned char)key[i])) {
            return mk_fail(eb, MK_EINVAL, "%s: a key has a character outside [A-Za-z0-9-._~+/=]",
                           from);
        }
    }
    if (tls->nkeys == API_TLS_MAX_KEYS) {
        return mk_fail(eb, MK_ELIMIT, "%s: more than %d keys", from, API_TLS_MAX_KEYS);
    }
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, key, len, tls->key_digests[tls->nkeys]);
    if (rc < 0) {
        return api_tls_gnutls_fail(eb, rc, "hash");
    }
    tls->nkeys++;
    return 0;
}

/* A random key of [A-Za-z0-9]: 40 characters, about 238 bits. */
static int api_tls_random_key(char *out, size_t len, struct mk_errbuf *eb)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t i = 0;
    while (i < len) {
        unsigned char buf[64];
        if (getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
            return mk_fail(eb, MK_EIO, "getrandom failed");
        }
        /* 248 = 4 * 62: rejecting larger bytes keeps every character equally likely. */
        for (size_t j = 0; j < sizeof(buf) && i < len; j++) {
            if (buf[j] < 248) {
                out[i++] = alphabet[buf[j] % 62];
            }
        }
    }
    out[len] = '\0';
    return 0;
}

static int api_tls_load_keys(struct api_tls *tls, const struct mk_config *cfg,
                             struct mk_errbuf *eb)
{
    const char *p = cfg->api_keys;
    p += strspn(p, " \t,");
    if (*p) {
        while (*p) {
            size_t len = strcspn(p, ",");
            size_t t = len;
            while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t')) {
                t--;
            }
            if (t > 0) {
                int rc = api_tls_add_key(tls, p, t, "api.keys", eb);
                if (rc != 0) {
                    return rc;
                }
            }
            p += len;
            p += strspn(p, " \t,");
        }
        return 0;
    }
    const char *dir = cfg->api_data_dir;
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, API_TLS_BEARER_FILE);
    if (!api_tls_exists(dir, API_TLS_BEARER_FILE)) {
        char key[API_TLS_BEARER_LEN + 2];
        int rc = api_tls_random_key(key, API_TLS_BEARER_LEN, eb);
        if (rc == 0) {
            key[API_TLS_BEARER_LEN] = '\n';
            rc = api_tls_write_file(dir, API_TLS_BEARER_FILE, key, API_TLS_BEARER_LEN + 1, eb);
        }
        gnutls_memset(key, 0, sizeof(key));
        if (rc != 0) {
            return rc;
        }
        mk_log(MK_LOG_INFO, "api", "wrote a new bearer key to %s (mode 0600)", path);
    }
    api_tls_warn_mode(path);
    char *text;
    int rc = api_tls_read_file(path, &text, eb);
    if (rc != 0) {
        return rc;
    }
    /* The first line, without its line end. */
    size_t len = strcspn(text, "\r\n");
    rc = api_tls_add_key(tls, text, len, path, eb);
    gnutls_memset(text, 0, strlen(text));
    free(text);
    return rc;
}

static int api_tls_mkdir(const char *dir, struct mk_errbuf *eb)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return mk_fail(eb, MK_EIO, "api.data_dir %s: %s", dir, strerror(errno));
    }
    return 0;
}

int api_tls_load(struct api_tls *tls, const struct mk_config *cfg, struct mk_errbuf *eb)
{
    memset(tls, 0, sizeof(*tls));
    int rc = 0;
    bool no_keys = cfg->api_keys[strspn(cfg->api_keys, " \t,")] == '\0';
    bool need_dir = cfg->api_cert[0] == '\0' || no_keys;
    if (need_dir) {
        rc = api_tls_mkdir(cfg->api_data_dir, eb);
    }
    if (rc == 0 && cfg->api_cert[0]) {
        rc = api_tls_read_file(cfg->api_cert, &tls->cert_pem, eb);
        if (rc == 0) {
            rc = api_tls_read_file(cfg->api_key, &tls->key_pem, eb);
        }
    } else if (rc == 0) {
        rc = api_tls_load_generated(tls, cfg->api_data_dir, eb);
    }
    if (rc == 0) {
        rc = api_tls_fingerprint(tls->cert_pem, tls->fingerprint, sizeof(tls->fingerprint), eb);
    }
    if (rc == 0) {
        rc = api_tls_load_keys(tls, cfg, eb);
    }
    if (rc != 0) {
        api_tls_fini(tls);
    }
    return rc;
}

void api_tls_fini(struct api_tls *tls)
{
    if (tls->key_pem) {
        gnutls_memset(tls->key_pem, 0, strlen(tls->key_pem));
    }
    free(tls->key_pem);
    free(tls->cert_pem);
    gnutls_memset(tls->key_digests, 0, sizeof(tls->key_digests));
    tls->key_pem = NULL;
    tls->cert_pem = NULL;
    tls->nkeys = 0;
}

bool api_tls_key_ok(const struct api_tls *tls, const char *key, size_t len)
{
    unsigned char d[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, key, len, d) < 0) {
        return false;
    }
    unsigned char any = 0;
    for (size_t i = 0; i < tls->nkeys; i++) {
        unsigned char diff = 0;
        for (size_t j = 0; j < sizeof(d); j++) {
            diff |= (unsigned char)(d[j] ^ tls->key_digests[i][j]);
        }
        /* 1 when this key matched, computed without a branch on diff. */
        any |= (unsigned char)(1u & ((unsigned)(diff - 1) >> 8));
    }
    return any != 0 && tls->nkeys > 0;
}
