// MovieLens u.user attributes (userattr.h).
#include "userattr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textline.h"

uint8_t
fri_age_band(long age)
{
    if (age < 1 || age > 120) {
        return FRI_ATTR_UNKNOWN;
    }
    return age < 25 ? 0 : age < 35 ? 1 : age < 45 ? 2 : 3;
}

static int
parse_long(const char *s, long *v)
{
    char *end;
    errno = 0;
    *v    = strtol(s, &end, 10);
    return s[0] == '\0' || *end != '\0' || errno != 0 ? -1 : 0;
}

fr_err
fri_user_attrs_load(const char *path, fri_idmap *users, uint32_t n_users,
                    uint8_t *gender, uint8_t *age_band, char *err,
                    size_t err_cap)
{
    if (path == NULL || users == NULL || gender == NULL || age_band == NULL) {
        return FR_EINVAL;
    }
    memset(gender, FRI_ATTR_UNKNOWN, n_users);
    memset(age_band, FRI_ATTR_UNKNOWN, n_users);
    uint8_t *seen = calloc(n_users > 0 ? n_users : 1, 1);
    if (seen == NULL) {
        return FR_ENOMEM;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        free(seen);
        return FR_EIO;
    }
    char        line[4096];
    size_t      ln  = 0;
    const char *why = NULL;
    int         got;
    while (why == NULL && (got = fri_line_next(f, line, sizeof line, &ln))) {
        if (got < 0) {
            why = "line too long";
            break;
        }
        char  *field[3];
        size_t nf = fri_line_split(line, '|', field, 3);
        long id, age;
        if (nf < 3) {
            why = "expected id|age|gender|...";
        } else if (parse_long(field[0], &id) != 0 || id < 0) {
            why = "bad user id";
        } else if (parse_long(field[1], &age) != 0 ||
                   fri_age_band(age) == FRI_ATTR_UNKNOWN) {
            why = "bad age (1..120)";
        } else if (strcmp(field[2], "M") != 0 && strcmp(field[2], "F") != 0) {
            why = "gender is not M or F";
        } else {
            uint32_t u;
            if (fri_idmap_get(users, id, 0, &u) != FR_OK || u >= n_users) {
                continue; // a user without ratings here
            }
            if (seen[u]) {
                why = "user listed twice";
                break;
            }
            seen[u]     = 1;
            gender[u]   = field[2][0] == 'F' ? FRI_GENDER_F : FRI_GENDER_M;
            age_band[u] = fri_age_band(age);
        }
    }
    int rerr = ferror(f);
    fclose(f);
    free(seen);
    if (why == NULL && rerr) {
        snprintf(err, err_cap, "%s: read error", path);
        return FR_EIO;
    }
    if (why != NULL) {
        snprintf(err, err_cap, "%s:%zu: %s", path, ln, why);
        memset(gender, FRI_ATTR_UNKNOWN, n_users);
        memset(age_band, FRI_ATTR_UNKNOWN, n_users);
        return FR_EFORMAT;
    }
    return FR_OK;
}
