// The shared library's binary interface: SONAME libfedrec-client.so.N, every
// export under the symbol version FEDREC_CLIENT_N (client/fedrec-client.map),
// and the export list equal to the FR_API declarations of the installed
// headers (nothing internal leaks, nothing public is missing).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/common.h"

#define MAX_SYMS 128

typedef struct symset {
    char   name[MAX_SYMS][64];
    size_t n;
} symset;

static int
has(const symset *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->name[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

static void
add(symset *s, const char *name, size_t len)
{
    cr_assert(s->n < MAX_SYMS && len > 0 && len < 64);
    memcpy(s->name[s->n], name, len);
    s->name[s->n][len] = '\0';
    if (!has(s, s->name[s->n])) {
        s->n++;
    }
}

// The function names declared FR_API in a header: the identifier before
// the first '(' of each declaration.
static void
header_api(symset *s, const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    static char text[1 << 17];
    size_t      n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (char *p = strstr(text, "FR_API "); p != NULL;
         p       = strstr(p + 1, "FR_API ")) {
        if (p > text && p[-1] != '\n') {
            continue; // the macro's own definition or a comment
        }
        char *semi  = strchr(p, ';');
        char *paren = strchr(p, '(');
        cr_assert(semi != NULL && paren != NULL && paren < semi);
        char *end = paren;
        char *beg = end;
        while (beg > p && (beg[-1] == '_' || (beg[-1] >= 'a' && beg[-1] <= 'z') ||
                           (beg[-1] >= '0' && beg[-1] <= '9'))) {
            beg--;
        }
        add(s, beg, (size_t) (end - beg));
    }
}

Test(client_abi, soname_versions_and_exports)
{
    char cmd[1024];
    char line[512];
    snprintf(cmd, sizeof cmd, FR_TEST_READELF " -d '%s'", FR_CLIENT_SHARED);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char want[64];
    snprintf(want, sizeof want, "[libfedrec-client.so.%d]",
             FR_CLIENT_SOVERSION);
    int soname = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        if (strstr(line, "(SONAME)") != NULL) {
            cr_assert(strstr(line, want) != NULL, "SONAME line: %s", line);
            soname = 1;
        }
    }
    cr_assert_eq(pclose(p), 0);
    cr_assert(soname, "no SONAME in %s", FR_CLIENT_SHARED);

    symset api = {.n = 0};
    header_api(&api, FR_SOURCE_DIR "/client/include/fedrec/client.h");
    header_api(&api, FR_SOURCE_DIR "/common/include/fedrec/common.h");
    header_api(&api, FR_SOURCE_DIR "/common/include/fedrec/err.h");
    cr_assert(has(&api, "fr_client_create") && has(&api, "fr_version") &&
              has(&api, "fr_strerror"));

    char node[32];
    snprintf(node, sizeof node, "FEDREC_CLIENT_%d", FR_CLIENT_SOVERSION);
    snprintf(cmd, sizeof cmd, FR_TEST_OBJDUMP " -T '%s'", FR_CLIENT_SHARED);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    symset exported = {.n = 0};
    while (fgets(line, sizeof line, p) != NULL) {
        // "addr g    DF .text  size  VERSION name": defined globals only.
        if (strstr(line, " g ") == NULL || strstr(line, "*UND*") != NULL) {
            continue;
        }
        char ver[64], name[128];
        char *tab = strchr(line, '\t');
        cr_assert_not_null(tab, "objdump line: %s", line);
        if (sscanf(tab, "%*s %63s %127s", ver, name) != 2) {
            continue;
        }
        // Version nodes of this SONAME: FEDREC_CLIENT_<so> and the nodes
        // later additions went into, FEDREC_CLIENT_<so>.<minor>.
        size_t nl    = strlen(node);
        int    ours  = strncmp(ver, node, nl) == 0 &&
                       (ver[nl] == '\0' || ver[nl] == '.');
        cr_assert(ours, "%s has version %s", name, ver);
        if (strncmp(name, "FEDREC_CLIENT_", 14) == 0) {
            continue; // a version definition itself
        }
        cr_assert(has(&api, name), "%s is exported but not public API",
                  name);
        add(&exported, name, strlen(name));
    }
    cr_assert_eq(pclose(p), 0);
    for (size_t i = 0; i < api.n; i++) {
        cr_assert(has(&exported, api.name[i]),
                  "%s is declared FR_API but not exported (map file?)",
                  api.name[i]);
    }
}

#if defined(__SANITIZE_ADDRESS__)
// The shared library is instrumented: the program must be too.
#define SAN_FLAGS "-fsanitize=address,undefined"
#else
#define SAN_FLAGS ""
#endif

// A program built the way an application of the previous config layout
// was: its own copy of the shorter struct, linked against the shared
// library. It must bind to the versioned symbols, run, and have its
// config accepted without anything written past the struct.
static const char old_app[] =
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include <fedrec/client.h>\n"
    "struct config_v1 {\n"
    "    size_t struct_size; uint8_t server_pk[FR_PUBLICKEYBYTES];\n"
    "    uint8_t identity_seed[FR_SEEDBYTES]; int has_identity;\n"
    "    const char *state_path; uint8_t state_key[FR_STATEKEYBYTES];\n"
    "    uint32_t max_items, max_k; fr_model_cache *model_cache;\n"
    "    fr_allocator allocator; fr_log_fn log; void *log_ctx;\n"
    "    fr_log_level log_level; uint64_t seed; float pseudo_items_rho;\n"
    "    int pseudo_fill;\n"
    "};\n"
    "int main(void) {\n"
    "    struct { struct config_v1 cfg; unsigned char canary[32]; } s;\n"
    "    memset(&s, 0x5a, sizeof s);\n"
    "    fr_client_config_init_size((fr_client_config *) &s.cfg,\n"
    "                               sizeof s.cfg);\n"
    "    for (size_t i = 0; i < sizeof s.canary; i++)\n"
    "        if (s.canary[i] != 0x5a) { puts(\"overwritten\"); return 1; }\n"
    "    s.cfg.max_k = 4;\n"
    "    fr_client *c = NULL;\n"
    "    fr_err e = fr_client_create(&c, (fr_client_config *) &s.cfg);\n"
    "    printf(\"create %s version %s\\n\", fr_errname(e),\n"
    "           fr_version_string());\n"
    "    fr_client_destroy(c);\n"
    "    return e == FR_OK ? 0 : 1;\n"
    "}\n";

Test(client_abi, program_of_older_layout_runs_against_shared_library,
     .timeout = 120)
{
    char dir[] = "/tmp/frabiXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/app.c", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(old_app, f);
    fclose(f);

    char libdir[1024];
    snprintf(libdir, sizeof libdir, "%s", FR_CLIENT_SHARED);
    char *slash = strrchr(libdir, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'" FR_TEST_CC "' -std=c11 %s -I'%s/client/include' -I'%s/common/include' "
             "-I'%s/include' -o '%s/app' '%s' -L'%s' -Wl,-rpath,'%s' "
             "-lfedrec-client 2>&1",
             SAN_FLAGS, FR_SOURCE_DIR, FR_SOURCE_DIR, FR_BINARY_DIR, dir,
             path, libdir, libdir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n]   = '\0';
    cr_assert_eq(pclose(p), 0, "build failed: %s\n%s", cmd, out);

    // Its undefined fr_* references carry the library's symbol version.
    char want[64];
    snprintf(want, sizeof want, "FEDREC_CLIENT_%d", FR_CLIENT_SOVERSION);
    snprintf(cmd, sizeof cmd,
             FR_TEST_OBJDUMP " -T '%s/app' | grep fr_client_create", dir);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    cr_assert(strstr(out, want) != NULL, "app binds: %s", out);

    snprintf(cmd, sizeof cmd, FR_TEST_RUN "'%s/app' 2>&1", dir);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "app failed: %s", out);
    char line[128];
    snprintf(line, sizeof line, "create FR_OK version %s",
             FR_VERSION_STRING);
    cr_assert(strstr(out, line) != NULL, "output: %s", out);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
