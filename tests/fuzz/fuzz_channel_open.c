// libFuzzer: the receive paths of the secure channel on attacker bytes —
// fri_frame_sid, fri_open on an established session, the server's
// fri_hs_server_accept (HELLO), the client's fri_hs_client_finish
// (WELCOME), key/pub file decoders and fri_model_verify. None may crash,
// and fri_open must never accept a frame the peer did not seal.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "keys.h"

static fri_identity srv, cli;
static fri_session *s, *c; // one live session: failed opens change nothing
static int          ready;

static void
init(void)
{
    uint8_t s1[32], s2[32];
    for (int i = 0; i < 32; i++) {
        s1[i] = (uint8_t) i;
        s2[i] = (uint8_t) (i + 100);
    }
    if (fri_identity_from_seed(&srv, s1) != FR_OK ||
        fri_identity_from_seed(&cli, s2) != FR_OK) {
        abort();
    }
    uint8_t        hello[FRI_HELLO_LEN], welcome[FRI_WELCOME_LEN];
    size_t         hl, wl;
    fri_hs_client *hs = NULL;
    if (fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &cli, srv.kx_pk,
                            0) != FR_OK ||
        fri_hs_server_accept(&s, welcome, sizeof(welcome), &wl, &srv, NULL,
                             0, hello, hl) != FR_OK ||
        fri_hs_client_finish(&c, hs, welcome, wl) != FR_OK) {
        abort();
    }
    fri_hs_client_destroy(hs);
    ready = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        init();
    }
    uint8_t *f = malloc(size ? size : 1);
    if (f == NULL) {
        return 0;
    }
    memcpy(f, data, size);
    uint8_t sid[FRI_SID_BYTES];
    (void) fri_frame_sid(sid, f, size);

    // The fuzzed frame must not open on the live session (forgery).
    // Splice the live session id in so fuzzing reaches the MAC check.
    if (size >= 24 && (data[0] & 1)) {
        memcpy(f + 16, fri_session_id(s), FRI_SID_BYTES);
    }
    const uint8_t *pl;
    size_t         pn;
    if (fri_open(s, f, size, &pl, &pn) == FR_OK) {
        abort();
    }
    memcpy(f, data, size);
    if (fri_open(c, f, size, &pl, &pn) == FR_OK) {
        abort();
    }

    // Server side of the handshake on fuzzed HELLO.
    memcpy(f, data, size);
    uint8_t w2[FRI_WELCOME_LEN];
    size_t  w2l;
    fri_session *s2 = NULL;
    if (fri_hs_server_accept(&s2, w2, sizeof(w2), &w2l, &srv, NULL, 0, f,
                             size) == FR_OK) {
        fri_session_destroy(s2);
    }
    // Client side on fuzzed WELCOME: must fail (only srv can answer).
    uint8_t        hello[FRI_HELLO_LEN];
    size_t         hl;
    fri_hs_client *hs = NULL;
    fri_hdr        h;
    if (fri_frame_check(&h, f, size) == FR_OK && h.type == FRI_T_WELCOME &&
        fri_hs_client_hello(&hs, hello, sizeof(hello), &hl, &cli, srv.kx_pk,
                            0) == FR_OK) {
        fri_session *c2 = NULL;
        if (fri_hs_client_finish(&c2, hs, f, size) == FR_OK) {
            abort();
        }
        fri_hs_client_destroy(hs);
    }
    uint8_t     seed[32];
    fri_pubkeys pk;
    (void) fri_keyfile_decode(seed, f, size);
    (void) fri_pubfile_decode(&pk, f, size);
    (void) fri_model_verify(f, size, srv.sign_pk);
    free(f);
    return 0;
}
