// criterion_lite's own check (built with FR_TEST_RUNNER=lite): one test
// of each outcome. The runner must report 1 passing, 5 failing (2 of them
// crashes: a signal and a timeout) and exit non-zero; tests/CMakeLists.txt
// asserts both.
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

static int inited;

static void
init(void)
{
    inited = 1;
}

TestSuite(lite, .init = init);

Test(lite, passes)
{
    cr_assert(inited, "the suite's .init did not run");
    cr_assert_eq(1, 1);
    cr_assert_float_eq(1.0, 1.05, 0.1);
    cr_assert_arr_eq("abc", "abc", 3);
}

Test(lite, failed_eq_fails) { cr_assert_eq(2, 3, "two is not %d", 3); }

Test(lite, failed_float_eq_fails) { cr_assert_float_eq(1.0, 1.5, 0.1); }

Test(lite, failed_str_eq_fails) { cr_assert_str_eq("a", "b"); }

Test(lite, signal_is_a_crash) { raise(SIGSEGV); }

Test(lite, timeout_is_a_crash, .timeout = 1)
{
    for (;;) {
        pause();
    }
}
