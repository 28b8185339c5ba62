/* fuzz/fuzz_query.c: announce_parse and scrape_parse on arbitrary bytes.
 *
 * Owns: the properties a parse must keep whatever the input: only 0,
 * MK_EINVAL or MK_ELIMIT; on failure a short printable message (it goes to
 * clients verbatim); on success every field within its documented range; a
 * scrape result strictly sorted, within max, never empty. The input is an
 * exact-size heap copy, so reading past the query is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/query.h"

#include "fuzz.h"

#define FUZZ_SCRAPE_MAX 16

static void fuzz_announce(const char *q, size_t size)
{
    struct announce_req req;
    struct mk_errbuf eb = {{0}};
    int rc = announce_parse(q, size, QUERY_MAX_PARAMS, &req, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL || rc == MK_ELIMIT);
    if (rc != 0) {
        fuzz_check_message(&eb, 64);
        return;
    }
    FUZZ_CHECK(req.port != 0);
    FUZZ_CHECK(req.uploaded <= INT64_MAX && req.downloaded <= INT64_MAX);
    FUZZ_CHECK(req.left <= INT64_MAX && req.corrupt <= INT64_MAX);
    FUZZ_CHECK(req.event <= EVENT_PAUSED);
    FUZZ_CHECK(req.has_numwant || req.numwant == 0);
    FUZZ_CHECK(req.has_key || req.key == 0);
}

static void fuzz_scrape(const char *q, size_t size, size_t max)
{
    uint8_t (*hashes)[20] = malloc(max ? max * 20 : 1);
    FUZZ_CHECK(hashes != NULL);
    size_t n = 12345;
    struct mk_errbuf eb = {{0}};
    int rc = scrape_parse(q, size, hashes, max, &n, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL || rc == MK_ELIMIT);
    FUZZ_CHECK(n <= max);
    if (rc != 0) {
        fuzz_check_message(&eb, 64);
    } else {
        FUZZ_CHECK(n >= 1);
        for (size_t i = 1; i < n; i++) {
            FUZZ_CHECK(memcmp(hashes[i - 1], hashes[i], 20) < 0);
        }
    }
    free(hashes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size ? size : 1);
    FUZZ_CHECK(q != NULL);
    if (size) {
        memcpy(q, data, size);
    }
    fuzz_announce(q, size);
    fuzz_scrape(q, size, 2);
    fuzz_scrape(q, size, FUZZ_SCRAPE_MAX);
    free(q);
    return 0;
}
