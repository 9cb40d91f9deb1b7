// fedrec-client command line: usage errors and offline use of a state file.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "testutil.h"

static int
sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *
bin(void)
{
    const char *b = getenv("FR_BIN_DIR");
    cr_assert_not_null(b, "FR_BIN_DIR is not set (run through ctest)");
    return b;
}

Test(client_cli, usage_errors_exit_2)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, FR_TEST_RUN "'%s/fedrec-client' --help >/dev/null", bin());
    cr_assert_eq(sh(cmd), 0);
    const char *bad[] = {
        "--bogus 1",
        "--rounds x --ratings f --user 1",
        "--ratings f",                       // --user missing
        "--ratings f --user 1",              // --connect missing
        "--rounds 0 --state s",              // no key for the state
        "--rounds 0 --ratings f --user 1 --top 0",
        "--connect",                         // value missing
        "--rounds 0 --ratings f --user 1 stray", // positional argument
        "--rounds 0 --ratings f --user 1 --json=1",
        "--rounds=-1 --ratings f --user 1",
        "--rounds 0 --ratings f --user 1 --explain", // needs --top
        "--rounds 0 --ratings f --user 1 --top 3 --explain=1",
        "--rounds 0 --ratings f --user 1 --diverse 0.5", // needs --top
        "--rounds 0 --ratings f --user 1 --top 3 --diverse 1.5",
        "--rounds 0 --ratings f --user 1 --top 3 --diverse nan",
        "--rounds 0 --ratings f --user 1 --top 3 --diverse 0.5x",
        "--rounds 0 --ratings f --user 1 --recency -1",
        "--rounds 0 --ratings f --user 1 --recency 2e6",
        "--rounds 0 --ratings f --user 1 --recency x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, FR_TEST_RUN "'%s/fedrec-client' %s 2>/dev/null",
                 bin(), bad[i]);
        cr_assert_eq(sh(cmd), 2, "'%s' should be a usage error", bad[i]);
    }
}

Test(client_cli, offline_state_and_wrong_key)
{
    char dir[256], cmd[2048];
    tu_tmpdir(dir, sizeof dir);
    // A ratings file in the whitespace format, user 7 has three rows.
    snprintf(cmd, sizeof cmd,
             "printf '7 10 4\\n7 11 5\\n8 10 1\\n7 12 3\\n' > '%s/r.txt' && "
             "head -c 32 /dev/urandom > '%s/k1' && "
             "head -c 32 /dev/urandom > '%s/k2'",
             dir, dir, dir);
    cr_assert_eq(sh(cmd), 0);
    snprintf(cmd, sizeof cmd,
             FR_TEST_RUN "'%s/fedrec-client' --rounds 0 --ratings '%s/r.txt' --user 7 "
             "--state '%s/st' --state-key-file '%s/k1' --json > '%s/o1'",
             bin(), dir, dir, dir, dir);
    cr_assert_eq(sh(cmd), 0);
    snprintf(cmd, sizeof cmd, "grep -q '\"ratings\":3' '%s/o1'", dir);
    cr_assert_eq(sh(cmd), 0, "expected 3 ratings for user 7");
    // Reopen with the right key (no ratings file): state kept.
    snprintf(cmd, sizeof cmd,
             FR_TEST_RUN "'%s/fedrec-client' --rounds 0 --state '%s/st' "
             "--state-key-file '%s/k1' --json | grep -q '\"ratings\":3'",
             bin(), dir, dir);
    cr_assert_eq(sh(cmd), 0);
    // Wrong key: runtime failure, not a crash.
    snprintf(cmd, sizeof cmd,
             FR_TEST_RUN "'%s/fedrec-client' --rounds 0 --state '%s/st' "
             "--state-key-file '%s/k2' 2>/dev/null",
             bin(), dir, dir);
    cr_assert_eq(sh(cmd), 1);
    // An all-zero key file: refused with a message, no state file written.
    snprintf(cmd, sizeof cmd,
             "head -c 32 /dev/zero > '%s/k0' && "
             FR_TEST_RUN "'%s/fedrec-client' --rounds 0 --ratings '%s/r.txt' --user 7 "
             "--state '%s/st0' --state-key-file '%s/k0' 2> '%s/e0'",
             dir, bin(), dir, dir, dir, dir);
    cr_assert_eq(sh(cmd), 1);
    snprintf(cmd, sizeof cmd, "grep -q 'all-zero' '%s/e0' && ! test -e '%s/st0'",
             dir, dir);
    cr_assert_eq(sh(cmd), 0, "expected the all-zero key to be refused");
    tu_rmtree(dir);
}
