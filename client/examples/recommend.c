// Minimal use of libfedrec-client: create a device, record ratings,
// optionally take part in one round, and print recommendations when a model
// is available.
//
//   recommend [URL SERVER_PUBKEY_HEX]
#include <stdio.h>
#include <string.h>

#include <fedrec/client.h>

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static void
log_line(void *ctx, fr_log_level level, const char *msg)
{
    (void) ctx;
    fprintf(stderr, "fedrec[%d]: %s\n", (int) level, msg);
}

int
main(int argc, char **argv)
{
    // The headers and the library in use must agree on the major version.
    printf("libfedrec-client %s (headers %s)\n", fr_version_string(),
           FR_VERSION_STRING);
    if (fr_version() / 10000 != FR_VERSION_MAJOR) {
        fprintf(stderr, "library major version differs from the headers\n");
        return 1;
    }
    fr_client_config cfg;
    fr_client_config_init(&cfg); // records sizeof cfg for the library
    cfg.log = log_line;          // why a config is refused, if it is
    // A memory-only device; with cfg.state_path set, cfg.state_key must
    // be a secret of the app's (the all-zero key is refused).
    cfg.max_items = 100000; // bounds the model, and the replies accepted
    cfg.max_k     = 64;
    if (argc == 3) {
        if (strlen(argv[2]) != 2 * FR_PUBLICKEYBYTES) {
            fprintf(stderr, "server key: %d hex digits expected\n",
                    2 * FR_PUBLICKEYBYTES);
            return 2;
        }
        for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
            int hi = hexval(argv[2][2 * i]), lo = hexval(argv[2][2 * i + 1]);
            if (hi < 0 || lo < 0) {
                fprintf(stderr, "server key: bad hex\n");
                return 2;
            }
            cfg.server_pk[i] = (uint8_t) (hi * 16 + lo);
        }
    }
    fr_client *c = NULL;
    fr_err     e = fr_client_create(&c, &cfg);
    if (e != FR_OK) {
        fprintf(stderr, "create: %s\n", fr_strerror(e));
        return 1;
    }
    const uint32_t items[]   = {1, 50, 100, 181, 258};
    const float    ratings[] = {5, 4, 3, 5, 2};
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (fr_client_add(c, items[i], ratings[i], 0) != FR_OK) {
            fprintf(stderr, "add: %s\n", fr_client_errmsg(c));
            fr_client_destroy(c);
            return 1;
        }
    }
    printf("ratings: %zu\n", fr_client_count(c));
    if (argc == 3) {
        e = fr_client_checkin_nng(c, argv[1], 5000);
        fr_checkin_info info;
        fr_client_checkin_info_get(c, &info);
        // fr_client_errmsg stays valid until the next failing call on c.
        printf("check-in: %s (status %d, round %llu): %s\n", fr_strerror(e),
               (int) info.status, (unsigned long long) info.round,
               e == FR_OK ? "ok" : fr_client_errmsg(c));
    }
    uint32_t top[10];
    float    scores[10];
    size_t   n = 0;
    e          = fr_client_recommend(c, top, scores, 10, &n);
    if (e == FR_ESTATE) {
        printf("no model yet: %s\n", fr_client_errmsg(c));
    } else if (e != FR_OK) {
        fprintf(stderr, "recommend: %s\n", fr_client_errmsg(c));
        fr_client_destroy(c);
        return 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            printf("%zu. item %u (%.3f)\n", i + 1, (unsigned) top[i],
                   (double) scores[i]);
        }
    }
    fr_client_destroy(c);
    return 0;
}
