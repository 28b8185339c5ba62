/* util/siphash.c: SipHash-2-4 (Aumasson & Bernstein, 2012), written from the paper.
 *
 * Owns: the one keyed hash of the project. Not here: choosing keys (callers
 * draw them from getrandom(2) once per table).
 * Invariant: portable across endianness; the message and key are read as
 * little-endian 64-bit words, as the paper specifies, never by casting a
 * pointer (memcpy, so any alignment will do).
 */
#include "util/siphash.h"

#include <string.h>

static uint64_t siphash_rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

/* One little-endian word. Where the compiler says how the machine orders
 * bytes this is one load (and a byte swap on big-endian machines): every
 * table lookup hashes its key, and the byte-at-a-time form cost 24
 * instructions a word, about 40% of a 32-byte passkey's hash. */
static uint64_t siphash_load_le(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    return __builtin_bswap64(w);
#else
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--) {
        w = (w << 8) | p[i];
    }
    return w;
#endif
}

struct siphash_state {
    uint64_t v0, v1, v2, v3;
};

static void siphash_round(struct siphash_state *s)
{
    s->v0 += s->v1;
    s->v1 = siphash_rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = siphash_rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = siphash_rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = siphash_rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = siphash_rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = siphash_rotl(s->v2, 32);
}

/* c = 2 compression rounds per message word. */
static void siphash_compress(struct siphash_state *s, uint64_t m)
{
    s->v3 ^= m;
    siphash_round(s);
    siphash_round(s);
    s->v0 ^= m;
}

uint64_t siphash24(const void *in, size_t len, const uint8_t key[16])
{
    const uint8_t *p = in;
    uint64_t k0 = siphash_load_le(key);
    uint64_t k1 = siphash_load_le(key + 8);
    /* The paper's initialisation constants: "somepseudorandomlygeneratedbytes". */
    struct siphash_state s = {
        .v0 = k0 ^ 0x736f6d6570736575ull,
        .v1 = k1 ^ 0x646f72616e646f6dull,
        .v2 = k0 ^ 0x6c7967656e657261ull,
        .v3 = k1 ^ 0x7465646279746573ull,
    };

    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        siphash_compress(&s, siphash_load_le(p + i));
    }

    /* Last word: the remaining 0..7 bytes, then len mod 256 in the top byte. */
    uint8_t tail[8] = {0};
    memcpy(tail, p + whole, len & 7);
    uint64_t last = siphash_load_le(tail) | (uint64_t)(len & 0xff) << 56;
    siphash_compress(&s, last);

    /* d = 4 finalisation rounds. */
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++) {
        siphash_round(&s);
    }
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
