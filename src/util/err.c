/* util/err.c: error names and the mk_fail() helper. See err.h. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

int mk_fail(struct mk_errbuf *eb, int err, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
        va_end(ap);
    }
    return err;
}

const char *mk_err_name(int err)
{
    switch ((enum mk_err)err) {
    case MK_OK: return "OK";
    case MK_ENOMEM: return "ENOMEM";
    case MK_EINVAL: return "EINVAL";
    case MK_ELIMIT: return "ELIMIT";
    case MK_ENOTFOUND: return "ENOTFOUND";
    case MK_EUNAVAIL: return "EUNAVAIL";
    case MK_ENOTSUP: return "ENOTSUP";
    case MK_EIO: return "EIO";
    case MK_EEXIST: return "EEXIST";
    }
    return "EUNKNOWN";
}
