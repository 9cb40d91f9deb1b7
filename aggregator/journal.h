// The buffered mode's journal (journal.c): every report accepted into the
// open buffer is appended to <state>/buffer.journal and made durable before
// it is acknowledged, and the journal is emptied once the step that used
// the buffer is checkpointed. A restart replays the reports of buffers the
// last checkpoint does not contain, so an acknowledged report (a latest-
// statistics delta the device committed) is neither lost nor counted
// twice.
#ifndef FR_AGGREGATOR_JOURNAL_H
#define FR_AGGREGATOR_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agg.h"

// Opens (creating, mode 0600) the journal of state directory dir; *fd.
fr_err fri_journal_open(const char *dir, int *fd);
// Appends the report u of key pk to buffer `round` and syncs it; *undo is
// the journal's length before, for fri_journal_undo. d = k + 1.
fr_err fri_journal_append(int fd, uint64_t round,
    const uint8_t pk[FRI_AGG_KEYBYTES], const fri_agg_update *u, off_t *undo);
// Cuts the journal back to length at (a report that was not summed).
void fri_journal_undo(int fd, off_t at);
// Empties the journal (its buffer was checkpointed or dropped).
fr_err fri_journal_clear(int fd);

// Calls fn for every intact record of a buffer after `after` (the last
// checkpointed round), in order; u is valid during the call only and its
// sizes are checked against n_items, gram_len (or no Gram), rows of d
// floats and vb_len (0: none). A torn or damaged tail (never acknowledged: records are
// synced before the ACK) ends the replay and is cut off.
typedef void (*fri_journal_fn)(void *ctx, uint64_t round,
    const uint8_t pk[FRI_AGG_KEYBYTES], const fri_agg_update *u);
fr_err fri_journal_replay(int fd, uint64_t after, uint32_t n_items, uint32_t d,
    size_t gram_len, size_t vb_len, fri_journal_fn fn, void *ctx,
    size_t *n_out);

#endif
