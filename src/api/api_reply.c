/* api/api_reply.c: the admin API's JSON in and out.
 *
 * Owns: the error shape {"error": {"code", "message"}} and its codes, strict
 * reading of bodies (an object, known fields only, typed and bounded
 * values), query parameters, and the small codecs the routes share (hex,
 * multipliers, passkeys, whitelist prefix text).
 * Not here: what a route does (api_users.c, ...), HTTP (api_server.c).
 * Invariant: every message names the field or parameter at fault.
 */
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api/api_int.h"

void api_error(struct api_resp *out, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_decref(out->json);
    out->status = status;
    out->json = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

void api_ok(struct api_resp *out, int status, json_t *obj)
{
    json_decref(out->json);
    out->json = NULL;
    if (!obj) {
        api_error(out, 500, "internal", "out of memory");
        return;
    }
    out->status = status;
    out->json = obj;
}

void api_store_error(struct api_resp *out, int rc, const struct mk_errbuf *eb, const char *what)
{
    switch (rc) {
    case MK_ENOTFOUND:
        /* The store names a missing referenced row, or just the row. */
        if (strcmp(eb->msg, "class_id") == 0) {
            api_error(out, 404, "not_found", "class_id: no such class");
        } else {
            api_error(out, 404, "not_found", "%s not found", what);
        }
        return;
    case MK_EEXIST:
        api_error(out, 409, "conflict", "%s: already exists", eb->msg);
        return;
    case MK_EUNAVAIL:
        api_error(out, 503, "store_unavailable", "the store is busy, retry: %s", eb->msg);
        return;
    case MK_EINVAL:
        api_error(out, 400, "invalid_value", "%s", eb->msg);
        return;
    case MK_ELIMIT:
        /* A new row's id is picked above the highest: a client that gave a
         * row the top id (UINT32_MAX - 1) leaves none to pick. That is the
         * table's state, the client's to change (give an id, or remove that
         * row), not a fault of the server. Other limits are ours: 500. */
        if (strncmp(eb->msg, "id: ", 4) == 0) {
            api_error(out, 409, "conflict", "%s; give an id", eb->msg);
            return;
        }
        api_error(out, 500, "internal", "%s: %s", mk_err_name(rc), eb->msg);
        return;
    default:
        api_error(out, 500, "internal", "%s: %s", mk_err_name(rc), eb->msg);
        return;
    }
}

json_t *api_body(const struct api_req *r, bool allow_empty, const char *const *fields,
                 struct api_resp *out)
{
    size_t start = 0;
    while (start < r->len && strchr(" \t\r\n", r->body[start])) {
        start++;
    }
    if (start == r->len) {
        if (allow_empty) {
            return json_object();
        }
        api_error(out, 400, "missing_field", "body: a JSON object is required");
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err);
    if (!j) {
        api_error(out, 400, "malformed_json", "body: line %d column %d: %s", err.line, err.column,
                  err.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_error(out, 400, "wrong_type", "body: must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        bool known = false;
        for (const char *const *f = fields; *f && !known; f++) {
            known = strcmp(*f, key) == 0;
        }
        if (!known) {
            char shown[72];
            snprintf(shown, sizeof(shown), "%.64s%s", key, strlen(key) > 64 ? "..." : "");
            api_error(out, 400, "unknown_field", "%s: unknown field", shown);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

int api_get_bool(json_t *o, const char *key, bool *val, struct api_resp *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        api_error(out, 400, "wrong_type", "%s: must be true or false", key);
        return -1;
    }
    *val = json_is_true(v);
    return 1;
}

int api_get_u64(json_t *o, const char *key, uint64_t max, uint64_t *val, struct api_resp *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (!json_is_integer(v)) {
        api_error(out, 400, "wrong_type", "%s: must be an integer", key);
        return -1;
    }
    json_int_t n = json_integer_value(v);
    if (n < 0 || (uint64_t)n > max) {
        api_error(out, 400, "out_of_range", "%s: %lld is not within 0..%llu", key, (long long)n,
                  (unsigned long long)max);
        return -1;
    }
    *val = (uint64_t)n;
    return 1;
}

int api_get_u32(json_t *o, const char *key, uint32_t min, uint32_t max, uint32_t *val,
                struct api_resp *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (!json_is_integer(v)) {
        api_error(out, 400, "wrong_type", "%s: must be an integer", key);
        return -1;
    }
    json_int_t n = json_integer_value(v);
    if (n < (json_int_t)min || n > (json_int_t)max) {
        api_error(out, 400, "out_of_range", "%s: %lld is not within %u..%u", key, (long long)n,
                  min, max);
        return -1;
    }
    *val = (uint32_t)n;
    return 1;
}

int api_get_mult(json_t *o, const char *key, uint32_t *val, struct api_resp *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (!json_is_number(v)) {
        api_error(out, 400, "wrong_type", "%s: must be a number", key);
        return -1;
    }
    double d = json_number_value(v);
    if (!(d >= 0.0 && d <= (double)MK_MULT_MAX / MK_MULT_ONE)) {
        api_error(out, 400, "out_of_range", "%s: must be within 0..100", key);
        return -1;
    }
    double milli = d * MK_MULT_ONE;
    double r = round(milli);
    if (fabs(milli - r) > 1e-6) {
        api_error(out, 400, "out_of_range", "%s: at most 3 decimals", key);
        return -1;
    }
    *val = (uint32_t)r;
    return 1;
}

int api_get_str(json_t *o, const char *key, size_t max, bool nullable, const char **val,
                struct api_resp *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        return 0;
    }
    if (nullable && json_is_null(v)) {
        *val = NULL;
        return 1;
    }
    if (!json_is_string(v)) {
        api_error(out, 400, "wrong_type", "%s: must be a string%s", key,
                  nullable ? " or null" : "");
        return -1;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > max) {
        api_error(out, 400, "out_of_range", "%s: must be 1..%zu bytes", key, max);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            api_error(out, 400, "invalid_value", "%s: control characters are not allowed", key);
            return -1;
        }
    }
    *val = s;
    return 1;
}

/* ---- query parameters ------------------------------------------------------ */

struct api_query_scan {
    const char *const *allowed;
    const char *bad;
};

static enum MHD_Result api_query_visit(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct api_query_scan *s = cls;
    for (const char *const *a = s->allowed; *a; a++) {
        if (strcmp(*a, key) == 0) {
            return MHD_YES;
        }
    }
    s->bad = key;
    return MHD_NO;
}

int api_query_check(const struct api_req *r, const char *const *allowed, struct api_resp *out)
{
    struct api_query_scan s = {.allowed = allowed};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, api_query_visit, &s);
    if (s.bad) {
        api_error(out, 400, "unknown_field", "%.64s: unknown query parameter", s.bad);
        return -1;
    }
    return 0;
}

const char *api_query_str(const struct api_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

int api_query_u64(const struct api_req *r, const char *key, uint64_t min, uint64_t max,
                  uint64_t *val, struct api_resp *out)
{
    const char *s = api_query_str(r, key);
    if (!s) {
        return 0;
    }
    uint64_t n = 0;
    bool ok = *s != '\0' && strlen(s) <= 20;
    for (const char *p = s; ok && *p; p++) {
        if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10) {
            ok = false;
        } else {
            n = n * 10 + (uint64_t)(*p - '0');
        }
    }
    if (!ok) {
        api_error(out, 400, "wrong_type", "%s: must be a non-negative integer", key);
        return -1;
    }
    if (n < min || n > max) {
        api_error(out, 400, "out_of_range", "%s: %llu is not within %llu..%llu", key,
                  (unsigned long long)n, (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *val = n;
    return 1;
}

int api_query_bool(const struct api_req *r, const char *key, bool *val, struct api_resp *out)
{
    const char *s = api_query_str(r, key);
    if (!s) {
        return 0;
    }
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *val = true;
        return 1;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *val = false;
        return 1;
    }
    api_error(out, 400, "wrong_type", "%s: must be true or false", key);
    return -1;
}

int api_query_page(const struct api_req *r, uint64_t *offset, uint32_t *limit,
                   struct api_resp *out)
{
    uint64_t off = 0, lim = API_LIMIT_DEFAULT;
    if (api_query_u64(r, "offset", 0, INT64_MAX, &off, out) < 0 ||
        api_query_u64(r, "limit", 1, API_LIMIT_MAX, &lim, out) < 0) {
        return -1;
    }
    *offset = off;
    *limit = (uint32_t)lim;
    return 0;
}

int api_param_id(const char *s, const char *what, uint32_t *id, struct api_resp *out)
{
    uint64_t n = 0;
    bool ok = *s != '\0' && strlen(s) <= 10;
    for (const char *p = s; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (!ok || n >= UINT32_MAX) {
        api_error(out, 400, "invalid_value", "%s: must be an integer 0..%u", what,
                  UINT32_MAX - 1);
        return -1;
    }
    *id = (uint32_t)n;
    return 0;
}

/* ---- codecs ------------------------------------------------------------------ */

json_t *api_mult_json(uint32_t m)
{
    return json_real((double)m / MK_MULT_ONE);
}

void api_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int api_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool api_unhex20(const char *s, uint8_t out[20])
{
    if (strlen(s) != 40) {
        return false;
    }
    for (size_t i = 0; i < 20; i++) {
        int hi = api_hexval(s[2 * i]), lo = api_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool api_passkey_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > MK_PASSKEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            return false;
        }
    }
    return true;
}

int api_random_passkey(char out[33])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t i = 0;
    while (i < 32) {
        unsigned char buf[48];
        if (getrandom(buf, sizeof(buf), 0) != (ssize_t)sizeof(buf)) {
            return MK_EIO;
        }
        /* Bytes >= 248 (4 * 62) are dropped so every character is equally likely. */
        for (size_t j = 0; j < sizeof(buf) && i < 32; j++) {
            if (buf[j] < 248) {
                out[i++] = alphabet[buf[j] % 62];
            }
        }
    }
    out[32] = '\0';
    return 0;
}

int api_prefix_decode(const char *text, uint8_t out[MK_PREFIX_MAX], size_t *len)
{
    size_t n = 0;
    for (const char *p = text; *p; n++) {
        if (n == MK_PREFIX_MAX) {
            return -1;
        }
        if (*p == '%') {
            int hi = api_hexval(p[1]);
            int lo = hi < 0 ? -1 : api_hexval(p[2]);
            if (lo < 0) {
                return -1;
            }
            out[n] = (uint8_t)(hi << 4 | lo);
            p += 3;
        } else {
            out[n] = (uint8_t)*p++;
        }
    }
    *len = n;
    return n == 0 ? -1 : 0;
}

void api_prefix_encode(const uint8_t *p, size_t len, char out[3 * MK_PREFIX_MAX + 1])
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len && i < MK_PREFIX_MAX; i++) {
        if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '%') {
            out[o++] = (char)p[i];
        } else {
            out[o++] = '%';
            out[o++] = digits[p[i] >> 4];
            out[o++] = digits[p[i] & 15];
        }
    }
    out[o] = '\0';
}

char *api_dump(json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
}
