/* main.c: the `mika` command: serve, client, version, help. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("mika %s\n", MIKA_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: mika serve|version\n");
    return 2;
}
