/* acct/journal.c: journal segments on disk. See journal.h for the format and
 * the crash rules.
 *
 * Invariant: a segment only ever grows by whole batches; a failed write is
 * truncated back to the last whole batch before anything else happens, so
 * a record is on disk at most once.
 */
#include "acct/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table lookup
 * per byte; the table is generated once by hand and checked by a unit test. */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu,
    0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
    0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu,
    0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
    0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu,
    0x1642ae59u, 0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu,
    0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu,
    0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu,
    0x4767748au, 0xb50cf789u, 0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
    0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu,
    0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
    0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u,
    0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
    0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u, 0x502036a5u,
    0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u,
    0x0e330a81u, 0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u,
    0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u,
    0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
    0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u,
    0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
    0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u,
    0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u,
    0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

static uint32_t crc32c_bytes(uint32_t crc, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    }
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE 4.2 computes CRC-32C eight bytes an instruction: the journal checks
 * every record twice (written, read back), so this is on the books' path. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p,
                                                                size_t len)
{
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = (uint32_t)__builtin_ia32_crc32di(crc, v);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = __builtin_ia32_crc32qi(crc, *p++);
        len--;
    }
    return crc;
}

static bool crc32c_has_sse42(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
    return crc32c_bytes(crc, p, len);
}

static bool crc32c_has_sse42(void)
{
    return false;
}
#endif

uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len)
{
    /* Read-only after the first call; every thread computes the same answer. */
    static _Atomic int has_sse42 = -1;
    int have = atomic_load_explicit(&has_sse42, memory_order_relaxed);
    if (have < 0) {
        have = crc32c_has_sse42();
        atomic_store_explicit(&has_sse42, have, memory_order_relaxed);
    }
    crc = ~crc;
    crc = have ? crc32c_sse42(crc, buf, len) : crc32c_bytes(crc, buf, len);
    return ~crc;
}

static uint32_t record_crc(const struct journal_record *r)
{
    return journal_crc32c(0, (const uint8_t *)r + sizeof(r->crc), sizeof(*r) - sizeof(r->crc));
}

static void segment_path(char *out, size_t cap, const char *dir, uint64_t boot, uint32_t writer,
                         uint64_t seq, const char *ext)
{
    snprintf(out, cap, "%s/%016" PRIx64 "-w%" PRIu32 "-%016" PRIu64 ".%s", dir, boot, writer, seq,
             ext);
}

/* Parses "<boot>-w<writer>-<seq>.<ext>"; false for any other name. */
static bool segment_parse(const char *name, struct journal_segment *seg, const char **ext)
{
    char *end;
    if (strlen(name) < 16 + 3 + 16 + 4) {
        return false;
    }
    errno = 0;
    seg->boot = strtoull(name, &end, 16);
    if (errno || end != name + 16 || strncmp(end, "-w", 2) != 0) {
        return false;
    }
    const char *p = end + 2;
    unsigned long writer = strtoul(p, &end, 10);
    if (errno || end == p || *end != '-' || writer > UINT32_MAX) {
        return false;
    }
    seg->writer = (uint32_t)writer;
    p = end + 1;
    seg->seq = strtoull(p, &end, 10);
    if (errno || end == p || *end != '.') {
        return false;
    }
    *ext = end + 1;
    return true;
}

static int make_dir(const char *dir, struct mk_errbuf *eb)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return mk_fail(eb, MK_EIO, "journal: cannot create %s: %s", dir, strerror(errno));
    }
    return MK_OK;
}

int journal_writer_open(struct journal_writer *w, const char *dir, uint64_t boot, uint32_t writer,
                        size_t batch_max, uint64_t seg_max_bytes, uint32_t seg_max_ms,
                        enum journal_fsync fsync, uint32_t fsync_interval_ms,
                        struct mk_errbuf *eb)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    if (strlen(dir) >= sizeof(w->dir) - 64) {
        return mk_fail(eb, MK_EINVAL, "journal: directory path too long");
    }
    int rc = make_dir(dir, eb);
    if (rc != MK_OK) {
        return rc;
    }
    w->batch = calloc(batch_max, sizeof(*w->batch));
    if (!w->batch) {
        return mk_fail(eb, MK_ENOMEM, "journal: out of memory");
    }
    snprintf(w->dir, sizeof(w->dir), "%s", dir);
    w->boot = boot;
    w->writer = writer;
    w->seq = 1;
    w->batch_max = batch_max;
    w->seg_max_bytes = seg_max_bytes;
    w->seg_max_ms = seg_max_ms;
    w->fsync = fsync;
    w->fsync_interval_ms = fsync_interval_ms;
    return MK_OK;
}

/* Closes the open segment and hands it to the flusher. */
static int writer_rotate(struct journal_writer *w)
{
    if (w->fd < 0) {
        return MK_OK;
    }
    /* The flusher may delete the .seg at once; it must be complete on disk
     * as far as this policy promises before it is renamed. */
    if (w->fsync != JOURNAL_FSYNC_NEVER) {
        fdatasync(w->fd);
    }
    close(w->fd);
    w->fd = -1;
    char from[1200], to[1200];
    segment_path(from, sizeof(from), w->dir, w->boot, w->writer, w->seq, "open");
    segment_path(to, sizeof(to), w->dir, w->boot, w->writer, w->seq, "seg");
    w->seq++;
    w->seg_bytes = 0;
    if (rename(from, to) != 0) {
        mk_log(MK_LOG_ERROR, "journal", "cannot close segment %s: %s", from, strerror(errno));
        return MK_EIO;
    }
    return MK_OK;
}

void journal_writer_close(struct journal_writer *w)
{
    writer_rotate(w);
    free(w->batch);
    w->batch = NULL;
}

int journal_add(struct journal_writer *w, const struct acct_delta *d)
{
    if (w->nbatch == w->batch_max) {
        return MK_ELIMIT;
    }
    struct journal_record *r = &w->batch[w->nbatch++];
    memset(r, 0, sizeof(*r));
    r->magic = JOURNAL_MAGIC;
    r->user_id = d->user_id;
    r->torrent_id = d->torrent_id;
    r->uploaded = d->uploaded;
    r->downloaded = d->downloaded;
    r->at = d->at;
    r->flags = (d->snatch ? JOURNAL_SNATCH : 0) | (d->has_peer ? JOURNAL_PEER : 0) |
               (d->peer.gone ? JOURNAL_PEER_GONE : 0) | (d->peer.seeder ? JOURNAL_SEEDER : 0) |
               (d->peer.partial ? JOURNAL_PARTIAL : 0) | (d->has_credit ? JOURNAL_CREDITED : 0) |
               (d->peer.fresh ? JOURNAL_PEER_FRESH : 0) |
               ((uint32_t)(d->suspicious & 3) << JOURNAL_SUSPICIOUS_SHIFT);
    r->credited_up = d->credited_up;
    r->credited_down = d->credited_down;
    r->seed_seconds = d->seed_seconds;
    r->leech_seconds = d->leech_seconds;
    r->bonus = d->bonus;
    if (d->has_peer) {
        r->port = d->peer.port;
        r->family = d->peer.family;
        r->reported_up = d->peer.uploaded;
        r->reported_down = d->peer.downloaded;
        r->version = d->peer.version;
        r->node_id = d->peer.node_id;
        memcpy(r->peer_id, d->peer.peer_id, sizeof(r->peer_id));
        memcpy(r->ip, d->peer.ip, sizeof(r->ip));
    }
    r->crc = record_crc(r);
    return MK_OK;
}

static int writer_open_segment(struct journal_writer *w, int64_t now_ms)
{
    char path[1200];
    segment_path(path, sizeof(path), w->dir, w->boot, w->writer, w->seq, "open");
    w->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        mk_log(MK_LOG_ERROR, "journal", "cannot open %s: %s", path, strerror(errno));
        return MK_EIO;
    }
    w->seg_bytes = 0;
    w->seg_opened_ms = now_ms;
    return MK_OK;
}

int journal_commit(struct journal_writer *w, int64_t now_ms)
{
    if (w->nbatch == 0) {
        return journal_tick(w, now_ms);
    }
    if (w->fd < 0 && writer_open_segment(w, now_ms) != MK_OK) {
        return MK_EIO;
    }
    const uint8_t *p = (const uint8_t *)w->batch;
    size_t left = w->nbatch * sizeof(*w->batch);
    while (left > 0) {
        ssize_t n = write(w->fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            /* Undo the part that made it, so a retry cannot write a record twice. */
            int err = errno;
            if (ftruncate(w->fd, (off_t)w->seg_bytes) != 0) {
                mk_log(MK_LOG_ERROR, "journal", "write failed (%s) and truncate failed too: "
                       "closing the segment", strerror(err));
                close(w->fd);
                w->fd = -1;
                w->seq++; /* never append to that file again */
            } else {
                mk_log(MK_LOG_ERROR, "journal", "write failed: %s", strerror(err));
            }
            return MK_EIO;
        }
        p += n;
        left -= (size_t)n;
    }
    w->seg_bytes += w->nbatch * sizeof(*w->batch);
    w->nbatch = 0;
    if (w->fsync == JOURNAL_FSYNC_ALWAYS ||
        (w->fsync == JOURNAL_FSYNC_INTERVAL && now_ms - w->last_sync_ms >= w->fsync_interval_ms)) {
        fdatasync(w->fd);
        w->last_sync_ms = now_ms;
    }
    if (w->seg_bytes >= w->seg_max_bytes) {
        return writer_rotate(w);
    }
    return journal_tick(w, now_ms);
}

int journal_tick(struct journal_writer *w, int64_t now_ms)
{
    if (w->fd >= 0 && now_ms - w->seg_opened_ms >= w->seg_max_ms) {
        return writer_rotate(w);
    }
    return MK_OK;
}

/* ---- reading: recovery and the flusher ---------------------------------- */

int journal_recover(const char *dir, struct mk_errbuf *eb)
{
    int rc = make_dir(dir, eb);
    if (rc != MK_OK) {
        return rc;
    }
    DIR *d = opendir(dir);
    if (!d) {
        return mk_fail(eb, MK_EIO, "journal: cannot read %s: %s", dir, strerror(errno));
    }
    int closed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct journal_segment seg;
        const char *ext;
        if (!segment_parse(e->d_name, &seg, &ext) || strcmp(ext, "open") != 0) {
            continue;
        }
        char from[1200], to[1200];
        segment_path(from, sizeof(from), dir, seg.boot, seg.writer, seg.seq, "open");
        segment_path(to, sizeof(to), dir, seg.boot, seg.writer, seg.seq, "seg");
        if (rename(from, to) != 0) {
            closedir(d);
            return mk_fail(eb, MK_EIO, "journal: cannot close %s: %s", from, strerror(errno));
        }
        closed++;
    }
    closedir(d);
    return closed;
}

static int segment_cmp(const void *a, const void *b)
{
    const struct journal_segment *x = a, *y = b;
    if (x->boot != y->boot) {
        return x->boot < y->boot ? -1 : 1;
    }
    if (x->writer != y->writer) {
        return x->writer < y->writer ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int journal_list(const char *dir, struct journal_segment *out, size_t max, size_t *n,
                 struct mk_errbuf *eb)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return mk_fail(eb, MK_EIO, "journal: cannot read %s: %s", dir, strerror(errno));
    }
    int rc = MK_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct journal_segment seg;
        const char *ext;
        if (!segment_parse(e->d_name, &seg, &ext) || strcmp(ext, "seg") != 0) {
            continue;
        }
        if (*n == max) {
            rc = MK_ELIMIT;
            continue;
        }
        out[(*n)++] = seg;
    }
    closedir(d);
    qsort(out, *n, sizeof(*out), segment_cmp);
    return rc;
}

int journal_read(const char *dir, const struct journal_segment *seg, struct acct_delta *out,
                 size_t max, size_t *n, struct mk_errbuf *eb)
{
    *n = 0;
    char path[1200];
    segment_path(path, sizeof(path), dir, seg->boot, seg->writer, seg->seq, "seg");
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mk_fail(eb, MK_EIO, "journal: cannot open %s: %s", path, strerror(errno));
    }
    /* Segments are read front to back once: large reads, few syscalls. */
    setvbuf(f, NULL, _IOFBF, 1 << 16);
    int rc = MK_OK;
    struct journal_record r;
    while (fread(&r, sizeof(r), 1, f) == 1) {
        if (r.magic != JOURNAL_MAGIC || r.crc != record_crc(&r)) {
            /* A torn tail from a crash: that batch was never answered. */
            mk_log(MK_LOG_WARN, "journal", "%s: record %zu is torn, ignoring it and the rest",
                   path, *n);
            break;
        }
        if (*n == max) {
            rc = mk_fail(eb, MK_ELIMIT, "journal: %s holds more than %zu records", path, max);
            break;
        }
        struct acct_delta *d = &out[(*n)++];
        memset(d, 0, sizeof(*d));
        d->user_id = r.user_id;
        d->torrent_id = r.torrent_id;
        d->uploaded = r.uploaded;
        d->downloaded = r.downloaded;
        d->snatch = (r.flags & JOURNAL_SNATCH) != 0;
        d->at = r.at;
        d->first_at = r.at;
        d->announces = 1; /* a record is one answered announce */
        d->has_credit = (r.flags & JOURNAL_CREDITED) != 0;
        d->suspicious = (uint8_t)((r.flags >> JOURNAL_SUSPICIOUS_SHIFT) & 3);
        d->suspicious_up = d->suspicious ? r.uploaded : 0;
        d->credited_up = r.credited_up;
        d->credited_down = r.credited_down;
        d->seed_seconds = r.seed_seconds;
        d->leech_seconds = r.leech_seconds;
        d->bonus = r.bonus;
        d->has_peer = (r.flags & JOURNAL_PEER) != 0;
        if (d->has_peer) {
            d->peer.gone = (r.flags & JOURNAL_PEER_GONE) != 0;
            d->peer.version = r.version;
            d->peer.torrent_id = r.torrent_id;
            d->peer.user_id = r.user_id;
            memcpy(d->peer.peer_id, r.peer_id, sizeof(r.peer_id));
            d->peer.family = r.family;
            memcpy(d->peer.ip, r.ip, sizeof(r.ip));
            d->peer.port = r.port;
            d->peer.uploaded = r.reported_up;
            d->peer.downloaded = r.reported_down;
            d->peer.seeder = (r.flags & JOURNAL_SEEDER) != 0;
            d->peer.partial = (r.flags & JOURNAL_PARTIAL) != 0;
            d->peer.fresh = (r.flags & JOURNAL_PEER_FRESH) != 0;
            d->peer.last_seen = r.at;
            d->peer.node_id = (uint16_t)r.node_id;
        }
    }
    fclose(f);
    return rc;
}

int journal_remove(const char *dir, const struct journal_segment *seg, struct mk_errbuf *eb)
{
    char path[1200];
    segment_path(path, sizeof(path), dir, seg->boot, seg->writer, seg->seq, "seg");
    if (unlink(path) != 0 && errno != ENOENT) {
        return mk_fail(eb, MK_EIO, "journal: cannot remove %s: %s", path, strerror(errno));
    }
    return MK_OK;
}

/* Bytes and the oldest modification time (unix seconds; 0: none) of the
 * closed segments in dir. */
static void journal_scan(const char *dir, uint64_t *bytes, int64_t *oldest)
{
    *bytes = 0;
    *oldest = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct journal_segment seg;
        const char *ext;
        if (!segment_parse(e->d_name, &seg, &ext) || strcmp(ext, "seg") != 0) {
            continue;
        }
        char path[1200];
        segment_path(path, sizeof(path), dir, seg.boot, seg.writer, seg.seq, "seg");
        struct stat st;
        if (stat(path, &st) == 0) {
            *bytes += (uint64_t)st.st_size;
            if (*oldest == 0 || (int64_t)st.st_mtime < *oldest) {
                *oldest = (int64_t)st.st_mtime;
            }
        }
    }
    closedir(d);
}

uint64_t journal_backlog_bytes(const char *dir)
{
    uint64_t bytes;
    int64_t oldest;
    journal_scan(dir, &bytes, &oldest);
    return bytes;
}

int64_t journal_oldest_closed(const char *dir)
{
    uint64_t bytes;
    int64_t oldest;
    journal_scan(dir, &bytes, &oldest);
    return oldest;
}

uint64_t journal_boot_id(uint32_t node_id, uint64_t random)
{
    if (node_id == 0) {
        return random;
    }
    return ((uint64_t)(node_id & 0xffff) << 48) | (random & ((UINT64_C(1) << 48) - 1));
}
