/* conf/config_key.h: what config.c's key table and the value setters share.
 *
 * Owns: the shape of one key (struct config_key: its type, where its value
 * lives in struct mk_config, its bounds and texts) and config_set(), which
 * turns a value's text into the field. Internal to src/conf.
 */
#ifndef MIKA_CONF_CONFIG_KEY_H
#define MIKA_CONF_CONFIG_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

enum config_type {
    CONFIG_BOOL,
    CONFIG_U16,
    CONFIG_U32,
    CONFIG_STRING,     /* up to size - 1 bytes */
    CONFIG_ADDR4,      /* an IPv4 address literal */
    CONFIG_ADDR6,      /* an IPv6 address literal */
    CONFIG_ADDR,       /* an IPv4 or IPv6 address literal */
    CONFIG_HEADER,     /* an HTTP header name, or empty */
    CONFIG_ENUM,       /* one of choices[], stored as a string */
    CONFIG_LOG_LEVEL,  /* enum mk_log_level */
    CONFIG_LOG_FORMAT, /* enum mk_log_format */
    CONFIG_CIDRS,      /* comma list into trusted_proxies/ntrusted_proxies */
};

struct config_key {
    const char *section;
    const char *key;
    enum config_type type;
    size_t offset; /* into struct mk_config */
    size_t size;   /* of the field: strings are bounded by it */
    uint32_t min, max;
    bool nonempty;
    const char *const *choices; /* CONFIG_ENUM: NULL-terminated */
    const char *def;            /* parsed by config_defaults() */
    const char *doc;
};

#define CONFIG_WHY_MAX 160

/* Sets one key from text. On failure cfg is unchanged and why (at least
 * CONFIG_WHY_MAX bytes) says what is wrong with the value (the caller adds
 * where it came from). */
int config_set(const struct config_key *k, struct mk_config *cfg, const char *v, char *why);

/* v made safe to quote back in a message: printable, at most cap - 1 bytes. */
const char *config_excerpt(char *out, size_t cap, const char *v);

#endif
