/*
 * process.h -- what a long-running milvuso-worker process needs from the
 * system, shared by the trainer daemon (daemon.c) and the feature worker
 * (daemon_feature.c): a stop flag set by SIGTERM and SIGINT, detaching
 * from the terminal, sleeping, a millisecond clock.
 *
 * The stop flag is the process's only global state, as a signal handler
 * needs.
 */
#ifndef MVW_PROCESS_H
#define MVW_PROCESS_H

#include <stdint.h>

/*
 * Makes SIGTERM and SIGINT set the stop flag (and interrupt a sleep) and
 * ignores SIGPIPE.  Returns 0, or -1 with errno set.
 */
int mvw_process_signals(void);

/* The signal that asked the process to stop, or 0. */
int mvw_process_stopping(void);

/* Sets the stop flag as signal sig would (the process stops itself). */
void mvw_process_stop(int sig);

/*
 * Detaches from the terminal: fork, setsid, fork, stdin and stdout from
 * /dev/null (stderr, the log, is kept).  Returns 0 in the daemon (the
 * parents exit 0), or -1 with errno set.
 */
int mvw_process_detach(void);

/* Sleeps ms milliseconds, or less when a signal comes. */
void mvw_process_sleep_ms(double ms);

/* The monotonic clock in milliseconds (intervals, deadlines). */
int64_t mvw_monotonic_ms(void);

#endif /* MVW_PROCESS_H */
