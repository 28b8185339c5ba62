/* main.c: the `mika` command: dispatches to serve, client, version and help.
 *
 * Owns: the top-level argument grammar only; each command lives in its own file.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "serve.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mika <command> [options]\n"
                 "\n"
                 "commands:\n"
                 "  serve [--config FILE]   run the tracker (mika serve --help for every key)\n"
                 "  client ...              drive the admin API (mika client --help)\n"
                 "  version                 print the version\n"
                 "  help                    this text\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) {
        return serve_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "client") == 0) {
        return cli_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mika %s\n", MIKA_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "mika: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
}
