/*
 * main: the tether binary. Dispatches to a subcommand; each subcommand owns its
 * own option parsing and event loop.
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tether <command> [options]\n"
            "\n"
            "commands:\n"
            "  agent     per-host container monitor (Prometheus /metrics, open-falcon push)\n"
            "  help      show this text\n"
            "  version   print the version\n"
            "\n"
            "Run 'tether <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("tether %s\n", TETHER_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "agent") == 0)
        return agent_main(argc - 1, argv + 1);
    fprintf(stderr, "tether: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
