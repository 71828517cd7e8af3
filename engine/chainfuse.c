/*
 * chainfuse.c - the command line: `chainfuse check` and `chainfuse run`.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("chainfuse %s\n", CF_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: chainfuse check|run ...\n");
    return 2;
}
