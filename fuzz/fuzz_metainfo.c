/* fuzz/fuzz_metainfo.c: metainfo_parse (.torrent files) on arbitrary bytes.
 *
 * Owns: the properties any parse must keep: the answer's views lie inside
 * the input, the info span is one whole dictionary ('d' ... 'e') that holds
 * the name, a second parse gives the same answer, and the same input minus
 * its last byte is refused (nothing may follow the top-level dictionary, so
 * a parse never stops early). The input is an exact-size heap copy, so an
 * over-read is caught by ASan.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/metainfo.h"

#include "fuzz.h"

static bool fuzz_inside(const uint8_t *buf, size_t len, struct mk_str v)
{
    const uint8_t *p = (const uint8_t *)v.p;
    return p >= buf && v.len <= len && p - buf <= (ptrdiff_t)(len - v.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    struct metainfo m;
    struct mk_errbuf eb;
    int rc = metainfo_parse(buf, size, &m, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(fuzz_inside(buf, size, m.info) && m.info.len >= 2);
        FUZZ_CHECK(m.info.p[0] == 'd' && m.info.p[m.info.len - 1] == 'e');
        FUZZ_CHECK(m.name.len == 0 || (m.name.p > m.info.p &&
                                       m.name.p + m.name.len < m.info.p + m.info.len));
        FUZZ_CHECK(m.files >= 1);
        FUZZ_CHECK(!m.is_private || m.has_private);
        struct metainfo again;
        FUZZ_CHECK(metainfo_parse(buf, size, &again, &eb) == 0);
        FUZZ_CHECK(memcmp(&again, &m, sizeof(m)) == 0);
        FUZZ_CHECK(metainfo_parse(buf, size - 1, &again, &eb) == MK_EINVAL);
    }
    free(buf);
    return 0;
}
