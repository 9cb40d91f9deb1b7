// The shared library's binary interface: SONAME libfedrec-client.so.N, every
// export under the symbol version FEDREC_CLIENT_N (client/fedrec-client.map),
// and the export list equal to the FR_API declarations of the installed
// headers (nothing internal leaks, nothing public is missing).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    snprintf(cmd, sizeof cmd, "readelf -d '%s'", FR_CLIENT_SHARED);
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
    snprintf(cmd, sizeof cmd, "objdump -T '%s'", FR_CLIENT_SHARED);
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
        if (strcmp(name, node) == 0) {
            continue; // the version definition itself
        }
        cr_assert_str_eq(ver, node, "%s has version %s", name, ver);
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
