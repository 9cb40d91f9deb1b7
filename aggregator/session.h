// The session table (session.c) of the wire side (handle.c). A session is
// checked out (busy) for one request and released after it; only frames
// that authenticate refresh or confirm it.
#ifndef FR_AGGREGATOR_SESSION_H
#define FR_AGGREGATOR_SESSION_H

#include <stdint.h>

#include "agg_int.h"
#include "channel.h"

typedef struct fri_sess_entry {
    struct fri_sess_entry *next; // sid bucket chain
    struct fri_sess_entry *knext; // client-key bucket chain
    struct fri_sess_entry *uprev; // unconfirmed FIFO (oldest first)
    struct fri_sess_entry *unext;
    fri_session           *s;
    uint8_t                sid[FRI_SID_BYTES];
    uint8_t                client[FRI_PKBYTES];
    uint64_t               last_ms; // creation, then last authenticated frame
    int                    confirmed; // a frame of this session authenticated
    int                    busy; // a request of this session is being handled
    int                    dead; // drop when the request finishes
    int                    reader; // MODEL_ONLY check-in: GET_MODEL only
    uint64_t               read_round; // the round whose model it may fetch
} fri_sess_entry;

fr_err fri_sessions_create(fri_agg *a);
void   fri_sessions_destroy(fri_agg *a);
// Drops the idle sessions whose time is up.
void fri_sessions_expire(fri_agg *a, uint64_t now_ms);
// Inserts the new session e of a HELLO, making room as the caps allow.
// NULL on success (the table owns e), else why it was refused (the caller
// still owns e).
const char *fri_sess_add(fri_agg *a, uint64_t now_ms, fri_sess_entry *e);
// Checks a session out for one request. NULL if unknown or busy (*busy).
fri_sess_entry *fri_sess_acquire(fri_agg *a, const uint8_t *sid, int *busy);
// Returns it; authed: the request opened under its keys; drop: end it.
void fri_sess_release(
    fri_agg *a, fri_sess_entry *e, uint64_t now_ms, int authed, int drop);

#endif
