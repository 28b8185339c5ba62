/* acct/journal.h: the accounting journal, append-only segment files on disk.
 *
 * Owns: the on-disk record format, one writer per worker (records of one
 * event-loop turn go out in a single write(2) before that turn's answers are
 * sent), segment rotation, and reading closed segments back for the flusher
 * and for recovery after a crash.
 * Not here: applying records to the store exactly once (flusher.c records
 * each segment's (writer, seq) in the same transaction), fsync scheduling
 * beyond the policy flag.
 *
 * Files, in one directory: "<boot>-w<writer>-<seq>.open" is being written
 * (at most one per writer); "<boot>-w<writer>-<seq>.seg" is closed and waits
 * for the flusher; the flusher deletes a .seg once the store has it. <boot> is
 * a random 64-bit id drawn at each start (a cluster node's id in its top
 * 16 bits: journal_boot_id), so (boot, writer, seq) names a segment uniquely
 * forever, among every node, without asking the store where numbering
 * stopped. After a crash, an .open
 * file is closed as it is: a record torn by the crash fails its checksum and
 * it and everything after it are ignored (they were never answered: a turn's
 * answers leave only after its write returned).
 */
#ifndef MIKA_ACCT_JOURNAL_H
#define MIKA_ACCT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define JOURNAL_MAGIC 0x4d4b4a32u /* "MKJ2": in every record */

/* One record: what one announce changed. Fixed layout with no padding, in
 * the host's byte order (a journal is not moved between machines); the crc
 * (CRC-32C) covers every byte after itself. A new layout takes a new magic. */
struct journal_record {
    uint32_t crc;
    uint32_t magic;        /* JOURNAL_MAGIC */
    uint32_t user_id;
    uint32_t torrent_id;
    uint64_t uploaded;     /* raw bytes since the peer's previous report */
    uint64_t downloaded;
    int64_t at;            /* unix seconds; also the peer's last_seen */
    uint32_t flags;        /* JOURNAL_* below */
    uint16_t port;         /* the peer's, host order */
    uint8_t family;        /* 4 or 6 */
    uint8_t reserved;      /* zero */
    uint64_t reported_up;  /* the peer's report: the baseline for its next delta */
    uint64_t reported_down;
    uint8_t peer_id[20];
    uint8_t ip[16];
    uint32_t node_id;      /* the cluster node that answered (peer.node_id); 0: none.
                            * Was a zero reserved field: older records read as 0 */
    int64_t version;       /* unix microseconds: orders a peer's reports across workers */
    uint64_t credited_up;  /* after multipliers; JOURNAL_CREDITED */
    uint64_t credited_down;
    uint32_t seed_seconds; /* since the peer's previous announce, capped */
    uint32_t leech_seconds;
    uint64_t bonus;        /* micro-points */
};
_Static_assert(sizeof(struct journal_record) == 144, "journal records have a fixed layout");

#define JOURNAL_SNATCH 1u     /* first completion by this user */
#define JOURNAL_PEER 2u       /* the peer fields are meaningful */
#define JOURNAL_PEER_GONE 4u  /* the peer left: forget its baseline */
#define JOURNAL_SEEDER 8u
#define JOURNAL_PARTIAL 16u
#define JOURNAL_CREDITED 32u  /* credited_* are set (else they equal the raw deltas) */
#define JOURNAL_PEER_FRESH 64u /* peer.fresh: new to its swarm (older records lack it) */
#define JOURNAL_SUSPICIOUS_SHIFT 8 /* bits 8-9: enum acct_suspicion */

enum journal_fsync {
    JOURNAL_FSYNC_NEVER,    /* the OS writes back when it likes: a power loss may lose minutes */
    JOURNAL_FSYNC_INTERVAL, /* fdatasync at most every interval_ms: loses at most that */
    JOURNAL_FSYNC_ALWAYS,   /* fdatasync every turn: loses nothing answered, costs a disk flush */
};

struct journal_writer {
    char dir[1024];
    uint64_t boot;           /* this process's random id */
    uint32_t writer;         /* worker number: part of every file name */
    uint64_t seq;            /* current segment */
    int fd;                  /* -1 when no segment is open */
    uint64_t seg_bytes;      /* bytes in the current segment */
    uint64_t seg_max_bytes;  /* rotate past this */
    int64_t seg_opened_ms;
    uint32_t seg_max_ms;     /* rotate after this long, so the flusher is never far behind */
    enum journal_fsync fsync;
    uint32_t fsync_interval_ms;
    int64_t last_sync_ms;
    struct journal_record *batch; /* this turn's records, not yet written */
    size_t nbatch;
    size_t batch_max;
};

/* The boot id of a process: random, with node_id (a cluster's node, 1..65535)
 * in the top 16 bits, so that two nodes sharing one journal_applied table
 * never name two segments alike; node_id 0 (a single node) keeps all 64
 * random bits. */
uint64_t journal_boot_id(uint32_t node_id, uint64_t random);

/* Opens a writer for worker `writer` of process `boot` in dir (created if
 * missing). No file is created until the first commit with records. */
int journal_writer_open(struct journal_writer *w, const char *dir, uint64_t boot, uint32_t writer,
                        size_t batch_max, uint64_t seg_max_bytes, uint32_t seg_max_ms,
                        enum journal_fsync fsync, uint32_t fsync_interval_ms,
                        struct mk_errbuf *eb);
/* Closes the open segment (renaming it to .seg) and frees the writer. */
void journal_writer_close(struct journal_writer *w);

/* Adds a record to this turn's batch. MK_ELIMIT when the batch is full: the
 * caller must journal_commit() first (or refuse the announce). */
int journal_add(struct journal_writer *w, const struct acct_delta *d);

/* Writes the batch in one write(2) (and fdatasyncs per policy), then rotates
 * the segment if it is old or large. After MK_OK the records survive the
 * process being killed; until then nothing of this turn may be answered.
 * MK_EIO: nothing of the batch can be trusted to be on disk; the batch is
 * kept so the caller can retry, and its announces must not be answered. */
int journal_commit(struct journal_writer *w, int64_t now_ms);

/* Rotates if the open segment is older than seg_max_ms, even without new
 * records, so the flusher sees every record within about seg_max_ms. */
int journal_tick(struct journal_writer *w, int64_t now_ms);

/* A closed segment, named for the flusher. */
struct journal_segment {
    uint64_t boot;
    uint32_t writer;
    uint64_t seq;
};

/* Closes any .open files left by a crash (renames them to .seg). Call once at
 * start-up, before any writer opens. Returns how many it closed. */
int journal_recover(const char *dir, struct mk_errbuf *eb);

/* Lists closed segments, ordered by (boot, writer, seq), into out (room for max);
 * *n gets how many. MK_ELIMIT if there are more than max (the first max are
 * listed). */
int journal_list(const char *dir, struct journal_segment *out, size_t max, size_t *n,
                 struct mk_errbuf *eb);

/* Reads a closed segment's valid records into out (room for max), stopping
 * at the first record that fails its checksum or magic (a torn tail). *n gets
 * how many. MK_ELIMIT if the segment holds more than max valid records. */
int journal_read(const char *dir, const struct journal_segment *seg, struct acct_delta *out,
                 size_t max, size_t *n, struct mk_errbuf *eb);

/* Deletes a segment the store has applied. */
int journal_remove(const char *dir, const struct journal_segment *seg, struct mk_errbuf *eb);

/* Bytes in closed segments not yet applied: the backlog a store outage builds. */
uint64_t journal_backlog_bytes(const char *dir);

/* When the oldest closed segment was last written (unix seconds; 0: none
 * waits). One applied long ago and still on disk means its removal failed. */
int64_t journal_oldest_closed(const char *dir);

/* CRC-32C (Castagnoli) of len bytes, continuing from crc (start with 0). */
uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* MIKA_ACCT_JOURNAL_H */
