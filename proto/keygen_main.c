// fedrec-keygen: creates an identity (aggregator or client).
//   fedrec-keygen --out PREFIX [--force]
// Writes PREFIX.key (secret seed, 0600) and PREFIX.pub (public keys), and
// prints the public keys in hex (for pinning in a config).
#include <errno.h>
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
    const char *prefix = NULL;
    int         force = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            prefix = argv[++i];
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
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
