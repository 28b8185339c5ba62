/* Unit tests for acct/journal.c: record format and checksum, batching,
 * rotation, recovery after a crash (open segments, torn tails), listing,
 * reading back and removal. Files live in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acct/journal.h"

struct fixture {
    char dir[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/mika-journal-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct acct_delta delta(uint32_t user, uint64_t up)
{
    struct acct_delta d = {.user_id = user, .torrent_id = user + 100, .uploaded = up,
                           .downloaded = up * 2, .snatch = (up % 2) == 1, .at = 1700000000};
    /* Every other one with its peer's report, answered by cluster node 9. */
    if (user % 2 == 0) {
        d.has_peer = true;
        d.peer = (struct peer_row){.torrent_id = d.torrent_id, .user_id = user, .family = 4,
                                   .port = 6881, .uploaded = up, .version = 5, .node_id = 9,
                                   .fresh = user % 4 == 0};
    }
    return d;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l > s && strcmp(e->d_name + l - s, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static void test_crc32c_check_value(void **state)
{
    (void)state;
    /* The standard check value of CRC-32C over "123456789". */
    assert_int_equal(journal_crc32c(0, "123456789", 9), 0xe3069283u);
    /* Continuation equals one pass. */
    uint32_t part = journal_crc32c(0, "1234", 4);
    assert_int_equal(journal_crc32c(part, "56789", 5), 0xe3069283u);
}

/* Whatever path computes it (SSE 4.2 or the table), the CRC equals the
 * bitwise definition, for every length and alignment. */
static uint32_t crc32c_reference(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void test_crc32c_matches_the_bitwise_definition(void **state)
{
    (void)state;
    uint8_t buf[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len + off <= sizeof(buf); len += 7) {
            assert_int_equal(journal_crc32c(0, buf + off, len), crc32c_reference(buf + off, len));
        }
    }
}

static void test_no_file_until_first_records(void **state)
{
    struct fixture *f = *state;
    struct journal_writer w;
    assert_int_equal(journal_writer_open(&w, f->dir, 7, 0, 16, 1 << 20, 1000,
                                         JOURNAL_FSYNC_NEVER, 0, NULL), MK_OK);
    assert_int_equal(journal_commit(&w, 0), MK_OK);
    assert_int_equal(count_files(f->dir, ".open") + count_files(f->dir, ".seg"), 0);
    journal_writer_close(&w);
    assert_int_equal(count_files(f->dir, ".seg"), 0);
}

static void test_commit_then_close_reads_back_exactly(void **state)
{
    struct fixture *f = *state;
    struct journal_writer w;
    assert_int_equal(journal_writer_open(&w, f->dir, 7, 3, 16, 1 << 20, 1000,
                                         JOURNAL_FSYNC_ALWAYS, 0, NULL), MK_OK);
    for (uint32_t i = 0; i < 10; i++) {
        struct acct_delta d = delta(i, 1000 + i);
        assert_int_equal(journal_add(&w, &d), MK_OK);
    }
    assert_int_equal(journal_commit(&w, 5), MK_OK);
    assert_int_equal(count_files(f->dir, ".open"), 1);
    journal_writer_close(&w);
    assert_int_equal(count_files(f->dir, ".seg"), 1);

    struct journal_segment segs[4];
    size_t n;
    assert_int_equal(journal_list(f->dir, segs, 4, &n, NULL), MK_OK);
    assert_int_equal(n, 1);
    assert_int_equal(segs[0].boot, 7);
    assert_int_equal(segs[0].writer, 3);
    struct acct_delta out[16];
    size_t got;
    assert_int_equal(journal_read(f->dir, &segs[0], out, 16, &got, NULL), MK_OK);
    assert_int_equal(got, 10);
    for (uint32_t i = 0; i < 10; i++) {
        struct acct_delta want = delta(i, 1000 + i);
        assert_int_equal(out[i].user_id, want.user_id);
        assert_int_equal(out[i].torrent_id, want.torrent_id);
        assert_int_equal(out[i].uploaded, want.uploaded);
        assert_int_equal(out[i].downloaded, want.downloaded);
        assert_int_equal(out[i].snatch, want.snatch);
        assert_int_equal(out[i].at, want.at);
        assert_int_equal(out[i].has_peer, want.has_peer);
        if (want.has_peer) {
            assert_int_equal(out[i].peer.uploaded, want.peer.uploaded);
            assert_int_equal(out[i].peer.version, want.peer.version);
            assert_int_equal(out[i].peer.node_id, 9); /* whose baseline it is */
            assert_int_equal(out[i].peer.fresh, want.peer.fresh);
        }
    }
    assert_int_equal(journal_backlog_bytes(f->dir), 10 * sizeof(struct journal_record));
    assert_int_equal(journal_remove(f->dir, &segs[0], NULL), MK_OK);
    assert_int_equal(journal_backlog_bytes(f->dir), 0);
}

static void test_full_batch_refuses_until_committed(void **state)
{
    struct fixture *f = *state;
    struct journal_writer w;
    assert_int_equal(journal_writer_open(&w, f->dir, 1, 0, 2, 1 << 20, 1000,
                                         JOURNAL_FSYNC_NEVER, 0, NULL), MK_OK);
    struct acct_delta d = delta(1, 1);
    assert_int_equal(journal_add(&w, &d), MK_OK);
    assert_int_equal(journal_add(&w, &d), MK_OK);
    assert_int_equal(journal_add(&w, &d), MK_ELIMIT);
    assert_int_equal(journal_commit(&w, 0), MK_OK);
    assert_int_equal(journal_add(&w, &d), MK_OK);
    journal_writer_close(&w);
}

static void test_rotates_by_size_and_by_age(void **state)
{
    struct fixture *f = *state;
    struct journal_writer w;
    /* Two records per segment by size. */
    assert_int_equal(journal_writer_open(&w, f->dir, 1, 0, 16, 2 * sizeof(struct journal_record),
                                         100, JOURNAL_FSYNC_NEVER, 0, NULL), MK_OK);
    struct acct_delta d = delta(1, 2);
    for (int i = 0; i < 4; i++) {
        journal_add(&w, &d);
        assert_int_equal(journal_commit(&w, 0), MK_OK);
    }
    assert_int_equal(count_files(f->dir, ".seg"), 2);
    assert_int_equal(count_files(f->dir, ".open"), 0);
    /* By age: one record, then time passes with no new records. */
    journal_add(&w, &d);
    assert_int_equal(journal_commit(&w, 1000), MK_OK);
    assert_int_equal(count_files(f->dir, ".open"), 1);
    assert_int_equal(journal_tick(&w, 1050), MK_OK);
    assert_int_equal(count_files(f->dir, ".open"), 1);
    assert_int_equal(journal_tick(&w, 1100), MK_OK);
    assert_int_equal(count_files(f->dir, ".open"), 0);
    assert_int_equal(count_files(f->dir, ".seg"), 3);
    journal_writer_close(&w);

    struct journal_segment segs[8];
    size_t n;
    assert_int_equal(journal_list(f->dir, segs, 8, &n, NULL), MK_OK);
    assert_int_equal(n, 3);
    assert_true(segs[0].seq < segs[1].seq && segs[1].seq < segs[2].seq);
    assert_int_equal(journal_list(f->dir, segs, 2, &n, NULL), MK_ELIMIT);
    assert_int_equal(n, 2);
}

/* A crash leaves an .open file whose last record is half written. */
static void test_recover_closes_open_segments_and_ignores_torn_tail(void **state)
{
    struct fixture *f = *state;
    struct journal_writer w;
    assert_int_equal(journal_writer_open(&w, f->dir, 9, 1, 16, 1 << 20, 100000,
                                         JOURNAL_FSYNC_NEVER, 0, NULL), MK_OK);
    struct acct_delta d = delta(5, 77);
    for (int i = 0; i < 3; i++) {
        journal_add(&w, &d);
    }
    assert_int_equal(journal_commit(&w, 0), MK_OK);
    /* Simulate kill -9 in the middle of the next write: half a record. */
    char path[512];
    snprintf(path, sizeof(path), "%s/%016x-w1-%016d.open", f->dir, 9, 1);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    struct journal_record half;
    memset(&half, 0xab, sizeof(half));
    assert_int_equal(write(fd, &half, sizeof(half) / 2), (ssize_t)(sizeof(half) / 2));
    close(fd);
    free(w.batch); /* the process "died": no close */

    assert_int_equal(journal_recover(f->dir, NULL), 1);
    assert_int_equal(count_files(f->dir, ".open"), 0);
    struct journal_segment segs[4];
    size_t n, got;
    assert_int_equal(journal_list(f->dir, segs, 4, &n, NULL), MK_OK);
    assert_int_equal(n, 1);
    struct acct_delta out[8];
    assert_int_equal(journal_read(f->dir, &segs[0], out, 8, &got, NULL), MK_OK);
    assert_int_equal(got, 3);
    assert_int_equal(out[2].uploaded, 77);
}

static void test_corrupt_record_stops_reading(void **state)
{
    struct fixture *f = *state;
    struct journal_writer w;
    assert_int_equal(journal_writer_open(&w, f->dir, 2, 0, 16, 1 << 20, 100000,
                                         JOURNAL_FSYNC_NEVER, 0, NULL), MK_OK);
    for (uint32_t i = 0; i < 5; i++) {
        struct acct_delta d = delta(i, i);
        journal_add(&w, &d);
    }
    journal_commit(&w, 0);
    journal_writer_close(&w);
    struct journal_segment segs[2];
    size_t n, got;
    journal_list(f->dir, segs, 2, &n, NULL);
    char path[512];
    snprintf(path, sizeof(path), "%s/%016x-w0-%016d.seg", f->dir, 2, 1);
    /* Flip one byte inside record 3's uploaded field. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = 3 * (off_t)sizeof(struct journal_record) + 16;
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    struct acct_delta out[8];
    assert_int_equal(journal_read(f->dir, &segs[0], out, 8, &got, NULL), MK_OK);
    assert_int_equal(got, 3);
}

static void test_read_over_max_is_elimit(void **state)
{
    struct fixture *f = *state;
    struct journal_writer w;
    journal_writer_open(&w, f->dir, 3, 0, 16, 1 << 20, 100000, JOURNAL_FSYNC_NEVER, 0, NULL);
    for (uint32_t i = 0; i < 5; i++) {
        struct acct_delta d = delta(i, i);
        journal_add(&w, &d);
    }
    journal_commit(&w, 0);
    journal_writer_close(&w);
    struct journal_segment segs[2];
    size_t n, got;
    journal_list(f->dir, segs, 2, &n, NULL);
    struct acct_delta out[4];
    assert_int_equal(journal_read(f->dir, &segs[0], out, 4, &got, NULL), MK_ELIMIT);
    assert_int_equal(got, 4);
}

/* Two processes (boot ids) and two writers never share a file name, and the
 * listing groups by boot, then writer, then sequence. */
static void test_names_unique_across_boots_and_writers(void **state)
{
    struct fixture *f = *state;
    uint64_t boots[2] = {0x20, 0x10};
    for (int b = 0; b < 2; b++) {
        for (uint32_t wr = 0; wr < 2; wr++) {
            struct journal_writer w;
            journal_writer_open(&w, f->dir, boots[b], wr, 4, 1 << 20, 100000,
                                JOURNAL_FSYNC_NEVER, 0, NULL);
            struct acct_delta d = delta(wr, b);
            journal_add(&w, &d);
            journal_commit(&w, 0);
            journal_writer_close(&w);
        }
    }
    struct journal_segment segs[8];
    size_t n;
    assert_int_equal(journal_list(f->dir, segs, 8, &n, NULL), MK_OK);
    assert_int_equal(n, 4);
    assert_int_equal(segs[0].boot, 0x10);
    assert_int_equal(segs[0].writer, 0);
    assert_int_equal(segs[1].boot, 0x10);
    assert_int_equal(segs[1].writer, 1);
    assert_int_equal(segs[3].boot, 0x20);
}

static void test_boot_id_carries_the_cluster_node_id(void **state)
{
    (void)state;
    assert_true(journal_boot_id(0, 0xfedcba9876543210ull) == 0xfedcba9876543210ull);
    assert_true(journal_boot_id(1, 0xfedcba9876543210ull) == 0x0001ba9876543210ull);
    assert_true(journal_boot_id(65535, 0) == 0xffff000000000000ull);
    assert_true(journal_boot_id(2, UINT64_MAX) >> 48 == 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_crc32c_matches_the_bitwise_definition),
        cmocka_unit_test_setup_teardown(test_no_file_until_first_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_then_close_reads_back_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_batch_refuses_until_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotates_by_size_and_by_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_closes_open_segments_and_ignores_torn_tail,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_stops_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_over_max_is_elimit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_unique_across_boots_and_writers, setup, teardown),
        cmocka_unit_test(test_boot_id_carries_the_cluster_node_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
