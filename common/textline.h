// Reading '|'-separated text files line by line (MovieLens u.item, u.user):
// CR/LF stripped, blank lines skipped, fields split in place.
#ifndef FR_COMMON_TEXTLINE_H
#define FR_COMMON_TEXTLINE_H

#include <stddef.h>
#include <stdio.h>

// The next non-blank line of f into line (cap bytes, at least 2), without
// its line end; *ln counts the lines read. 1: a line; 0: end of file (or a
// read error: check ferror); -1: a line of cap - 1 bytes or more.
int fri_line_next(FILE *f, char *line, size_t cap, size_t *ln);

// Splits line in place at every sep into field[0..]; returns the number of
// fields, or max + 1 (fields beyond max not stored) when there are more.
size_t fri_line_split(char *line, char sep, char **field, size_t max);

#endif
