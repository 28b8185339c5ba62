/* fuzz/fuzz_change.c: change_parse on arbitrary bytes (a cluster's notice
 * payloads come from whoever can NOTIFY or PUBLISH on the shared store).
 *
 * Owns: the properties a parse must keep whatever the input: only 0 or
 * MK_EINVAL; on failure a short printable message; on success a known
 * kind and origin 1..65535, and change_put writes back exactly the input
 * (the text form is canonical). The input is an exact-size heap copy, so
 * reading past it is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/change.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy) {
        return 0;
    }
    memcpy(copy, data, size);
    struct change c;
    struct mk_errbuf eb = {{0}};
    int rc = change_parse(copy, size, &c, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL);
    if (rc != 0) {
        fuzz_check_message(&eb, 80);
    } else {
        FUZZ_CHECK(c.origin != 0);
        FUZZ_CHECK(c.kind >= CHANGE_USER && c.kind <= CHANGE_TOKEN);
        char out[CHANGE_PAYLOAD_MAX];
        int n = change_put(&c, out, sizeof(out));
        FUZZ_CHECK(n >= 0 && (size_t)n == size && memcmp(out, copy, size) == 0);
    }
    free(copy);
    return 0;
}
