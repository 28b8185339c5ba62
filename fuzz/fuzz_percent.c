/* fuzz/fuzz_percent.c: percent_decode on arbitrary bytes.
 *
 * Owns: the properties any decode must keep, checked on every input: the
 * result never exceeds the input or the cap, a cap of exactly the decoded
 * length succeeds with the same bytes, one byte less fails with MK_ELIMIT,
 * and re-escaping every decoded byte decodes back to the same bytes.
 * Output buffers are exact-size heap blocks, so a write past cap is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/percent.h"
#include "util/err.h"

#include "fuzz.h"

static long fuzz_decode(const uint8_t *data, size_t size, size_t cap, uint8_t **out)
{
    *out = malloc(cap ? cap : 1);
    FUZZ_CHECK(*out != NULL);
    return percent_decode((const char *)data, size, *out, cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *full;
    long n = fuzz_decode(data, size, size, &full);
    FUZZ_CHECK(n == MK_EINVAL || (n >= 0 && (size_t)n <= size));
    if (n < 0) {
        free(full);
        return 0;
    }
    uint8_t *exact;
    long m = fuzz_decode(data, size, (size_t)n, &exact);
    FUZZ_CHECK(m == n && memcmp(exact, full, (size_t)n) == 0);
    free(exact);
    if (n > 0) {
        uint8_t *shorter;
        FUZZ_CHECK(fuzz_decode(data, size, (size_t)n - 1, &shorter) == MK_ELIMIT);
        free(shorter);
    }

    static const char hex[] = "0123456789aBcDeF";
    char *esc = malloc((size_t)n * 3 + 1);
    FUZZ_CHECK(esc != NULL);
    for (long i = 0; i < n; i++) {
        esc[3 * i] = '%';
        esc[3 * i + 1] = hex[full[i] >> 4];
        esc[3 * i + 2] = hex[full[i] & 15];
    }
    uint8_t *back;
    long r = fuzz_decode((const uint8_t *)esc, (size_t)n * 3, (size_t)n, &back);
    FUZZ_CHECK(r == n && memcmp(back, full, (size_t)n) == 0);
    free(back);
    free(esc);
    free(full);
    return 0;
}
