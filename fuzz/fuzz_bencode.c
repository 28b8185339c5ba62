/* fuzz/fuzz_bencode.c: a round trip through the bencode writer.
 *
 * Owns: building a random value tree from the input (integers including the
 * int64 extremes, binary strings, lists, dictionaries with sorted unique
 * keys, bounded depth and size), writing it with proto/bencode.h into an
 * exact-size heap buffer whose capacity the input also picks, and the
 * properties checked:
 *   - when the buffer is large enough: no overflow, the bytes are exactly
 *     the reference encoding (written here, independently), and a strict
 *     test decoder (canonical integers, sorted keys, nothing trailing)
 *     gives back the same tree;
 *   - when it is not: the overflow flag is set, nothing is written past the
 *     capacity (ASan), and len is the end of the last put that fitted
 *     before the first one that did not (each put is all or nothing);
 *   - bencode_failure afterwards replaces everything with the exact failure
 *     answer whenever it fits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/bencode.h"

#include "fuzz.h"

#define FUZZ_MAX_NODES 256
#define FUZZ_MAX_DEPTH 8
#define FUZZ_MAX_ITEMS 8
#define FUZZ_MAX_PUTS (FUZZ_MAX_NODES * 3)

enum fuzz_kind { FUZZ_INT, FUZZ_STR, FUZZ_LIST, FUZZ_DICT };

struct fuzz_node {
    enum fuzz_kind kind;
    int64_t i;
    const uint8_t *s; /* into the input, or into the decoded buffer */
    size_t len;
    int first_child;  /* index of the first child; a dict's children alternate key, value */
    int nchildren;
    int next;         /* next sibling, -1 at the end */
};

struct fuzz_tree {
    struct fuzz_node n[FUZZ_MAX_NODES];
    int count;
};

struct fuzz_in {
    const uint8_t *p;
    size_t len, at;
};

static uint8_t fuzz_byte(struct fuzz_in *in)
{
    return in->at < in->len ? in->p[in->at++] : 0;
}

static int fuzz_alloc(struct fuzz_tree *t, enum fuzz_kind k)
{
    if (t->count >= FUZZ_MAX_NODES) {
        return -1;
    }
    struct fuzz_node *n = &t->n[t->count];
    memset(n, 0, sizeof(*n));
    n->kind = k;
    n->first_child = -1;
    n->next = -1;
    return t->count++;
}

static int64_t fuzz_int(struct fuzz_in *in)
{
    switch (fuzz_byte(in) % 6) {
    case 0: return INT64_MIN;
    case 1: return INT64_MAX;
    case 2: return 0;
    case 3: return -(int64_t)fuzz_byte(in);
    case 4: return fuzz_byte(in);
    default: {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++) {
            v = v << 8 | fuzz_byte(in);
        }
        return (int64_t)v;
    }
    }
}

static void fuzz_take_str(struct fuzz_in *in, struct fuzz_node *n, size_t max)
{
    size_t want = fuzz_byte(in) % (max + 1);
    size_t left = in->len - in->at;
    n->len = want < left ? want : left;
    n->s = in->p + in->at;
    in->at += n->len;
}

static int fuzz_key_cmp(const struct fuzz_node *a, const struct fuzz_node *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c = m ? memcmp(a->s, b->s, m) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int fuzz_gen(struct fuzz_tree *t, struct fuzz_in *in, int depth);

/* Children of a list or dict, linked in order. */
static void fuzz_gen_children(struct fuzz_tree *t, struct fuzz_in *in, int parent, int depth)
{
    int items = fuzz_byte(in) % (FUZZ_MAX_ITEMS + 1);
    bool dict = t->n[parent].kind == FUZZ_DICT;
    struct fuzz_node keys[FUZZ_MAX_ITEMS];
    int nkeys = 0;
    if (dict) {
        /* Keys sorted by raw bytes and unique, as BEP 3 and the writer want. */
        for (int k = 0; k < items; k++) {
            struct fuzz_node key = {.kind = FUZZ_STR};
            fuzz_take_str(in, &key, 12);
            int pos = 0;
            while (pos < nkeys && fuzz_key_cmp(&keys[pos], &key) < 0) {
                pos++;
            }
            if (pos < nkeys && fuzz_key_cmp(&keys[pos], &key) == 0) {
                continue;
            }
            memmove(&keys[pos + 1], &keys[pos], (size_t)(nkeys - pos) * sizeof(keys[0]));
            keys[pos] = key;
            nkeys++;
        }
        items = nkeys;
    }
    int prev = -1;
    for (int k = 0; k < items; k++) {
        int key = -1;
        if (dict) {
            key = fuzz_alloc(t, FUZZ_STR);
            if (key < 0) {
                break;
            }
            t->n[key].s = keys[k].s;
            t->n[key].len = keys[k].len;
        }
        int val = fuzz_gen(t, in, depth + 1);
        if (val < 0) {
            if (key >= 0) {
                t->count--; /* a key without its value would be a broken dict */
            }
            break;
        }
        int head = dict ? key : val;
        if (dict) {
            t->n[key].next = val;
        }
        if (prev < 0) {
            t->n[parent].first_child = head;
        } else {
            t->n[prev].next = head;
        }
        prev = val;
        t->n[parent].nchildren += dict ? 2 : 1;
    }
}

static int fuzz_gen(struct fuzz_tree *t, struct fuzz_in *in, int depth)
{
    unsigned kinds = depth >= FUZZ_MAX_DEPTH ? 2 : 4;
    enum fuzz_kind k = (enum fuzz_kind)(fuzz_byte(in) % kinds);
    int id = fuzz_alloc(t, k);
    if (id < 0) {
        return -1;
    }
    switch (k) {
    case FUZZ_INT:
        t->n[id].i = fuzz_int(in);
        break;
    case FUZZ_STR:
        fuzz_take_str(in, &t->n[id], 255);
        break;
    case FUZZ_LIST:
    case FUZZ_DICT:
        fuzz_gen_children(t, in, id, depth);
        break;
    }
    return id;
}

/* ---- reference encoding, with the end offset of every put ---------------- */

struct fuzz_ref {
    uint8_t *p;
    size_t len, cap;
    size_t ends[FUZZ_MAX_PUTS];
    int nputs;
};

static void fuzz_ref_put(struct fuzz_ref *r, const void *s, size_t n)
{
    FUZZ_CHECK(r->len + n <= r->cap);
    memcpy(r->p + r->len, s, n);
    r->len += n;
}

static void fuzz_ref_end(struct fuzz_ref *r)
{
    FUZZ_CHECK(r->nputs < FUZZ_MAX_PUTS);
    r->ends[r->nputs++] = r->len;
}

static size_t fuzz_utoa(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t k = 0; k < n; k++) {
        out[k] = tmp[n - 1 - k];
    }
    return n;
}

static void fuzz_ref_encode(struct fuzz_ref *r, const struct fuzz_tree *t, int id)
{
    const struct fuzz_node *n = &t->n[id];
    char num[32];
    size_t k = 0;
    switch (n->kind) {
    case FUZZ_INT:
        num[k++] = 'i';
        if (n->i < 0) {
            num[k++] = '-';
        }
        k += fuzz_utoa(num + k, n->i < 0 ? (uint64_t)0 - (uint64_t)n->i : (uint64_t)n->i);
        num[k++] = 'e';
        fuzz_ref_put(r, num, k);
        fuzz_ref_end(r);
        return;
    case FUZZ_STR:
        k = fuzz_utoa(num, n->len);
        num[k++] = ':';
        fuzz_ref_put(r, num, k);
        fuzz_ref_put(r, n->s, n->len);
        fuzz_ref_end(r);
        return;
    case FUZZ_LIST:
    case FUZZ_DICT:
        fuzz_ref_put(r, n->kind == FUZZ_LIST ? "l" : "d", 1);
        fuzz_ref_end(r);
        for (int c = n->first_child; c >= 0; c = t->n[c].next) {
            fuzz_ref_encode(r, t, c);
        }
        fuzz_ref_put(r, "e", 1);
        fuzz_ref_end(r);
        return;
    }
}

/* The encoded size of the tree, to size the reference buffer. */
static size_t fuzz_size(const struct fuzz_tree *t, int id)
{
    const struct fuzz_node *n = &t->n[id];
    size_t s = 0;
    switch (n->kind) {
    case FUZZ_INT: return 22;
    case FUZZ_STR: return 21 + n->len;
    default:
        for (int c = n->first_child; c >= 0; c = t->n[c].next) {
            s += fuzz_size(t, c);
        }
        return s + 2;
    }
}

/* ---- the writer under test; which call writes a string varies ------------ */

static void fuzz_write(struct bencode *b, const struct fuzz_tree *t, int id, unsigned *turn)
{
    const struct fuzz_node *n = &t->n[id];
    switch (n->kind) {
    case FUZZ_INT:
        bencode_int(b, n->i);
        return;
    case FUZZ_STR: {
        unsigned how = (*turn)++ % 3;
        if (how == 0) {
            bencode_str(b, n->s, n->len);
        } else if (how == 1 && memchr(n->s, '\0', n->len) == NULL && n->len < 256) {
            char c[256];
            memcpy(c, n->s, n->len);
            c[n->len] = '\0';
            bencode_cstr(b, c);
        } else {
            bool was = b->overflow;
            uint8_t *dst = bencode_str_reserve(b, n->len);
            FUZZ_CHECK((dst == NULL) == b->overflow && (!was || dst == NULL));
            if (dst && n->len) {
                memcpy(dst, n->s, n->len);
            }
        }
        return;
    }
    case FUZZ_LIST:
    case FUZZ_DICT:
        if (n->kind == FUZZ_LIST) {
            bencode_list(b);
        } else {
            bencode_dict(b);
        }
        for (int c = n->first_child; c >= 0; c = t->n[c].next) {
            fuzz_write(b, t, c, turn);
        }
        bencode_end(b);
        return;
    }
}

/* ---- a strict test decoder --------------------------------------------- */

struct fuzz_dec {
    const uint8_t *p;
    size_t len, at;
};

static bool fuzz_dec_num(struct fuzz_dec *d, char stop, bool allow_neg, uint64_t *mag, bool *neg)
{
    *neg = false;
    if (allow_neg && d->at < d->len && d->p[d->at] == '-') {
        *neg = true;
        d->at++;
    }
    size_t start = d->at;
    uint64_t v = 0;
    while (d->at < d->len && d->p[d->at] >= '0' && d->p[d->at] <= '9') {
        uint64_t digit = (uint64_t)(d->p[d->at] - '0');
        if (v > (UINT64_MAX - digit) / 10) {
            return false;
        }
        v = v * 10 + digit;
        d->at++;
    }
    size_t digits = d->at - start;
    if (digits == 0 || (digits > 1 && d->p[start] == '0') || (*neg && v == 0)) {
        return false;
    }
    if (d->at >= d->len || d->p[d->at] != (uint8_t)stop) {
        return false;
    }
    d->at++;
    *mag = v;
    return true;
}

static int fuzz_decode(struct fuzz_tree *t, struct fuzz_dec *d, int depth)
{
    if (depth > FUZZ_MAX_DEPTH + 1 || d->at >= d->len) {
        return -1;
    }
    uint8_t c = d->p[d->at];
    uint64_t mag;
    bool neg;
    if (c == 'i') {
        d->at++;
        if (!fuzz_dec_num(d, 'e', true, &mag, &neg)) {
            return -1;
        }
        if ((!neg && mag > (uint64_t)INT64_MAX) || (neg && mag > (uint64_t)INT64_MAX + 1)) {
            return -1;
        }
        int id = fuzz_alloc(t, FUZZ_INT);
        if (id >= 0) {
            t->n[id].i = neg ? (int64_t)((uint64_t)0 - mag) : (int64_t)mag;
        }
        return id;
    }
    if (c >= '0' && c <= '9') {
        if (!fuzz_dec_num(d, ':', false, &mag, &neg) || mag > d->len - d->at) {
            return -1;
        }
        int id = fuzz_alloc(t, FUZZ_STR);
        if (id >= 0) {
            t->n[id].s = d->p + d->at;
            t->n[id].len = (size_t)mag;
            d->at += (size_t)mag;
        }
        return id;
    }
    if (c != 'l' && c != 'd') {
        return -1;
    }
    d->at++;
    int id = fuzz_alloc(t, c == 'l' ? FUZZ_LIST : FUZZ_DICT);
    if (id < 0) {
        return -1;
    }
    int prev = -1, last_key = -1;
    for (;;) {
        if (d->at >= d->len) {
            return -1;
        }
        if (d->p[d->at] == 'e') {
            d->at++;
            return c == 'd' && t->n[id].nchildren % 2 ? -1 : id;
        }
        int child = fuzz_decode(t, d, depth + 1);
        if (child < 0) {
            return -1;
        }
        if (c == 'd' && (t->n[id].nchildren % 2) == 0) {
            if (t->n[child].kind != FUZZ_STR ||
                (last_key >= 0 && fuzz_key_cmp(&t->n[last_key], &t->n[child]) >= 0)) {
                return -1;
            }
            last_key = child;
        }
        if (prev < 0) {
            t->n[id].first_child = child;
        } else {
            t->n[prev].next = child;
        }
        prev = child;
        t->n[id].nchildren++;
    }
}

static bool fuzz_equal(const struct fuzz_tree *a, int x, const struct fuzz_tree *b, int y)
{
    const struct fuzz_node *p = &a->n[x], *q = &b->n[y];
    if (p->kind != q->kind) {
        return false;
    }
    switch (p->kind) {
    case FUZZ_INT: return p->i == q->i;
    case FUZZ_STR: return p->len == q->len && (p->len == 0 || memcmp(p->s, q->s, p->len) == 0);
    default:
        if (p->nchildren != q->nchildren) {
            return false;
        }
        for (int c = p->first_child, e = q->first_child; c >= 0 || e >= 0;
             c = a->n[c].next, e = b->n[e].next) {
            if (c < 0 || e < 0 || !fuzz_equal(a, c, b, e)) {
                return false;
            }
        }
        return true;
    }
}

static void fuzz_check_failure(struct bencode *b, size_t cap)
{
    static const char msg[] = "swarm is full, try again later";
    static const char want[] = "d14:failure reason30:swarm is full, try again latere";
    bencode_failure(b, msg);
    if (cap >= sizeof(want) - 1) {
        FUZZ_CHECK(bencode_ok(b) && b->len == sizeof(want) - 1);
        FUZZ_CHECK(memcmp(b->p, want, b->len) == 0);
    } else {
        FUZZ_CHECK(!bencode_ok(b) && b->len <= cap);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {.p = data, .len = size};
    uint8_t cap_sel = fuzz_byte(&in);
    struct fuzz_tree *tree = malloc(sizeof(*tree));
    struct fuzz_tree *back = malloc(sizeof(*back));
    FUZZ_CHECK(tree && back);
    tree->count = 0;
    int root = fuzz_gen(tree, &in, 0);
    if (root < 0) {
        free(tree);
        free(back);
        return 0;
    }

    struct fuzz_ref *ref = malloc(sizeof(*ref));
    FUZZ_CHECK(ref != NULL);
    ref->cap = fuzz_size(tree, root);
    ref->p = malloc(ref->cap);
    ref->len = 0;
    ref->nputs = 0;
    FUZZ_CHECK(ref->p != NULL);
    fuzz_ref_encode(ref, tree, root);

    /* Mostly the exact size (the common case: an answer that fits), else
     * any smaller capacity, so every put meets the boundary. */
    size_t cap = ref->len;
    if (cap_sel & 1) {
        cap = ref->len ? (size_t)(cap_sel >> 1) * ref->len / 128 : 0;
    }
    uint8_t *mem = malloc(cap ? cap : 1);
    FUZZ_CHECK(mem != NULL);
    struct bencode b;
    bencode_init(&b, mem, cap);
    unsigned turn = cap_sel;
    fuzz_write(&b, tree, root, &turn);

    if (cap >= ref->len) {
        FUZZ_CHECK(bencode_ok(&b) && b.len == ref->len);
        FUZZ_CHECK(memcmp(mem, ref->p, ref->len) == 0);
        back->count = 0;
        struct fuzz_dec d = {.p = mem, .len = b.len};
        int droot = fuzz_decode(back, &d, 0);
        FUZZ_CHECK(droot >= 0 && d.at == d.len);
        FUZZ_CHECK(fuzz_equal(tree, root, back, droot));
    } else {
        FUZZ_CHECK(!bencode_ok(&b));
        size_t last_fit = 0;
        for (int k = 0; k < ref->nputs && ref->ends[k] <= cap; k++) {
            last_fit = ref->ends[k];
        }
        FUZZ_CHECK(b.len == last_fit);
        FUZZ_CHECK(memcmp(mem, ref->p, b.len) == 0);
        /* Sticky: a put that would fit on its own is refused after overflow. */
        size_t before = b.len;
        bencode_list(&b);
        FUZZ_CHECK(b.len == before && !bencode_ok(&b));
    }
    fuzz_check_failure(&b, cap);

    free(mem);
    free(ref->p);
    free(ref);
    free(back);
    free(tree);
    return 0;
}
