/* util/log.h: one-line operator logs, plain text or JSON lines.
 *
 * The log sink is the one process-wide object in mika (like Redis's
 * serverLog): it is configured once at start-up, before threads exist, and is
 * read-only afterwards. Each line is written with a single write(2), so lines
 * from different threads never interleave. Never pass passkeys, API keys or
 * announce URLs to these functions: log user ids.
 */
#ifndef MIKA_UTIL_LOG_H
#define MIKA_UTIL_LOG_H

#include <stdbool.h>

enum mk_log_level { MK_LOG_DEBUG, MK_LOG_INFO, MK_LOG_WARN, MK_LOG_ERROR };
enum mk_log_format { MK_LOG_TEXT, MK_LOG_JSON };

/* Called once before any thread starts; fd is usually 2. */
void mk_log_setup(enum mk_log_level min, enum mk_log_format fmt, int fd);
bool mk_log_enabled(enum mk_log_level level);
void mk_log_write(enum mk_log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Level is checked before the arguments are formatted. */
#define mk_log(level, tag, ...)                                                                    \
    do {                                                                                           \
        if (mk_log_enabled(level)) {                                                               \
            mk_log_write((level), (tag), __VA_ARGS__);                                             \
        }                                                                                          \
    } while (0)

/* "debug", "info", "warn", "error" -> level; returns -1 if unknown. */
int mk_log_level_parse(const char *s);

#endif /* MIKA_UTIL_LOG_H */
