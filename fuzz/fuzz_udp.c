/* fuzz/fuzz_udp.c: the BEP 15 packet parsers (proto/udp.c) on arbitrary bytes.
 *
 * Owns: the properties a parse must keep whatever the input: only 0,
 * MK_EINVAL or MK_ELIMIT; on failure a short printable message (it goes to
 * clients in an error packet); on success every field within its range, the
 * URL data within UDP_URL_MAX, scrape hashes inside the packet and within
 * max. The input is an exact-size heap copy, so reading past it is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/udp.h"

#include "fuzz.h"

static void fuzz_announce(const uint8_t *p, size_t size)
{
    struct udp_announce a;
    struct mk_errbuf eb = {{0}};
    int rc = udp_parse_announce(p, size, &a, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL || rc == MK_ELIMIT);
    if (rc != 0) {
        fuzz_check_message(&eb, UDP_ERROR_MAX);
        return;
    }
    FUZZ_CHECK(size >= UDP_ANNOUNCE_LEN);
    FUZZ_CHECK(a.req.port != 0);
    FUZZ_CHECK(a.req.uploaded <= INT64_MAX && a.req.downloaded <= INT64_MAX);
    FUZZ_CHECK(a.req.left <= INT64_MAX);
    FUZZ_CHECK(a.req.event == EVENT_NONE || a.req.event == EVENT_STARTED ||
               a.req.event == EVENT_STOPPED || a.req.event == EVENT_COMPLETED);
    FUZZ_CHECK(a.req.has_numwant || a.req.numwant == 0);
    FUZZ_CHECK(a.url_len <= UDP_URL_MAX && a.url_len <= size - UDP_ANNOUNCE_LEN);
}

static void fuzz_scrape(const uint8_t *p, size_t size, size_t max)
{
    const uint8_t *hashes = NULL;
    size_t n = 12345;
    struct mk_errbuf eb = {{0}};
    int rc = udp_parse_scrape(p, size, max, &hashes, &n, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL || rc == MK_ELIMIT);
    if (rc != 0) {
        fuzz_check_message(&eb, UDP_ERROR_MAX);
        return;
    }
    FUZZ_CHECK(n >= 1 && n <= max && n <= UDP_SCRAPE_MAX);
    FUZZ_CHECK(hashes == p + UDP_HEAD_LEN && UDP_HEAD_LEN + n * 20 == size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    FUZZ_CHECK(p != NULL);
    if (size) {
        memcpy(p, data, size);
    }
    struct udp_head h;
    FUZZ_CHECK((udp_parse_head(p, size, &h) == MK_OK) == (size >= UDP_HEAD_LEN));
    fuzz_announce(p, size);
    fuzz_scrape(p, size, 2);
    fuzz_scrape(p, size, 1000);
    free(p);
    return 0;
}
