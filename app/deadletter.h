/*
 * deadletter.h - `chainfuse deadletter list|replay`: what is in a
 * dead-letter file, and sending its output records again.
 */
#ifndef CF_APP_DEADLETTER_H
#define CF_APP_DEADLETTER_H

/* argv[0] is "deadletter"; returns the exit status (0, 1 runtime, 2
 * usage). */
int cf_cmd_deadletter(int argc, char **argv);

#endif
