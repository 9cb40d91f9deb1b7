// criterion_lite: the subset of Criterion's API (2.4) the device-side tests
// use (Test, TestSuite with .init/.fini/.timeout/.disabled, cr_assert*,
// cr_log_info), for targets Debian ships no usable Criterion for (armhf;
// arm64's package conflicts with the host's). Same source, same semantics:
// every test runs in its own forked process, a failed assertion ends that
// process, a signal or a timeout counts as a crash, and the runner exits
// non-zero unless every registered test passed. Built only with
// -DFR_TEST_RUNNER=lite (tests/CMakeLists.txt).
#ifndef FRI_CRITERION_LITE_H
#define FRI_CRITERION_LITE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct fri_cr_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    void (*init)(void);
    void (*fini)(void);
    double      timeout; // seconds; 0: none
    int         disabled;
    const char *description;
    int         fri_end; // closes the initializer list (see Test below)
} fri_cr_test;

typedef struct fri_cr_suite {
    const char *name;
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    int    disabled;
    int    fri_end;
} fri_cr_suite;

void fri_cr_register(const fri_cr_test *t);
void fri_cr_register_suite(const fri_cr_suite *s);
// Reports a failed assertion (fmt may be "" and is followed by its
// arguments and one unused trailing "") and ends the test's process.
__attribute__((noreturn)) void fri_cr_fail(
    const char *file, int line, const char *expr, const char *fmt, ...);
void fri_cr_log(const char *fmt, ...);

// A trailing designated initializer lets Test(s, n) take no options
// without an empty variadic argument (ISO C11).
#define Test(...) FRI_CR_TEST_(__VA_ARGS__, .fri_end = 0)
#define FRI_CR_TEST_(S, N, ...)                                               \
    static void              S##_##N##_fri_fn(void);                          \
    static const fri_cr_test S##_##N##_fri_desc                               \
        = { .suite = #S, .name = #N, .fn = S##_##N##_fri_fn, __VA_ARGS__ };   \
    __attribute__((constructor)) static void S##_##N##_fri_reg(void)          \
    {                                                                         \
        fri_cr_register(&S##_##N##_fri_desc);                                 \
    }                                                                         \
    static void S##_##N##_fri_fn(void)

#define TestSuite(...) FRI_CR_SUITE_(__VA_ARGS__, .fri_end = 0)
#define FRI_CR_SUITE_(S, ...)                                                 \
    static const fri_cr_suite S##_fri_suite = { .name = #S, __VA_ARGS__ };    \
    __attribute__((constructor)) static void S##_fri_suite_reg(void)          \
    {                                                                         \
        fri_cr_register_suite(&S##_fri_suite);                                \
    }                                                                         \
    extern int fri_cr_suite_semicolon_ /* takes TestSuite(...)'s ';' */

#define FRI_CR_CHECK_(cond, expr, ...)                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fri_cr_fail(__FILE__, __LINE__, expr, __VA_ARGS__);               \
        }                                                                     \
    } while (0)

#define cr_assert(...) FRI_CR_ONE_(__VA_ARGS__, "")
#define FRI_CR_ONE_(c, ...) FRI_CR_CHECK_((c), #c, __VA_ARGS__)
#define cr_assert_fail(...)                                                   \
    fri_cr_fail(__FILE__, __LINE__, "cr_assert_fail", __VA_ARGS__, "")

#define FRI_CR_BIN_(op, a, b, ...)                                            \
    FRI_CR_CHECK_((a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(...) FRI_CR_BIN_(==, __VA_ARGS__, "")
#define cr_assert_neq(...) FRI_CR_BIN_(!=, __VA_ARGS__, "")
#define cr_assert_lt(...) FRI_CR_BIN_(<, __VA_ARGS__, "")
#define cr_assert_leq(...) FRI_CR_BIN_(<=, __VA_ARGS__, "")
#define cr_assert_gt(...) FRI_CR_BIN_(>, __VA_ARGS__, "")
#define cr_assert_geq(...) FRI_CR_BIN_(>=, __VA_ARGS__, "")

#define cr_assert_null(...) FRI_CR_NULL_(__VA_ARGS__, "")
#define FRI_CR_NULL_(p, ...)                                                  \
    FRI_CR_CHECK_((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(...) FRI_CR_NNULL_(__VA_ARGS__, "")
#define FRI_CR_NNULL_(p, ...)                                                 \
    FRI_CR_CHECK_((p) != NULL, #p " != NULL", __VA_ARGS__)

#define cr_assert_str_eq(...) FRI_CR_STREQ_(__VA_ARGS__, "")
#define FRI_CR_STREQ_(a, b, ...)                                              \
    FRI_CR_CHECK_(strcmp((a), (b)) == 0, #a " streq " #b, __VA_ARGS__)
#define cr_assert_arr_eq(...) FRI_CR_ARREQ_(__VA_ARGS__, "")
#define FRI_CR_ARREQ_(a, b, size, ...)                                        \
    FRI_CR_CHECK_(memcmp((a), (b), (size)) == 0,                              \
        #a " bytes == " #b " bytes (" #size ")", __VA_ARGS__)
// Criterion's definition: both differences within epsilon (NaN fails).
#define cr_assert_float_eq(...) FRI_CR_FEQ_(__VA_ARGS__, "")
#define FRI_CR_FEQ_(a, b, eps, ...)                                           \
    FRI_CR_CHECK_(((b) - (a) <= (eps)) && ((a) - (b) <= (eps)),               \
        "|" #a " - " #b "| <= " #eps, __VA_ARGS__)

#define cr_log_info(...) fri_cr_log(__VA_ARGS__)

#endif
