/* fuzz/fuzz_redis_dsn.c: redis_dsn_parse (store/redis.c) on arbitrary bytes.
 *
 * Owns: the properties any parse must keep, checked on every input: an
 * answer of 0 or MK_EINVAL (the input being a NUL-terminated copy, as the
 * config hands it over); on 0 a host that is not empty, a port in
 * 1..65535, a db in 0..1000000 and every string NUL-terminated inside its
 * buffer; on MK_EINVAL a message that names the dsn ("redis: ...") and never
 * repeats a password the input spells out (checked for passwords holding a
 * '$', which no message of the parser's own has).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/redis_admin.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    struct redis_dsn d;
    struct mk_errbuf eb = {{0}};
    int rc = redis_dsn_parse(s, &d, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(memchr(d.host, '\0', sizeof(d.host)) && d.host[0]);
        FUZZ_CHECK(memchr(d.user, '\0', sizeof(d.user)) && memchr(d.pass, '\0', sizeof(d.pass)));
        FUZZ_CHECK(d.port >= 1 && d.port <= 65535);
        FUZZ_CHECK(d.db >= 0 && d.db <= 1000000);
    } else {
        FUZZ_CHECK(strncmp(eb.msg, "redis: ", 7) == 0);
        fuzz_check_password_hidden(s, eb.msg);
    }
    free(s);
    return 0;
}
