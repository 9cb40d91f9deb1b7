// Child processes for the multi-process tests (build/bin executables over
// loopback): spawn with stdout/stderr appended to a log, bounded waits, and
// a teardown that SIGKILLs every child still running and removes the
// scratch directory, so a failed assertion never leaves processes behind.
// One scratch directory (tmp) and FR_BIN_DIR (bin) per test executable;
// static inline so an executable that uses only part of it does not warn.
#ifndef FR_TESTS_PROC_HARNESS_H
#define FR_TESTS_PROC_HARNESS_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Children alive at once; a test may define a smaller bound first.
#ifndef PROC_MAX_KIDS
#define PROC_MAX_KIDS 64
#endif

static pid_t kids[PROC_MAX_KIDS];
static int   n_kids;
static char  tmp[256]; // scratch directory (mkdtemp)
static char  bin[512]; // FR_BIN_DIR

static inline void
killall_kids(void)
{
    for (int i = 0; i < n_kids; i++) {
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
    }
    n_kids = 0;
}

static inline void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

// Slot for a new child: a reaped one, else a fresh one.
static inline pid_t *
kid_slot(void)
{
    for (int i = 0; i < n_kids; i++) {
        if (kids[i] == 0) {
            return &kids[i];
        }
    }
    cr_assert(n_kids < PROC_MAX_KIDS);
    return &kids[n_kids++];
}

// Starts argv[0] (an absolute path) with stdout and stderr appended to log.
static inline pid_t
spawn(const char *log, char *const argv[])
{
    pid_t *slot = kid_slot();
    pid_t  p    = fork();
    cr_assert(p >= 0);
    if (p == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void) f;
        f = freopen(log, "a", stdout);
        (void) f;
        execv(argv[0], argv);
        _exit(127);
    }
    *slot = p;
    return p;
}

// p was reaped: its slot is free again and teardown leaves it alone.
static inline void
forget(pid_t p)
{
    for (int i = 0; i < n_kids; i++) {
        if (kids[i] == p) {
            kids[i] = 0;
        }
    }
}

// Waits up to ms for p; returns its exit status (128 + signal when killed)
// or -1 on timeout.
static inline int
wait_for(pid_t p, int ms)
{
    double end = now_ms() + ms;
    do {
        int   st = 0;
        pid_t r  = waitpid(p, &st, WNOHANG);
        if (r == p) {
            forget(p);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_ms(10);
    } while (now_ms() < end);
    return -1;
}

// bin from FR_BIN_DIR and a fresh tmp from template ("/tmp/x-XXXXXX").
static inline void
proc_setup(const char *tmp_template)
{
    const char *b = getenv("FR_BIN_DIR");
    cr_assert_not_null(b, "FR_BIN_DIR must name build/bin");
    snprintf(bin, sizeof(bin), "%s", b);
    snprintf(tmp, sizeof(tmp), "%s", tmp_template);
    cr_assert_not_null(mkdtemp(tmp));
}

// Kills the children and removes tmp; FR_KEEP_TMP keeps the logs for a
// post-mortem.
static inline void
proc_teardown(void)
{
    killall_kids();
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (tmp[0] != 0 && getenv("FR_KEEP_TMP") == NULL && system(cmd) != 0) {
        // best effort
    }
}

// dst = tmp/name.
static inline void
path_of(char *dst, size_t cap, const char *name)
{
    snprintf(dst, cap, "%s/%s", tmp, name);
}

#endif
