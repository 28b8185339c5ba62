/* util/err.h: the one error enum of the project and the caller's message buffer.
 *
 * Owns: enum mk_err and struct mk_errbuf. Actions return 0 or a negative
 * mk_err; human detail (which key, which limit) goes into a caller-owned
 * mk_errbuf, never into a global.
 */
#ifndef MIKA_UTIL_ERR_H
#define MIKA_UTIL_ERR_H

#include <stddef.h>

enum mk_err {
    MK_OK = 0,
    MK_ENOMEM = -1,    /* allocation failed */
    MK_EINVAL = -2,    /* bad input: the message names the key */
    MK_ELIMIT = -3,    /* a configured bound was hit */
    MK_ENOTFOUND = -4, /* no such user, torrent, key... */
    MK_EUNAVAIL = -5,  /* a store or resource is down; retry later */
    MK_ENOTSUP = -6,   /* optional method not provided by a backend */
    MK_EIO = -7,       /* system call or store I/O failed */
    MK_EEXIST = -8,    /* duplicate */
};

struct mk_errbuf {
    char msg[256];
};

/* Formats a message into eb (NULL eb is allowed and ignored) and returns err,
 * so that error paths read `return mk_fail(eb, MK_EINVAL, "port: ...")`. */
int mk_fail(struct mk_errbuf *eb, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short stable name: "EINVAL", ... */
const char *mk_err_name(int err);

#endif /* MIKA_UTIL_ERR_H */
