/* fuzz/fuzz_config.c: config_load on an arbitrary INI file and environment.
 *
 * Owns: turning the input into a file (the bytes before the first "\0\0")
 * and environment entries (the bytes after it, one per line), and the
 * properties any load must keep:
 *   - only 0, MK_EINVAL or MK_EIO (the file is always readable here);
 *   - on failure the caller's struct is unchanged and the message is one
 *     line of printable ASCII (values are quoted back, so they must be
 *     defanged), naming where the error is;
 *   - on success every cross-key rule of docs/CONFIG.md holds, numbers lie
 *     in their documented ranges, strings are terminated within their
 *     fields, proxy CIDRs have no host bits, and loading the same input on
 *     top of the result changes nothing.
 * The file is a memfd read through /proc/self/fd, so nothing touches disk
 * and nothing is left behind.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf/config.h"

#include "fuzz.h"

#define FUZZ_ENV_MAX 16

static void fuzz_check_terminated(const char *field, size_t size)
{
    FUZZ_CHECK(memchr(field, '\0', size) != NULL);
}

#define FUZZ_STR(cfg, f) fuzz_check_terminated((cfg)->f, sizeof((cfg)->f))

static void fuzz_check_cidr(const struct mk_cidr *c)
{
    FUZZ_CHECK(c->family == AF_INET || c->family == AF_INET6);
    unsigned bits = c->family == AF_INET ? 32 : 128;
    FUZZ_CHECK(c->prefix <= bits);
    for (unsigned i = c->prefix; i < 128; i++) {
        FUZZ_CHECK((c->addr[i / 8] & (0x80u >> (i % 8))) == 0);
    }
}

/* What a successful load promises (docs/CONFIG.md, the key table). */
static void fuzz_check_valid(const struct mk_config *c)
{
    FUZZ_CHECK(c->port >= 1 && c->api_port >= 1);
    FUZZ_CHECK(c->ipv4 || c->ipv6);
    FUZZ_CHECK(c->workers <= 256);
    FUZZ_CHECK(c->max_request_bytes >= 256 && c->max_request_bytes <= 65536);
    FUZZ_CHECK(c->max_request_line >= 64 && c->max_request_line <= c->max_request_bytes);
    FUZZ_CHECK(c->max_connections >= 1 && c->max_connections <= 1000000);
    FUZZ_CHECK(c->idle_timeout >= 1 && c->idle_timeout <= 3600);
    FUZZ_CHECK(c->header_timeout >= 1 && c->header_timeout <= 3600);
    FUZZ_CHECK(c->max_keepalive_requests >= 1);
    FUZZ_CHECK(c->interval >= 1 && c->interval <= 86400);
    FUZZ_CHECK(c->min_interval >= 1 && c->min_interval <= c->interval);
    FUZZ_CHECK(c->numwant_default >= 1 && c->numwant_default <= c->numwant_max);
    FUZZ_CHECK(c->numwant_max <= 1000);
    FUZZ_CHECK(c->expiry_factor >= 1 && c->expiry_factor <= 100);
    FUZZ_CHECK(c->scrape_max_hashes >= 1 && c->scrape_max_hashes <= 1000);
    FUZZ_CHECK(c->api_max_body_bytes >= 1024 && c->api_max_body_bytes <= 67108864);
    FUZZ_CHECK(c->ntrusted_proxies <= MK_CONFIG_MAX_PROXIES);
    for (uint32_t i = 0; i < c->ntrusted_proxies; i++) {
        fuzz_check_cidr(&c->trusted_proxies[i]);
    }
    FUZZ_STR(c, bind4);
    FUZZ_STR(c, bind6);
    FUZZ_STR(c, event_loop);
    FUZZ_STR(c, real_ip_header);
    FUZZ_STR(c, db_path);
    FUZZ_STR(c, api_bind);
    FUZZ_STR(c, api_cert);
    FUZZ_STR(c, api_key);
    FUZZ_STR(c, api_keys);
    FUZZ_STR(c, api_data_dir);
    FUZZ_STR(c, api_announce_url);
    uint8_t bin[16];
    FUZZ_CHECK(inet_pton(AF_INET, c->bind4, bin) == 1);
    FUZZ_CHECK(inet_pton(AF_INET6, c->bind6, bin) == 1);
    FUZZ_CHECK(c->db_path[0] != '\0' && c->api_data_dir[0] != '\0');
}

/* The fields a load can set, compared one by one (a struct compare would
 * see padding). */
static bool fuzz_same(const struct mk_config *a, const struct mk_config *b)
{
    return a->port == b->port && a->ipv4 == b->ipv4 && a->ipv6 == b->ipv6 &&
           strcmp(a->bind4, b->bind4) == 0 && strcmp(a->bind6, b->bind6) == 0 &&
           a->workers == b->workers && strcmp(a->event_loop, b->event_loop) == 0 &&
           a->max_request_bytes == b->max_request_bytes &&
           a->max_request_line == b->max_request_line &&
           a->max_connections == b->max_connections && a->idle_timeout == b->idle_timeout &&
           a->header_timeout == b->header_timeout &&
           a->max_keepalive_requests == b->max_keepalive_requests &&
           a->interval == b->interval && a->min_interval == b->min_interval &&
           a->numwant_default == b->numwant_default && a->numwant_max == b->numwant_max &&
           a->expiry_factor == b->expiry_factor && a->scrape_max_hashes == b->scrape_max_hashes &&
           a->allow_ip_param == b->allow_ip_param && a->whitelist == b->whitelist &&
           strcmp(a->real_ip_header, b->real_ip_header) == 0 &&
           a->ntrusted_proxies == b->ntrusted_proxies &&
           memcmp(a->trusted_proxies, b->trusted_proxies,
                  a->ntrusted_proxies * sizeof(a->trusted_proxies[0])) == 0 &&
           strcmp(a->db_path, b->db_path) == 0 && a->log_level == b->log_level &&
           a->log_format == b->log_format && a->api_enabled == b->api_enabled &&
           a->api_port == b->api_port && strcmp(a->api_bind, b->api_bind) == 0 &&
           strcmp(a->api_cert, b->api_cert) == 0 && strcmp(a->api_key, b->api_key) == 0 &&
           strcmp(a->api_keys, b->api_keys) == 0 &&
           strcmp(a->api_data_dir, b->api_data_dir) == 0 &&
           a->api_max_body_bytes == b->api_max_body_bytes &&
           strcmp(a->api_announce_url, b->api_announce_url) == 0;
}

/* Splits data into the file part and NUL-terminated environment entries
 * (owned by *store); returns the file length. */
static size_t fuzz_split(const uint8_t *data, size_t size, char **store, char *envp[])
{
    size_t file_len = size;
    for (size_t i = 0; i + 1 < size; i++) {
        if (data[i] == 0 && data[i + 1] == 0) {
            file_len = i;
            break;
        }
    }
    size_t n = 0;
    envp[0] = NULL;
    if (file_len + 2 > size) {
        *store = NULL;
        return file_len;
    }
    size_t env_len = size - file_len - 2;
    *store = malloc(env_len + 1);
    FUZZ_CHECK(*store != NULL);
    memcpy(*store, data + file_len + 2, env_len);
    (*store)[env_len] = '\0';
    char *p = *store;
    while (*p && n < FUZZ_ENV_MAX) {
        char *end = p + strcspn(p, "\n");
        bool last = *end == '\0';
        *end = '\0';
        envp[n++] = p;
        if (last) {
            break;
        }
        p = end + 1;
    }
    envp[n] = NULL;
    return file_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *env_store;
    char *envp[FUZZ_ENV_MAX + 1];
    size_t file_len = fuzz_split(data, size, &env_store, envp);

    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(file_len == 0 || write(fd, data, file_len) == (ssize_t)file_len);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    struct mk_config cfg, before;
    config_defaults(&cfg);
    config_defaults(&before);
    struct mk_errbuf eb = {{0}};
    int rc = config_load(&cfg, path, envp, &eb);
    FUZZ_CHECK(rc == 0 || rc == MK_EINVAL);
    if (rc != 0) {
        fuzz_check_message(&eb, sizeof(eb.msg));
        FUZZ_CHECK(fuzz_same(&cfg, &before));
    } else {
        fuzz_check_valid(&cfg);
        /* Every key the input sets it sets again to the same value; keys it
         * leaves alone keep what the first load gave them. */
        struct mk_config again = cfg;
        struct mk_errbuf eb2 = {{0}};
        FUZZ_CHECK(config_load(&again, path, envp, &eb2) == 0);
        FUZZ_CHECK(fuzz_same(&again, &cfg));
    }
    close(fd);
    free(env_store);
    return 0;
}
