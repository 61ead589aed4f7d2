/*
 * agent: `tether agent`, the per-host container monitor. Parses its options,
 * wires the modules together on one libuv loop and runs until SIGTERM/SIGINT.
 * See docs/design.md for the data flow and who owns what.
 */
#ifndef TETHER_AGENT_H
#define TETHER_AGENT_H

/* Entry point of the subcommand (argv[0] is "agent"). Returns the exit status. */
int agent_main(int argc, char **argv);

#endif
