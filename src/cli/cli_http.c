/* cli/cli_http.c: one HTTPS request to the admin API through libcurl. See
 * cli_http.h for the policy; the key is copied into one header buffer that is
 * wiped before returning.
 */
#include "cli/cli_http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLI_HTTP_CONNECT_TIMEOUT_S 10L

struct cli_http_sink {
    char *buf;
    size_t len, cap;
    bool too_big;
    char content_type[128];
};

int cli_http_global_init(struct mk_errbuf *eb)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        return mk_fail(eb, MK_EUNAVAIL, "libcurl: %s", curl_easy_strerror(rc));
    }
    return MK_OK;
}

void cli_http_global_fini(void)
{
    curl_global_cleanup();
}

static size_t cli_http_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct cli_http_sink *s = arg;
    size_t n = size * nmemb;
    if (n > CLI_HTTP_MAX_RESPONSE - s->len) {
        s->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1) {
            cap *= 2;
        }
        if (cap > CLI_HTTP_MAX_RESPONSE + 1) {
            cap = CLI_HTTP_MAX_RESPONSE + 1;
        }
        char *nb = realloc(s->buf, cap);
        if (!nb) {
            return 0;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* Keeps Content-Type for the caller: an answer that is not JSON (a proxy's
 * HTML error page) is reported as such instead of as a parse error. */
static size_t cli_http_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct cli_http_sink *s = arg;
    size_t n = size * nmemb;
    static const char name[] = "content-type:";
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *v = data + sizeof(name) - 1;
        size_t vlen = n - (sizeof(name) - 1);
        while (vlen > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ')) {
            vlen--;
        }
        if (vlen >= sizeof(s->content_type)) {
            vlen = sizeof(s->content_type) - 1;
        }
        memcpy(s->content_type, v, vlen);
        s->content_type[vlen] = '\0';
    }
    return n;
}

/* curl_slist_append returns NULL on failure and keeps the list as it was. */
static bool cli_http_add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *next = curl_slist_append(*list, line);
    if (!next) {
        return false;
    }
    *list = next;
    return true;
}

/* A hint for the errors people actually hit, so the one-line message says
 * what to do next. */
static const char *cli_http_hint(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        return " (is `mika serve` running, with the API on this address?)";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return " (pass the daemon's certificate with --cacert, e.g. <data_dir>/api-cert.pem)";
    default:
        return "";
    }
}

int cli_http_request(const struct cli_http_cfg *cfg, const char *method, const char *path,
                     const char *ctype, const void *body, size_t body_len,
                     struct cli_http_resp *out, struct mk_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (strncasecmp(cfg->url, "https://", 8) != 0) {
        return mk_fail(eb, MK_EINVAL, "API URL must start with https:// (the key is a secret)");
    }
    size_t ulen = strlen(cfg->url) + strlen(path) + 1;
    char *url = malloc(ulen);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char auth[sizeof(cfg->key) + 32];
    char ctype_hdr[160];
    char errbuf[CURL_ERROR_SIZE] = "";
    struct cli_http_sink sink = {0};
    int rc = MK_OK;
    if (!url || !c) {
        rc = mk_fail(eb, MK_ENOMEM, "out of memory");
        goto out_free;
    }
    snprintf(url, ulen, "%s%s", cfg->url, path);

    bool ok = true;
    if (cfg->key[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->key);
        ok = cli_http_add_header(&hdrs, auth);
    }
    ok = ok && cli_http_add_header(&hdrs, "Accept: application/json");
    if (body) {
        snprintf(ctype_hdr, sizeof(ctype_hdr), "Content-Type: %s",
                 ctype ? ctype : "application/json");
        ok = ok && cli_http_add_header(&hdrs, ctype_hdr);
    }
    /* curl adds "Expect: 100-continue" to large uploads; the API answers at
     * once, so the wait buys nothing. */
    ok = ok && cli_http_add_header(&hdrs, "Expect:");
    if (!ok) {
        rc = mk_fail(eb, MK_ENOMEM, "out of memory");
        goto out_free;
    }

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cfg->cacert[0] != '\0') {
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->cacert);
    }
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CLI_HTTP_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, cfg->timeout_s > 0 ? cfg->timeout_s : 30L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mika-client/" MIKA_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, cli_http_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }

    CURLcode cr = curl_easy_perform(c);
    if (sink.too_big) {
        rc = mk_fail(eb, MK_ELIMIT, "answer larger than %u bytes", CLI_HTTP_MAX_RESPONSE);
        goto out_free;
    }
    if (cr != CURLE_OK) {
        rc = mk_fail(eb, MK_EUNAVAIL, "%s: %s%s", cfg->url,
                     errbuf[0] ? errbuf : curl_easy_strerror(cr), cli_http_hint(cr));
        goto out_free;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (!sink.buf) {
        sink.buf = calloc(1, 1);
        if (!sink.buf) {
            rc = mk_fail(eb, MK_ENOMEM, "out of memory");
            goto out_free;
        }
    }
    out->body = sink.buf;
    out->len = sink.len;
    sink.buf = NULL;
    memcpy(out->content_type, sink.content_type, sizeof(out->content_type));

out_free:
    free(sink.buf);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    free(url);
    explicit_bzero(auth, sizeof(auth));
    return rc;
}

void cli_http_resp_fini(struct cli_http_resp *out)
{
    free(out->body);
    out->body = NULL;
    out->len = 0;
}
