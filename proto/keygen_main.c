// fedrec-keygen: creates an identity (aggregator or client).
//   fedrec-keygen --out PREFIX [--force]
// Writes PREFIX.key (secret seed, 0600) and PREFIX.pub (public keys), and
// prints the public keys in hex (for pinning in a config).
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "keys.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: fedrec-keygen --out PREFIX [--force]\n"
               "  writes PREFIX.key (secret, mode 0600) and PREFIX.pub\n"
               "  --force  replace existing files\n");
}

int
main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prefix = NULL;
    int         force  = 0;
    int         c;
    opterr = 0; // usage() says what is expected
    // Long options only; a leading ':' reports a missing value as ':'.
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            prefix = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            fprintf(stderr, "fedrec-keygen: %s needs a value\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            fprintf(stderr, "fedrec-keygen: bad option '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fedrec-keygen: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 2;
    }
    if (prefix == NULL || prefix[0] == '\0') {
        usage(stderr);
        return 2;
    }
    fri_identity id;
    fr_err       e = fri_identity_generate(&id);
    if (e != FR_OK) {
        fprintf(stderr, "fedrec-keygen: %s\n", fr_strerror(e));
        return 1;
    }
    errno = 0;
    e = fri_key_save(prefix, &id, force);
    if (e != FR_OK) {
        int err = errno;
        fri_identity_wipe(&id);
        if (err == EEXIST) {
            fprintf(stderr,
                    "fedrec-keygen: %s.key or %s.pub exists "
                    "(use --force to replace)\n",
                    prefix, prefix);
        } else {
            fprintf(stderr, "fedrec-keygen: writing %s.key/.pub: %s (%s)\n",
                    prefix, fr_strerror(e), err ? strerror(err) : "");
        }
        return 1;
    }
    fri_pubkeys pk;
    char        hex[FRI_PUBHEX_LEN + 1];
    fri_identity_pub(&pk, &id);
    fri_identity_wipe(&id);
    fri_pubkeys_hex(hex, &pk);
    printf("%s.key written (secret, mode 0600)\n%s.pub written\n"
           "public keys (kx||sign): %s\n",
           prefix, prefix, hex);
    return 0;
}
