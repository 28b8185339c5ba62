/* docs/man/mangen.c: writes a man page from its roff template.
 *
 * Usage: mika-mangen TEMPLATE OUTPUT VERSION
 * Copies TEMPLATE to OUTPUT, replacing @VERSION@ on any line and a line
 * that is exactly @KEYS@ with every configuration key, its default and its
 * text, read from the key table in src/conf/config.c through
 * config_each_key(): the same table that `mika serve --help` prints and that
 * tests/unit/test_config.c checks docs/CONFIG.md and mika.example.ini
 * against, so mika.conf(5) cannot drift from the code either.
 * Built and run on the build machine only (not when cross-compiling).
 */
#include <stdio.h>
#include <string.h>

#include "conf/config.h"

struct keys_out {
    FILE *out;
    char section[64];
};

/* Text in roff: a backslash is written \e, and a line must not start with
 * a control character (. or '). */
static void put_text(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'') {
        fputs("\\&", out);
    }
    for (; *s; s++) {
        if (*s == '\\') {
            fputs("\\e", out);
        } else if (*s == '-') {
            fputs("\\-", out);
        } else {
            fputc(*s, out);
        }
    }
}

static void put_key(const char *section, const char *key, const char *def, const char *doc,
                    void *arg)
{
    struct keys_out *ko = arg;
    if (strcmp(ko->section, section) != 0) {
        snprintf(ko->section, sizeof(ko->section), "%s", section);
        fprintf(ko->out, ".SS [%s]\n", section);
    }
    fputs(".TP\n\\fB", ko->out);
    put_text(ko->out, key);
    fputs("\\fR = ", ko->out);
    if (def[0]) {
        fputs("\\fI", ko->out);
        put_text(ko->out, def);
        fputs("\\fR", ko->out);
    } else {
        fputs("(empty)", ko->out);
    }
    fputs("\n", ko->out);
    put_text(ko->out, doc);
    fputs("\n", ko->out);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mika-mangen TEMPLATE OUTPUT VERSION\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "r");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        fclose(in);
        return 1;
    }
    char line[4096];
    while (fgets(line, sizeof(line), in)) {
        if (strcmp(line, "@KEYS@\n") == 0) {
            struct keys_out ko = {.out = out};
            config_each_key(put_key, &ko);
            continue;
        }
        const char *p = line;
        const char *at;
        while ((at = strstr(p, "@VERSION@")) != NULL) {
            fwrite(p, 1, (size_t)(at - p), out);
            fputs(argv[3], out);
            p = at + strlen("@VERSION@");
        }
        fputs(p, out);
    }
    int bad = ferror(in) || ferror(out);
    fclose(in);
    if (fclose(out) != 0 || bad) {
        fprintf(stderr, "mika-mangen: cannot write %s\n", argv[2]);
        return 1;
    }
    return 0;
}
