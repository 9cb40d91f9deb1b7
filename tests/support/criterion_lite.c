// The runner behind criterion/criterion.h (lite): one forked process per
// test, Criterion's synthesis line at the end, exit status 0 only when
// every registered test passed. See the header for why it exists.
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criterion/criterion.h"

#define FRI_CR_MAX 1024

static const fri_cr_test  *tests[FRI_CR_MAX];
static size_t              n_tests;
static const fri_cr_suite *suites[FRI_CR_MAX];
static size_t              n_suites;
static int                 overflow;
static const fri_cr_test  *current;

void
fri_cr_register(const fri_cr_test *t)
{
    if (n_tests == FRI_CR_MAX) {
        overflow = 1;
        return;
    }
    tests[n_tests++] = t;
}

void
fri_cr_register_suite(const fri_cr_suite *s)
{
    if (n_suites == FRI_CR_MAX) {
        overflow = 1;
        return;
    }
    suites[n_suites++] = s;
}

void
fri_cr_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "[----] %s:%d: Assertion Failed\n[----]   %s\n", file,
        line, expr);
    if (fmt != NULL && fmt[0] != '\0') {
        va_list ap;
        va_start(ap, fmt);
        fputs("[----]   ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    if (current != NULL) {
        fprintf(stderr, "[FAIL] %s::%s\n", current->suite, current->name);
    }
    fflush(NULL);
    _exit(1);
}

void
fri_cr_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[LOG ] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const fri_cr_suite *
suite_of(const fri_cr_test *t)
{
    for (size_t i = 0; i < n_suites; i++) {
        if (strcmp(suites[i]->name, t->suite) == 0) {
            return suites[i];
        }
    }
    return NULL;
}

static int
by_name(const void *a, const void *b)
{
    const fri_cr_test *x = *(const fri_cr_test *const *)a;
    const fri_cr_test *y = *(const fri_cr_test *const *)b;
    int                c = strcmp(x->suite, y->suite);
    return c != 0 ? c : strcmp(x->name, y->name);
}

// Runs one test in the calling (child) process; never returns.
static void
run_child(const fri_cr_test *t, const fri_cr_suite *s)
{
    current        = t;
    double timeout = t->timeout > 0 ? t->timeout : (s ? s->timeout : 0);
    if (timeout > 0) {
        alarm((unsigned)ceil(timeout));
    }
    if (s != NULL && s->init != NULL) {
        s->init();
    }
    if (t->init != NULL) {
        t->init();
    }
    t->fn();
    if (t->fini != NULL) {
        t->fini();
    }
    if (s != NULL && s->fini != NULL) {
        s->fini();
    }
    fflush(NULL);
    _exit(0);
}

int
main(int argc, char **argv)
{
    // Criterion's options that ctest passes (--jobs N, -jN) are accepted;
    // tests run one after another, each in its own process.
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc) {
            i++;
        } else if (strncmp(argv[i], "-j", 2) == 0
            || strncmp(argv[i], "--jobs=", 7) == 0) {
        } else {
            fprintf(stderr, "criterion_lite: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (overflow) {
        fprintf(stderr, "criterion_lite: more than %d tests\n", FRI_CR_MAX);
        return 2;
    }
    qsort(tests, n_tests, sizeof tests[0], by_name);
    int tested = 0, passing = 0, failing = 0, crashing = 0, skipped = 0;
    for (size_t i = 0; i < n_tests; i++) {
        const fri_cr_test  *t = tests[i];
        const fri_cr_suite *s = suite_of(t);
        if (t->disabled || (s != NULL && s->disabled)) {
            skipped++;
            fprintf(stderr, "[SKIP] %s::%s: disabled\n", t->suite, t->name);
            continue;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("criterion_lite: fork");
            return 2;
        }
        if (pid == 0) {
            run_child(t, s);
        }
        int st = 0;
        while (waitpid(pid, &st, 0) < 0) {
            if (errno != EINTR) {
                perror("criterion_lite: waitpid");
                return 2;
            }
        }
        tested++;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            passing++;
            fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
        } else if (WIFSIGNALED(st)) {
            crashing++;
            int sig = WTERMSIG(st);
            fprintf(stderr, "[FAIL] %s::%s: %s (signal %d)\n", t->suite,
                t->name, sig == SIGALRM ? "Timed out" : "CRASH", sig);
        } else {
            failing++;
        }
    }
    fprintf(stderr,
        "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
        "Crashing: %d | Skipped: %d\n",
        tested, passing, failing + crashing, crashing, skipped);
    if (tested == 0) {
        fprintf(stderr, "criterion_lite: no test ran\n");
        return 1;
    }
    return (failing + crashing) == 0 ? 0 : 1;
}
