// fedrec-bench-conns: opens N concurrent device connections to an
// aggregator (one NNG REQ socket each, all held open at once), completes
// a HELLO/WELCOME handshake on every one with a fresh device key, holds
// them for --hold seconds and prints a JSON line with the error counts.
// Used by bench/conns.sh.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "channel.h"
#include "keys.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    const char *url = NULL, *pub = NULL;
    long        n = 10000, hold = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--connect") == 0) {
            url = argv[i + 1];
        } else if (strcmp(argv[i], "--server-key") == 0) {
            pub = argv[i + 1];
        } else if (strcmp(argv[i], "-n") == 0) {
            n = strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--hold") == 0) {
            hold = strtol(argv[i + 1], NULL, 10);
        }
    }
    if (url == NULL || pub == NULL || n <= 0 || n > 100000 || hold < 0
        || hold > 600) {
        fprintf(stderr,
            "usage: fedrec-bench-conns --connect URL "
            "--server-key PREFIX.pub [-n N<=100000] "
            "[--hold S<=600]\n");
        return 2;
    }
    fri_pubkeys spk;
    if (fri_pub_load(&spk, pub) != FR_OK) {
        fprintf(stderr, "cannot read %s\n", pub);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    nng_socket *s  = calloc((size_t)n, sizeof(*s));
    int        *ok = calloc((size_t)n, sizeof(*ok));
    if (s == NULL || ok == NULL) {
        return 1;
    }
    long   dial_err = 0, hs_err = 0, open_n = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (nng_req0_open(&s[i]) != 0) {
            dial_err++;
            continue;
        }
        open_n++;
        (void)nng_socket_set_ms(s[i], NNG_OPT_RECVTIMEO, 10000);
        (void)nng_socket_set_ms(s[i], NNG_OPT_SENDTIMEO, 10000);
        if (nng_dial(s[i], url, NULL, 0) != 0) {
            dial_err++;
            continue;
        }
        fri_identity   me;
        uint8_t        hello[FRI_HELLO_LEN];
        size_t         hl   = 0;
        fri_hs_client *hs   = NULL;
        void          *rb   = NULL;
        size_t         rlen = 0;
        fri_session   *sess = NULL;
        if (fri_identity_generate(&me) != FR_OK
            || fri_hs_client_hello(
                   &hs, hello, sizeof(hello), &hl, &me, spk.kx, FRI_CAP_ALS)
                != FR_OK
            || nng_send(s[i], hello, hl, 0) != 0
            || nng_recv(s[i], &rb, &rlen, NNG_FLAG_ALLOC) != 0
            || fri_hs_client_finish(&sess, hs, rb, rlen) != FR_OK) {
            hs_err++;
        } else {
            ok[i] = 1;
        }
        if (rb != NULL) {
            nng_free(rb, rlen);
        }
        fri_session_destroy(sess);
        fri_hs_client_destroy(hs);
        fri_identity_wipe(&me);
    }
    double t1   = now_s();
    long   held = 0;
    for (long i = 0; i < n; i++) {
        held += ok[i];
    }
    fprintf(stderr, "all %ld connections up; holding %ld s\n", held, hold);
    nng_msleep((nng_duration)(hold * 1000));
    for (long i = 0; i < n; i++) {
        nng_close(s[i]);
    }
    printf("{\"connections\":%ld,\"handshakes_ok\":%ld,\"dial_errors\":%ld,"
           "\"handshake_errors\":%ld,\"errors\":%ld,\"setup_s\":%.2f,"
           "\"handshakes_per_s\":%.0f}\n",
        n, held, dial_err, hs_err, dial_err + hs_err + (n - open_n), t1 - t0,
        (double)held / (t1 - t0));
    free(s);
    free(ok);
    return dial_err + hs_err == 0 ? 0 : 1;
}
