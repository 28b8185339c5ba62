/* store/pg_value.c: the postgres backend's values, in and out.
 *
 * Owns: building a statement's parameters (struct pg_params, text or
 * binary) and reading a result's columns in binary format (integers of 2, 4
 * or 8 bytes, booleans, text cut at a character boundary).
 * Not here: running statements (pg.c), what any column means (the callers).
 * Invariant: a malformed or NULL column reads as 0 or "", never past the
 * value libpq holds.
 */
#include "store/pg_admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

static void pg_param_add(struct pg_params *p, const char *val, int len, int fmt)
{
    /* A bug, not input: every statement here has fewer parameters. */
    if (p->n >= PG_PARAMS_MAX) {
        abort();
    }
    p->val[p->n] = val;
    p->len[p->n] = len;
    p->fmt[p->n] = fmt;
    p->n++;
}

void pg_param_int(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_PARAMS_MAX) {
        abort();
    }
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
    pg_param_add(p, p->num[p->n], 0, 0);
}

void pg_param_bool(struct pg_params *p, bool v)
{
    pg_param_add(p, v ? "t" : "f", 0, 0);
}

void pg_param_text(struct pg_params *p, const char *s)
{
    pg_param_add(p, s, 0, 0);
}

void pg_param_text_or_null(struct pg_params *p, const char *s)
{
    pg_param_add(p, *s ? s : NULL, 0, 0);
}

void pg_param_bytes(struct pg_params *p, const void *b, size_t len)
{
    pg_param_add(p, b, (int)len, 1);
}

void pg_param_null(struct pg_params *p)
{
    pg_param_add(p, NULL, 0, 0);
}

bool pg_isnull(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) != 0;
}

int64_t pg_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) {
        return 0;
    }
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    if (len != 1 && len != 2 && len != 4 && len != 8) {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < len; i++) {
        v = v << 8 | p[i];
    }
    if (len < 8 && (p[0] & 0x80)) {
        v |= ~0ull << (len * 8); /* sign-extend int2/int4 */
    }
    return (int64_t)v;
}

uint64_t pg_u64(const PGresult *r, int row, int col)
{
    int64_t v = pg_int(r, row, col);
    return v < 0 ? 0 : (uint64_t)v;
}

uint32_t pg_u32(const PGresult *r, int row, int col, uint32_t max)
{
    int64_t v = pg_int(r, row, col);
    return v < 0 ? 0 : (uint64_t)v > max ? max : (uint32_t)v;
}

bool pg_bool(const PGresult *r, int row, int col)
{
    return pg_int(r, row, col) != 0;
}

bool pg_text(const PGresult *r, int row, int col, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    size_t len = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
    return mk_copy_text(out, cap, p, len);
}
