/* tests/unit/test_log.c: the log sink (util/log.c).
 *
 * Each test points the sink at a fresh pipe and reads back exactly what one
 * or more mk_log() calls wrote. JSON lines are checked by a small strict
 * parser below (flat object of string values, RFC 8259 escapes, UTF-8), so a
 * line that a log shipper would reject fails here.
 * The sink is process-wide: every test sets it up and the teardown points it
 * back at stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define LOG_TIME_LEN 24 /* "2024-05-01T12:34:56.789Z" */

struct fixture {
    int rfd;
    int wfd;
    char out[65536]; /* everything read from the pipe so far, NUL-terminated */
    size_t len;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    fx->rfd = p[0];
    fx->wfd = p[1];
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, 2);
    close(fx->rfd);
    close(fx->wfd);
    free(fx);
    return 0;
}

/* Reads whatever the sink wrote since the last call; returns it. */
static const char *drain(struct fixture *fx)
{
    fx->len = 0;
    for (;;) {
        ssize_t n = read(fx->rfd, fx->out + fx->len, sizeof(fx->out) - 1 - fx->len);
        if (n <= 0) {
            break;
        }
        fx->len += (size_t)n;
    }
    fx->out[fx->len] = '\0';
    return fx->out;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        n += s[i] == c;
    }
    return n;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ" and that it is within a minute of now (UTC). */
static void assert_iso_time_now(const char *s)
{
    for (int i = 0; i < LOG_TIME_LEN; i++) {
        char c = s[i];
        switch (i) {
        case 4: case 7: assert_int_equal(c, '-'); break;
        case 10: assert_int_equal(c, 'T'); break;
        case 13: case 16: assert_int_equal(c, ':'); break;
        case 19: assert_int_equal(c, '.'); break;
        case 23: assert_int_equal(c, 'Z'); break;
        default: assert_true(c >= '0' && c <= '9');
        }
    }
    struct tm tm = {0};
    assert_int_equal(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    time_t now = time(NULL);
    assert_true(t <= now && now - t < 60);
}

/* ---- a strict reader for one JSON line: {"k":"v",...}\n ---------------- */

#define JSON_FIELDS_MAX 8
#define JSON_VALUE_MAX 4096

struct json_line {
    size_t n;
    char key[JSON_FIELDS_MAX][32];
    char val[JSON_FIELDS_MAX][JSON_VALUE_MAX];
    size_t val_len[JSON_FIELDS_MAX];
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Length of the valid UTF-8 sequence at p (end at e), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
    size_t n;
    unsigned min;
    unsigned cp;
    if (p[0] < 0x80) {
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        n = 2, min = 0x80, cp = p[0] & 0x1fu;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, min = 0x800, cp = p[0] & 0x0fu;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if ((size_t)(e - p) < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

/* Parses a JSON string starting at the opening quote; appends the decoded
 * bytes to out. Returns the position after the closing quote, or NULL. */
static const char *json_string(const char *p, const char *e, char *out, size_t cap,
                               size_t *out_len)
{
    size_t n = 0;
    if (p >= e || *p != '"') {
        return NULL;
    }
    p++;
    while (p < e && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (n + 4 >= cap) {
            return NULL;
        }
        if (c < 0x20) {
            return NULL; /* raw control byte: not JSON */
        }
        if (c == '\\') {
            if (p + 1 >= e) {
                return NULL;
            }
            char esc = p[1];
            p += 2;
            switch (esc) {
            case '"': out[n++] = '"'; break;
            case '\\': out[n++] = '\\'; break;
            case '/': out[n++] = '/'; break;
            case 'b': out[n++] = '\b'; break;
            case 'f': out[n++] = '\f'; break;
            case 'n': out[n++] = '\n'; break;
            case 'r': out[n++] = '\r'; break;
            case 't': out[n++] = '\t'; break;
            case 'u': {
                if (e - p < 4) {
                    return NULL;
                }
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(p[i]);
                    if (h < 0) {
                        return NULL;
                    }
                    cp = cp * 16 + (unsigned)h;
                }
                p += 4;
                if (cp >= 0xd800 && cp <= 0xdfff) {
                    return NULL; /* the sink never needs surrogates */
                }
                if (cp < 0x80) {
                    out[n++] = (char)cp;
                } else if (cp < 0x800) {
                    out[n++] = (char)(0xc0 | (cp >> 6));
                    out[n++] = (char)(0x80 | (cp & 0x3f));
                } else {
                    out[n++] = (char)(0xe0 | (cp >> 12));
                    out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    out[n++] = (char)(0x80 | (cp & 0x3f));
                }
                break;
            }
            default:
                return NULL;
            }
            continue;
        }
        size_t u = utf8_len((const unsigned char *)p, (const unsigned char *)e);
        if (u == 0) {
            return NULL; /* RFC 8259 section 8.1: JSON text is UTF-8 */
        }
        memcpy(out + n, p, u);
        n += u;
        p += u;
    }
    if (p >= e) {
        return NULL;
    }
    out[n] = '\0';
    *out_len = n;
    return p + 1;
}

/* True if line[0..len) is exactly one flat JSON object of strings plus "\n". */
static bool json_line_parse(const char *line, size_t len, struct json_line *j)
{
    memset(j, 0, sizeof(*j));
    if (len < 3 || line[len - 1] != '\n' || line[0] != '{') {
        return false;
    }
    const char *p = line + 1;
    const char *e = line + len - 1;
    if (p < e && *p == '}') {
        return p + 1 == e;
    }
    for (;;) {
        if (j->n == JSON_FIELDS_MAX) {
            return false;
        }
        size_t klen;
        p = json_string(p, e, j->key[j->n], sizeof(j->key[j->n]), &klen);
        if (!p || p >= e || *p != ':') {
            return false;
        }
        p = json_string(p + 1, e, j->val[j->n], sizeof(j->val[j->n]), &j->val_len[j->n]);
        if (!p || p >= e) {
            return false;
        }
        j->n++;
        if (*p == '}') {
            return p + 1 == e;
        }
        if (*p != ',') {
            return false;
        }
        p++;
    }
}

static const char *json_get(const struct json_line *j, const char *key)
{
    for (size_t i = 0; i < j->n; i++) {
        if (strcmp(j->key[i], key) == 0) {
            return j->val[i];
        }
    }
    return NULL;
}

/* The JSON line the sink just wrote, parsed; fails the test if invalid. */
static void read_json_line(struct fixture *fx, struct json_line *j)
{
    drain(fx);
    assert_int_equal(count_char(fx->out, fx->len, '\n'), 1);
    if (!json_line_parse(fx->out, fx->len, j)) {
        fail_msg("not a valid JSON line: %s", fx->out);
    }
}

/* ---- level filtering ------------------------------------------------------ */

static void test_lines_below_min_level_are_dropped(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_WARN, MK_LOG_TEXT, fx->wfd);
    mk_log(MK_LOG_DEBUG, "t", "d");
    mk_log(MK_LOG_INFO, "t", "i");
    mk_log_write(MK_LOG_INFO, "t", "direct");
    mk_log(MK_LOG_WARN, "t", "w");
    mk_log(MK_LOG_ERROR, "t", "e");
    drain(fx);
    assert_int_equal(count_char(fx->out, fx->len, '\n'), 3);
    const char *l1 = fx->out;
    const char *l2 = strchr(l1, '\n') + 1;
    const char *l3 = strchr(l2, '\n') + 1;
    /* mk_log_write itself does not filter: mk_log (the macro) does. */
    assert_memory_equal(l1 + LOG_TIME_LEN, " info  t: direct\n", 17);
    assert_memory_equal(l2 + LOG_TIME_LEN, " warn  t: w\n", 12);
    assert_memory_equal(l3 + LOG_TIME_LEN, " error t: e\n", 12);
}

static void test_enabled_is_level_at_or_above_min(void **state)
{
    struct fixture *fx = *state;
    for (int min = MK_LOG_DEBUG; min <= MK_LOG_ERROR; min++) {
        mk_log_setup((enum mk_log_level)min, MK_LOG_TEXT, fx->wfd);
        for (int l = MK_LOG_DEBUG; l <= MK_LOG_ERROR; l++) {
            assert_int_equal(mk_log_enabled((enum mk_log_level)l), l >= min);
        }
    }
}

static int bump(int *n)
{
    return ++*n;
}

static void test_disabled_level_does_not_evaluate_arguments(void **state)
{
    struct fixture *fx = *state;
    int calls = 0;
    mk_log_setup(MK_LOG_ERROR, MK_LOG_TEXT, fx->wfd);
    mk_log(MK_LOG_WARN, "t", "%d", bump(&calls));
    assert_int_equal(calls, 0);
    mk_log(MK_LOG_ERROR, "t", "%d", bump(&calls));
    assert_int_equal(calls, 1);
    drain(fx);
    assert_memory_equal(fx->out + LOG_TIME_LEN, " error t: 1\n", 12);
}

/* ---- text format ---------------------------------------------------------- */

static void test_text_line_is_time_level_tag_msg(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_TEXT, fx->wfd);
    mk_log(MK_LOG_WARN, "store.pg", "reconnect failed: %s after %d ms", "timeout", 250);
    drain(fx);
    assert_iso_time_now(fx->out);
    assert_string_equal(fx->out + LOG_TIME_LEN,
                        " warn  store.pg: reconnect failed: timeout after 250 ms\n");
}

static void test_text_level_names_are_padded_to_one_width(void **state)
{
    struct fixture *fx = *state;
    static const char *const want[] = {" debug x: m\n", " info  x: m\n", " warn  x: m\n",
                                       " error x: m\n"};
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_TEXT, fx->wfd);
    for (int l = MK_LOG_DEBUG; l <= MK_LOG_ERROR; l++) {
        mk_log((enum mk_log_level)l, "x", "m");
        drain(fx);
        assert_int_equal(fx->len, LOG_TIME_LEN + strlen(want[l]));
        assert_iso_time_now(fx->out);
        assert_string_equal(fx->out + LOG_TIME_LEN, want[l]);
    }
}

static void test_text_control_bytes_become_spaces(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_TEXT, fx->wfd);
    /* A client trying to forge a second log line through a logged value. */
    mk_log(MK_LOG_INFO, "http", "bad key %s",
           "a\nX 2024-01-01T00:00:00.000Z error auth: forged\r\t\x1b[1m\x01z");
    drain(fx);
    assert_int_equal(count_char(fx->out, fx->len, '\n'), 1);
    assert_int_equal(count_char(fx->out, fx->len, '\r'), 0);
    assert_string_equal(fx->out + LOG_TIME_LEN,
                        " info  http: bad key a X 2024-01-01T00:00:00.000Z error auth: forged   "
                        "[1m z\n");
}

static void test_text_long_message_is_cut_and_ends_in_one_newline(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_TEXT, fx->wfd);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mk_log(MK_LOG_INFO, "t", "%s", big);
    drain(fx);
    assert_true(fx->len > 1000);
    assert_true(fx->len < sizeof(big));
    assert_int_equal(fx->out[fx->len - 1], '\n');
    assert_int_equal(count_char(fx->out, fx->len, '\n'), 1);
    assert_int_equal(count_char(fx->out, fx->len, '\0'), 0);
    assert_memory_equal(fx->out + LOG_TIME_LEN, " info  t: xxxx", 14);
    /* Every byte after the prefix up to the newline is the message. */
    size_t prefix = LOG_TIME_LEN + strlen(" info  t: ");
    assert_int_equal(count_char(fx->out + prefix, fx->len - prefix - 1, 'x'),
                     fx->len - prefix - 1);
}

static void test_text_long_tag_and_message_still_end_in_one_newline(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_TEXT, fx->wfd);
    char tag[800];
    memset(tag, 'g', sizeof(tag) - 1);
    tag[sizeof(tag) - 1] = '\0';
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mk_log(MK_LOG_INFO, tag, "%s", big);
    drain(fx);
    assert_true(fx->len > 1000);
    assert_int_equal(fx->out[fx->len - 1], '\n');
    assert_int_equal(count_char(fx->out, fx->len, '\n'), 1);
    assert_int_equal(count_char(fx->out, fx->len, '\0'), 0);
}

/* ---- JSON format ---------------------------------------------------------- */

static void test_json_line_has_time_level_tag_msg(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_JSON, fx->wfd);
    mk_log(MK_LOG_ERROR, "flusher", "%zu deltas not written", (size_t)17);
    struct json_line j;
    read_json_line(fx, &j);
    assert_int_equal(j.n, 4);
    assert_non_null(json_get(&j, "time"));
    assert_int_equal(strlen(json_get(&j, "time")), LOG_TIME_LEN);
    assert_iso_time_now(json_get(&j, "time"));
    assert_string_equal(json_get(&j, "level"), "error");
    assert_string_equal(json_get(&j, "tag"), "flusher");
    assert_string_equal(json_get(&j, "msg"), "17 deltas not written");
}

static void test_json_level_names_are_not_padded(void **state)
{
    struct fixture *fx = *state;
    static const char *const want[] = {"debug", "info", "warn", "error"};
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_JSON, fx->wfd);
    for (int l = MK_LOG_DEBUG; l <= MK_LOG_ERROR; l++) {
        mk_log((enum mk_log_level)l, "x", "m");
        struct json_line j;
        read_json_line(fx, &j);
        assert_string_equal(json_get(&j, "level"), want[l]);
    }
}

static void test_json_escapes_quotes_and_backslashes(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_JSON, fx->wfd);
    const char *nasty = "say \"hi\"\\ C:\\dir\\\",\"level\":\"debug";
    mk_log(MK_LOG_WARN, "api", "%s", nasty);
    struct json_line j;
    read_json_line(fx, &j);
    assert_int_equal(j.n, 4);
    assert_string_equal(json_get(&j, "level"), "warn");
    assert_string_equal(json_get(&j, "msg"), nasty);
    assert_non_null(strstr(fx->out, "\"msg\":\"say \\\"hi\\\"\\\\ C:\\\\dir"));
}

/* Control bytes are turned into spaces before escaping, in JSON mode too, so
 * the line stays one line and valid JSON; the original bytes are not kept. */
static void test_json_control_bytes_keep_line_valid(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_JSON, fx->wfd);
    mk_log(MK_LOG_INFO, "http", "a\nb\rc\td\x1b" "e\x01" "f\x1f" "g");
    struct json_line j;
    read_json_line(fx, &j);
    const char *msg = json_get(&j, "msg");
    assert_non_null(msg);
    assert_int_equal(strlen(msg), 13);
    for (size_t i = 0; i < 13; i++) {
        /* Escaped (\u00XX) or replaced by a space: either way, no raw byte. */
        assert_true((unsigned char)msg[i] >= 0x20 || strchr("\n\r\t\x1b\x01\x1f", msg[i]));
    }
    assert_string_equal(msg, "a b c d e f g");
}

static void test_json_long_message_is_cut_and_stays_valid(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_JSON, fx->wfd);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    mk_log(MK_LOG_INFO, "t", "%s", big);
    struct json_line j;
    read_json_line(fx, &j);
    const char *msg = json_get(&j, "msg");
    assert_true(strlen(msg) >= 1000 && strlen(msg) < sizeof(big) - 1);
    assert_int_equal(strspn(msg, "x"), strlen(msg));
}

/* Each quote or backslash doubles in size: the cut must fall between two
 * escapes, never inside one. */
static void test_json_long_message_of_escapes_is_cut_between_escapes(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_JSON, fx->wfd);
    for (int odd = 0; odd < 2; odd++) {
        char big[3001];
        for (size_t i = 0; i < sizeof(big) - 1; i++) {
            big[i] = (i % 2 == (size_t)odd) ? '"' : '\\';
        }
        big[sizeof(big) - 1] = '\0';
        mk_log(MK_LOG_INFO, "t", "%s", big);
        struct json_line j;
        read_json_line(fx, &j);
        const char *msg = json_get(&j, "msg");
        size_t n = strlen(msg);
        assert_true(n > 400);
        assert_memory_equal(msg, big, n);
    }
}

/* A message cut at the 1023-byte limit must not keep the first byte of a
 * multi-byte UTF-8 character: the JSON line must stay valid UTF-8 (RFC 8259
 * 8.1). Input: 1022 x 'a' then "é" (C3 A9). */
static void test_json_cut_does_not_split_utf8_character(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_JSON, fx->wfd);
    char big[1030];
    memset(big, 'a', 1022);
    strcpy(big + 1022, "\xc3\xa9tail");
    mk_log(MK_LOG_INFO, "t", "%s", big);
    struct json_line j;
    read_json_line(fx, &j);
    assert_int_equal(strspn(json_get(&j, "msg"), "a"), 1022);
}

/* ---- one write per line --------------------------------------------------- */

static void test_each_call_writes_one_whole_line(void **state)
{
    struct fixture *fx = *state;
    mk_log_setup(MK_LOG_DEBUG, MK_LOG_TEXT, fx->wfd);
    for (int i = 0; i < 50; i++) {
        mk_log(MK_LOG_INFO, "t", "line %d", i);
    }
    drain(fx);
    assert_int_equal(count_char(fx->out, fx->len, '\n'), 50);
    const char *p = fx->out;
    for (int i = 0; i < 50; i++) {
        char want[32];
        int w = snprintf(want, sizeof(want), " info  t: line %d\n", i);
        assert_memory_equal(p + LOG_TIME_LEN, want, (size_t)w);
        p = strchr(p, '\n') + 1;
    }
}

/* ---- mk_log_level_parse ----------------------------------------------------- */

static void test_level_parse_knows_the_four_names(void **state)
{
    assert_int_equal(mk_log_level_parse("debug"), MK_LOG_DEBUG);
    assert_int_equal(mk_log_level_parse("info"), MK_LOG_INFO);
    assert_int_equal(mk_log_level_parse("warn"), MK_LOG_WARN);
    assert_int_equal(mk_log_level_parse("error"), MK_LOG_ERROR);
}

static void test_level_parse_rejects_anything_else(void **state)
{
    static const char *const bad[] = {"",      "warning", "err",    "inf",   "info ",
                                      " info", "infox",   "fatal",  "trace", "1",
                                      "debug\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mk_log_level_parse(bad[i]), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines_below_min_level_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enabled_is_level_at_or_above_min, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_level_does_not_evaluate_arguments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_text_line_is_time_level_tag_msg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_level_names_are_padded_to_one_width, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_text_control_bytes_become_spaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_long_message_is_cut_and_ends_in_one_newline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_long_tag_and_message_still_end_in_one_newline,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_line_has_time_level_tag_msg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_level_names_are_not_padded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_escapes_quotes_and_backslashes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_json_control_bytes_keep_line_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_long_message_is_cut_and_stays_valid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_json_long_message_of_escapes_is_cut_between_escapes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_cut_does_not_split_utf8_character, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_each_call_writes_one_whole_line, setup, teardown),
        cmocka_unit_test(test_level_parse_knows_the_four_names),
        cmocka_unit_test(test_level_parse_rejects_anything_else),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
