// Installs the build tree into a temporary prefix and builds the example
// program against the INSTALLED library, once through find_package(fedrec)
// and once through pkg-config, then runs both.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
// The installed library is instrumented: the example must be too.
#define SAN_FLAGS "-fsanitize=address,undefined"
#else
#define SAN_FLAGS ""
#endif

// Runs cmd through the shell, returns its exit status and output.
static int
run(const char *cmd, char *out, size_t cap)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    cr_assert_not_null(p, "popen failed");
    size_t n = 0;
    if (out != NULL && cap > 0) {
        n      = fread(out, 1, cap - 1, p);
        out[n] = '\0';
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof sink, p) > 0) {
        }
    }
    int st = pclose(p);
    return st;
}

Test(client_install, example_builds_against_installed_library,
     .timeout = 300)
{
    char dir[256];
    tu_tmpdir(dir, sizeof dir);
    cr_assert(dir[0] != '\0');
    static char out[65536];
    char        cmd[4096];

    snprintf(cmd, sizeof cmd, "cmake --install '%s' --prefix '%s/prefix'",
             FR_BINARY_DIR, dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "install failed:\n%s", out);

    // find_package(fedrec) + fedrec::client
    snprintf(cmd, sizeof cmd,
             "cmake -S '%s/client/examples' -B '%s/ex' "
             "-DCMAKE_PREFIX_PATH='%s/prefix' -DCMAKE_BUILD_TYPE=Release "
             "-DCMAKE_C_FLAGS='%s' %s && cmake --build '%s/ex'",
             FR_SOURCE_DIR, dir, dir, SAN_FLAGS, FR_TEST_CMAKE_ARGS, dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "cmake example:\n%s", out);
    snprintf(cmd, sizeof cmd, FR_TEST_RUN "'%s/ex/recommend'", dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "example failed:\n%s", out);
    cr_assert(strstr(out, "ratings: 5") != NULL, "output:\n%s", out);
    cr_assert(strstr(out, "no model yet") != NULL, "output:\n%s", out);
    // The installed fedrec/version.h and the library agree.
    char ver[96];
    snprintf(ver, sizeof ver, "libfedrec-client %s (headers %s)",
             FR_VERSION_STRING, FR_VERSION_STRING);
    cr_assert(strstr(out, ver) != NULL, "output:\n%s", out);

    // pkg-config (static linking needs the private libraries too)
    snprintf(cmd, sizeof cmd,
             "pc=$(dirname \"$(find '%s/prefix' -name fedrec-client.pc | "
             "head -n1)\") && test -n \"$pc\" && "
             "PKG_CONFIG_PATH=\"$pc\" '" FR_TEST_CC "' %s -o '%s/rec_pc' "
             "'%s/client/examples/recommend.c' "
             "$(PKG_CONFIG_PATH=\"$pc\" '" FR_TEST_PKG_CONFIG "' --cflags "
             "--libs --static fedrec-client)",
             dir, SAN_FLAGS, dir, FR_SOURCE_DIR);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "pkg-config build:\n%s", out);
    snprintf(cmd, sizeof cmd, FR_TEST_RUN "'%s/rec_pc'", dir);
    cr_assert_eq(run(cmd, out, sizeof out), 0, "pkg-config example:\n%s",
                 out);
    cr_assert(strstr(out, "ratings: 5") != NULL, "output:\n%s", out);

    tu_rmtree(dir);
}
