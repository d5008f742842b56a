/*
 * process.c -- signals, detaching, sleeping (see process.h).
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/process.h"
#include "mv_common.h"

static volatile sig_atomic_t  stop_signal;


static void
on_stop(int sig)
{
    stop_signal = sig;
}


int
mvw_process_signals(void)
{
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0
        || sigaction(SIGINT, &sa, NULL) != 0)
    {
        return -1;
    }
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL) != 0 ? -1 : 0;
}


int
mvw_process_stopping(void)
{
    return (int) stop_signal;
}


void
mvw_process_stop(int sig)
{
    stop_signal = sig;
}


int
mvw_process_detach(void)
{
    pid_t  pid;
    int    fd;

    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid > 0) {
        _exit(0);
    }
    if (setsid() < 0) {
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid > 0) {
        _exit(0);
    }
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }
    return 0;
}


void
mvw_process_sleep_ms(double ms)
{
    struct timespec  ts;

    ts.tv_sec = (time_t) (ms / 1000.0);
    ts.tv_nsec = (long) ((ms - (double) ts.tv_sec * 1000.0) * 1e6);
    nanosleep(&ts, NULL);          /* a signal cuts it short: fine */
}


int64_t
mvw_monotonic_ms(void)
{
    return mv_clock_monotonic_us() / 1000;
}
