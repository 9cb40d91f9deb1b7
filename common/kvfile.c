// 'name = value' configuration files (kvfile.h).
#include "kvfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static char *
trim(char *s)
{
    while (isspace((unsigned char) *s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char) s[n - 1])) {
        s[--n] = 0;
    }
    return s;
}

fr_err
fri_kv_file_read(const char *path, const char *flag, fri_kv_fn fn, void *ctx,
                 char *err, size_t err_cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (err_cap > 0) {
            snprintf(err, err_cap, "%s %s: cannot open: %s", flag, path,
                     strerror(errno));
        }
        return FR_EIO;
    }
    char   line[1024];
    char   where[600];
    int    ln = 0;
    fr_err rv = FR_OK;
    while (rv == FR_OK && fgets(line, sizeof(line), f) != NULL) {
        ln++;
        snprintf(where, sizeof(where), "%s:%d", path, ln);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            if (err_cap > 0) {
                snprintf(err, err_cap, "%s: line too long", where);
            }
            rv = FR_EINVAL;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL) {
            *hash = 0;
        }
        char *s = trim(line);
        if (*s == 0) {
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            if (err_cap > 0) {
                snprintf(err, err_cap, "%s: expected 'name = value'", where);
            }
            rv = FR_EINVAL;
            break;
        }
        *eq        = 0;
        char *name = trim(s);
        char *val  = trim(eq + 1);
        if (strncmp(name, "--", 2) == 0) {
            name += 2;
        }
        if (strcmp(name, "config") == 0 || strcmp(name, "help") == 0) {
            if (err_cap > 0) {
                snprintf(err, err_cap,
                         "%s: '%s' is not allowed in a config file", where,
                         name);
            }
            rv = FR_EINVAL;
            break;
        }
        rv = fn(ctx, name, val, where, err, err_cap);
    }
    fclose(f);
    return rv;
}
