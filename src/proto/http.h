/* proto/http.h: a strict, bounded, zero-copy HTTP/1.x request-head parser.
 *
 * Owns: recognising one request head (request line + headers) at the start of
 * a buffer, as bytes arrive. It returns views into the caller's buffer; it
 * allocates nothing and keeps only a resume offset between calls, so feeding a
 * request byte by byte costs linear time. Not here: sockets, routing, bodies
 * (a tracker takes GET only; a request announcing a body is refused).
 */
#ifndef MIKA_PROTO_HTTP_H
#define MIKA_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/str.h"

struct http_limits {
    size_t max_request_line; /* longer request line: 414 */
    size_t max_head;         /* longer head (line + headers + blank line): 431 */
    size_t max_headers;      /* more header lines: 431 */
};

/* Resume state for one request; zero it (http_parser_reset) per request. */
struct http_parser {
    size_t scanned; /* bytes already known not to complete the head */
};

struct http_request {
    struct mk_str target;    /* as sent: origin-form "/a/b?q"; absolute-form is reduced to it */
    struct mk_str path;      /* target up to '?' */
    struct mk_str query;     /* after '?', empty if none */
    int minor;               /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive;         /* 1.1 unless "Connection: close"; 1.0 only with "keep-alive" */
    struct mk_str real_ip;   /* value of the header named by real_ip_header, if present */
    size_t head_len;         /* bytes the head occupies, blank line included */
    int status;              /* on HTTP_PARSE_ERROR: 400, 405, 414, 431, 501 or 505 */
};

enum http_parse_result { HTTP_PARSE_DONE, HTTP_PARSE_AGAIN, HTTP_PARSE_ERROR };

static inline void http_parser_reset(struct http_parser *ps) { ps->scanned = 0; }

/* Looks for one request head at buf[0..len).
 * DONE: *req is filled; the next request starts at buf + req->head_len.
 * AGAIN: incomplete and within limits; call again with the same buf start and
 *        more bytes.
 * ERROR: req->status says which answer to send before closing: 400 malformed
 *        (including HTTP/0.9, bare CR, obs-fold, Content-Length > 0 or
 *        Transfer-Encoding), 405 a method other than GET, 414 request line
 *        over the limit, 431 head over the limits, 505 a version other than 1.0/1.1.
 * real_ip_header: a header name to capture (case-insensitive) or an empty view. */
enum http_parse_result http_parse_request(const char *buf, size_t len, struct http_parser *ps,
                                          const struct http_limits *lim,
                                          struct mk_str real_ip_header, struct http_request *req);

#endif /* MIKA_PROTO_HTTP_H */
