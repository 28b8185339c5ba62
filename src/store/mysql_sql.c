/* store/mysql_sql.c: the mysql backend's pure parts: no connection, no I/O.
 *
 * Owns: the statement builder (every value a literal that cannot break out
 * of the statement: integers printed, text _utf8mb4 X'..', bytes X'..'),
 * the readers of one text-protocol row, and parsing the dsn
 * mysql://user:pass@host:port/db.
 * Not here: running statements (mysql.c).
 * Invariant: nothing here logs or repeats a dsn: it holds the password.
 */
#include "store/mysql_admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

/* ---- statement builder ---------------------------------------------------- */

static bool my_sql_reserve(struct my_sql *q, size_t more)
{
    if (q->err) {
        return false;
    }
    if (q->len + more + 1 > MY_SQL_MAX) {
        q->err = MK_ELIMIT;
        return false;
    }
    if (q->len + more + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 1024;
        while (cap < q->len + more + 1) {
            cap *= 2;
        }
        cap = cap > MY_SQL_MAX ? MY_SQL_MAX : cap;
        char *p = realloc(q->p, cap);
        if (!p) {
            q->err = MK_ENOMEM;
            return false;
        }
        q->p = p;
        q->cap = cap;
    }
    return true;
}

void my_sql_free(struct my_sql *q)
{
    free(q->p);
    memset(q, 0, sizeof(*q));
}

void my_sql_reset(struct my_sql *q)
{
    q->len = 0;
    q->err = 0;
    if (q->p) {
        q->p[0] = '\0';
    }
}

void my_sqlf(struct my_sql *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !my_sql_reserve(q, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(q->p + q->len, q->cap - q->len, fmt, ap);
    va_end(ap);
    q->len += (size_t)n;
}

static void my_sql_hex(struct my_sql *q, const char *intro, const void *b, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t ilen = strlen(intro);
    if (!my_sql_reserve(q, ilen + 3 + 2 * len)) {
        return;
    }
    char *o = q->p + q->len;
    memcpy(o, intro, ilen);
    o += ilen;
    *o++ = 'X';
    *o++ = '\'';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = ((const unsigned char *)b)[i];
        *o++ = hex[c >> 4];
        *o++ = hex[c & 15];
    }
    *o++ = '\'';
    *o = '\0';
    q->len = (size_t)(o - q->p);
}

void my_sql_text(struct my_sql *q, const char *s)
{
    /* X'' is an empty binary string: with the introducer it is text. */
    my_sql_hex(q, "_utf8mb4 ", s, strlen(s));
}

void my_sql_text_or_null(struct my_sql *q, const char *s)
{
    if (*s) {
        my_sql_text(q, s);
    } else {
        my_sqlf(q, "NULL");
    }
}

void my_sql_bytes(struct my_sql *q, const void *b, size_t len)
{
    my_sql_hex(q, "", b, len);
}

/* ---- row readers ----------------------------------------------------------- */

bool my_col_null(const struct my_row *r, unsigned col)
{
    return col >= r->n || !r->v[col];
}

int64_t my_col_int(const struct my_row *r, unsigned col)
{
    return my_col_null(r, col) ? 0 : strtoll(r->v[col], NULL, 10);
}

uint64_t my_col_u64(const struct my_row *r, unsigned col)
{
    if (my_col_null(r, col) || r->v[col][0] == '-') {
        return 0;
    }
    return strtoull(r->v[col], NULL, 10);
}

uint32_t my_col_u32(const struct my_row *r, unsigned col, uint32_t max)
{
    uint64_t v = my_col_u64(r, col);
    return v > max ? max : (uint32_t)v;
}

bool my_col_bool(const struct my_row *r, unsigned col)
{
    return my_col_int(r, col) != 0;
}

bool my_col_text(const struct my_row *r, unsigned col, char *out, size_t cap)
{
    const unsigned char *p = my_col_null(r, col) ? NULL : (const unsigned char *)r->v[col];
    size_t len = p ? r->len[col] : 0;
    return mk_copy_text(out, cap, p, len);
}

/* ---- dsn: mysql://user:pass@host:port/db ------------------------------------ */

static int my_hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A percent-decoded copy of s[0..len), or NULL (*bad set when the encoding
 * is broken or decodes to a NUL byte, else out of memory). */
static char *my_dsn_decode(const char *s, size_t len, bool *bad)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    *bad = false;
    for (size_t i = 0; out && i < len; i++) {
        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? my_hexval(s[i + 1]) : -1;
        int lo = i + 2 < len ? my_hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            *bad = true;
            free(out);
            return NULL;
        }
        out[n++] = (char)(hi << 4 | lo);
        i += 2;
    }
    if (out) {
        out[n] = '\0';
    }
    return out;
}

void my_dsn_free(struct my_dsn *d)
{
    free(d->user);
    free(d->pass);
    free(d->host);
    free(d->db);
    memset(d, 0, sizeof(*d));
}

int my_dsn_parse(const char *dsn, struct my_dsn *d, struct mk_errbuf *eb)
{
    static const char scheme[] = "mysql://";
    static const char form[] = "(mysql://user:pass@host:port/db)";
    memset(d, 0, sizeof(*d));
    if (strncmp(dsn, scheme, sizeof(scheme) - 1) != 0) {
        return mk_fail(eb, MK_EINVAL, "mysql: dsn: must start with mysql:// %s", form);
    }
    const char *rest = dsn + sizeof(scheme) - 1;
    if (strchr(rest, '?') || strchr(rest, '#')) {
        return mk_fail(eb, MK_EINVAL, "mysql: dsn: parameters (?... or #...) are not supported %s",
                       form);
    }
    /* The last '@' ends the user part: a password may hold an unencoded '@'. */
    const char *at = strrchr(rest, '@');
    const char *hostp = at ? at + 1 : rest;
    const char *slash = strchr(hostp, '/');
    if (!slash || !slash[1]) {
        return mk_fail(eb, MK_EINVAL, "mysql: dsn: no database name %s", form);
    }
    bool bad = false;
    int err = 0;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        size_t ulen = colon ? (size_t)(colon - rest) : (size_t)(at - rest);
        d->user = my_dsn_decode(rest, ulen, &bad);
        if (!d->user) {
            err = bad ? mk_fail(eb, MK_EINVAL, "mysql: dsn: bad percent-encoding in the user name")
                      : MK_ENOMEM;
        } else if (colon) {
            d->pass = my_dsn_decode(colon + 1, (size_t)(at - colon - 1), &bad);
            if (!d->pass) {
                err = bad ? mk_fail(eb, MK_EINVAL,
                                    "mysql: dsn: bad percent-encoding in the password")
                          : MK_ENOMEM;
            }
        }
    }
    const char *host_end = slash, *port_at = NULL;
    const char *host = hostp;
    if (err == 0 && *hostp == '[') { /* [IPv6]:port */
        const char *close = memchr(hostp, ']', (size_t)(slash - hostp));
        if (!close) {
            err = mk_fail(eb, MK_EINVAL, "mysql: dsn: unclosed [ in the host");
        } else {
            host = hostp + 1;
            host_end = close;
            port_at = close[1] == ':' ? close + 2 : NULL;
            if (!port_at && close + 1 != slash) {
                err = mk_fail(eb, MK_EINVAL, "mysql: dsn: junk after the [host]");
            }
        }
    } else if (err == 0) {
        const char *colon = memchr(hostp, ':', (size_t)(slash - hostp));
        if (colon) {
            host_end = colon;
            port_at = colon + 1;
        }
    }
    if (err == 0 && host_end == host) {
        err = mk_fail(eb, MK_EINVAL, "mysql: dsn: no host %s", form);
    }
    d->port = 3306;
    if (err == 0 && port_at) {
        unsigned long port = 0;
        const char *p = port_at;
        while (p < slash && *p >= '0' && *p <= '9' && port <= 65535) {
            port = port * 10 + (unsigned long)(*p++ - '0');
        }
        if (p != slash || p == port_at || port < 1 || port > 65535) {
            err = mk_fail(eb, MK_EINVAL, "mysql: dsn: the port is not a number in 1..65535");
        }
        d->port = (unsigned)port;
    }
    if (err == 0) {
        d->host = strndup(host, (size_t)(host_end - host));
        d->db = my_dsn_decode(slash + 1, strlen(slash + 1), &bad);
        if (!d->db && bad) {
            err = mk_fail(eb, MK_EINVAL, "mysql: dsn: bad percent-encoding in the database name");
        } else if (!d->host || !d->db) {
            err = MK_ENOMEM;
        } else if (strchr(d->db, '/')) {
            err = mk_fail(eb, MK_EINVAL, "mysql: dsn: the database name has a '/' %s", form);
        }
    }
    if (err == MK_ENOMEM) {
        mk_fail(eb, MK_ENOMEM, "mysql: out of memory");
    }
    if (err < 0) {
        my_dsn_free(d);
    }
    return err;
}
