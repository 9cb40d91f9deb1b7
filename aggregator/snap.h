// The published model (snap.c): identity, signed MODEL frame, snapshot
// references, served arrays.
#ifndef FR_AGGREGATOR_SNAP_H
#define FR_AGGREGATOR_SNAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// The signed MODEL frame of one round, built once when the round opens and
// shared by reference: handlers serving GET_MODEL hold a reference while
// they seal it for their session.
enum { FRI_SNAP_ALT_F16, FRI_SNAP_ALT_I8, FRI_SNAP_ALT_I8C, FRI_SNAP_ALTS };

typedef struct fri_snap {
    atomic_uint refs;
    uint64_t    version;
    uint64_t    round;
    uint8_t    *frame; // signed plain MODEL frame (F32 rows), or NULL
    size_t      frame_len;
    // The same model encoded F16, I8 and I8C (SPEC 5.6, index
    // FRI_SNAP_ALT_*), each signed, when cfg.model_format may serve them
    // and the model fits the encoding; NULL otherwise.
    uint8_t *alt[FRI_SNAP_ALTS];
    size_t   alt_len[FRI_SNAP_ALTS];
} fri_snap;

// The frame of s to send a device whose GET_MODEL accepts the encodings
// in accept (FRI_ENC_*_BIT): the smallest of the encodings built for it
// (cfg.model_format), F32 when it accepts none of those.
void fri_snap_pick(
    const fri_snap *s, uint8_t accept, const uint8_t **frame, size_t *len);

// Identity from cfg (seed or fresh) into a->id / a->pk.
fr_err fri_agg_identity_init(fri_agg *a);
// Encodes and signs the MODEL frame of the current model for s->round and
// s->version into s->frame. Called by the exclusive closer/opener.
fr_err fri_agg_snap_frame(fri_agg *a, fri_snap *s);
void   fri_snap_unref(fri_snap *s);
// Current snapshot with a reference held (never NULL after create).
fri_snap *fri_agg_snap_get(fri_agg *a);
// Model arrays of the served version (exclusive closer/opener only).
void fri_agg_model_view(
    const fri_agg *a, float *mu, const float **bi, const float **Q);

#endif
