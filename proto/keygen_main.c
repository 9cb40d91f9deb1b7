// fedrec-keygen: creates an identity (aggregator or client).
//   fedrec-keygen --out PREFIX [--force]
// Writes PREFIX.key (secret seed, 0600) and PREFIX.pub (public keys), and
// prints the public keys in hex (for pinning in a config).
//   fedrec-keygen --edge-pin EDGE.pub --root ROOT.pub --out PREFIX [--force]
// Writes PREFIX.pub, the key a device of a tree pins (docs/DEPLOY-TREE.md):
// the edge's X25519 key (its handshake) and the root's Ed25519 key (the
// models' signatures).
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: fedrec-keygen --out PREFIX [--force]\n"
               "  writes PREFIX.key (secret, mode 0600) and PREFIX.pub\n"
               "  --force  replace existing files\n"
               "       fedrec-keygen --edge-pin EDGE.pub --root ROOT.pub "
               "--out PREFIX [--force]\n"
               "  writes PREFIX.pub for the devices of an edge: the edge's\n"
               "  handshake key with the root's model-signing key\n");
}

// PREFIX.pub = the edge's X25519 key | the root's Ed25519 key.
static int
edge_pin(const char *edge, const char *root, const char *prefix, int force)
{
    fri_pubkeys e, r;
    if (fri_pub_load(&e, edge) != FR_OK || fri_pub_load(&r, root) != FR_OK) {
        fprintf(stderr, "fedrec-keygen: cannot read %s or %s as a public "
                        "key file\n", edge, root);
        return 1;
    }
    memcpy(e.sign, r.sign, sizeof(e.sign));
    uint8_t img[FRI_PUBFILE_LEN];
    fri_pubfile_encode(img, &e);
    char path[4096];
    if (snprintf(path, sizeof(path), "%s.pub", prefix) >= (int) sizeof(path)) {
        fprintf(stderr, "fedrec-keygen: prefix too long\n");
        return 1;
    }
    if (force) {
        (void) unlink(path);
    }
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0 || write(fd, img, sizeof(img)) != (ssize_t) sizeof(img)) {
        fprintf(stderr, "fedrec-keygen: writing %s: %s\n", path,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return 1;
    }
    close(fd);
    char hex[FRI_PUBHEX_LEN + 1];
    fri_pubkeys_hex(hex, &e);
    printf("%s written (edge %s, root %s)\npublic keys (kx||sign): %s\n",
           path, edge, root, hex);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"edge-pin", required_argument, NULL, 'e'},
        {"root", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prefix = NULL, *edge = NULL, *root = NULL;
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
        case 'e':
            edge = optarg;
            break;
        case 'r':
            root = optarg;
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
    if (prefix == NULL || prefix[0] == '\0' || (edge == NULL) != (root == NULL)) {
        usage(stderr);
        return 2;
    }
    if (edge != NULL) {
        return edge_pin(edge, root, prefix, force);
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
