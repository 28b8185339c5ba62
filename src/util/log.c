/* util/log.c: formats and writes log lines. See log.h for the contract.
 *
 * Owns: the process-wide sink (level, format, fd), set once at start-up.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    enum mk_log_level min;
    enum mk_log_format format;
    int fd;
} sink = {MK_LOG_INFO, MK_LOG_TEXT, 2};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void mk_log_setup(enum mk_log_level min, enum mk_log_format fmt, int fd)
{
    sink.min = min;
    sink.format = fmt;
    sink.fd = fd;
}

bool mk_log_enabled(enum mk_log_level level)
{
    return level >= sink.min;
}

int mk_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Length of s[0..len) without a multi-byte UTF-8 character cut short at its
 * end: a line cut at a limit must still be valid UTF-8 (RFC 8259 8.1). */
static size_t utf8_trim(const char *s, size_t len)
{
    size_t lead = len;
    while (lead > 0 && lead > len - 4 && ((unsigned char)s[lead - 1] & 0xc0) == 0x80) {
        lead--;
    }
    if (lead == 0) {
        return len;
    }
    unsigned char c = (unsigned char)s[lead - 1];
    size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return (lead - 1) + need > len ? lead - 1 : len;
}

/* Appends msg to out as the body of a JSON string (quotes not included). */
static size_t json_escape(char *out, size_t cap, const char *msg)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p && n + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *p);
        } else {
            out[n++] = (char)*p;
        }
    }
    return n;
}

void mk_log_write(enum mk_log_level level, const char *tag, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int full = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (full >= (int)sizeof(msg)) {
        msg[utf8_trim(msg, sizeof(msg) - 1)] = '\0';
    }
    /* Control bytes from outside input must not forge extra log lines. */
    for (char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20) {
            *p = ' ';
        }
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);

    char line[1400];
    int n;
    if (sink.format == MK_LOG_JSON) {
        char esc[1200];
        size_t e = utf8_trim(esc, json_escape(esc, sizeof(esc), msg));
        n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"tag\":\"%s\",\"msg\":\"%.*s\"}\n",
                     when, level_names[level], tag, (int)e, esc);
    } else {
        n = snprintf(line, sizeof(line), "%s %-5s %s: %s\n", when, level_names[level], tag, msg);
    }
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t wr = write(sink.fd, line, (size_t)n);
    (void)wr;
}
