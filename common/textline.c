#include "textline.h"

#include <string.h>

int
fri_line_next(FILE *f, char *line, size_t cap, size_t *ln)
{
    while (fgets(line, (int) cap, f) != NULL) {
        (*ln)++;
        size_t len = strlen(line);
        if (len == cap - 1 && line[len - 1] != '\n') {
            return -1;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len > 0) {
            return 1;
        }
    }
    return 0;
}

size_t
fri_line_split(char *line, char sep, char **field, size_t max)
{
    size_t nf = 0;
    for (char *p = line;;) {
        if (nf == max) {
            return max + 1;
        }
        field[nf++] = p;
        char *s     = strchr(p, sep);
        if (s == NULL) {
            return nf;
        }
        *s = '\0';
        p  = s + 1;
    }
}
