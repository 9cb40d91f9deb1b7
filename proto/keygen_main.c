// fedrec-keygen: creates an identity (aggregator or client).
//   fedrec-keygen --out PREFIX [--force]
// Writes PREFIX.key (secret seed, 0600) and PREFIX.pub (public keys), and
// prints the public keys in hex (for pinning in a config).
//   fedrec-keygen --edge-pin EDGE.pub --root ROOT.pub --out PREFIX [--force]
// Writes PREFIX.pub, the key a device of a tree pins (docs/DEPLOY-TREE.md):
// the edge's X25519 key (its handshake) and the root's Ed25519 key (the
// models' signatures).
//   fedrec-keygen --credential --signer ROOT.key --subject EDGE.pub
//                 [--days N] --out PREFIX [--force]
// Writes PREFIX.cred, the root's credential for an edge (SPEC.md §6.1.1):
// devices that pin only the root's key accept that edge until it expires.
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"

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
               "  handshake key with the root's model-signing key\n"
               "       fedrec-keygen --credential --signer ROOT.key "
               "--subject EDGE.pub [--days N] --out PREFIX [--force]\n"
               "  writes PREFIX.cred: the root's credential for that edge,\n"
               "  valid N days (default 90)\n");
}

// Writes len bytes to PREFIX.ext (mode), refusing to replace a file
// unless force.
static int
write_new(const char *prefix, const char *ext, const uint8_t *b, size_t len,
          int mode, int force)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s%s", prefix, ext) >=
        (int) sizeof(path)) {
        fprintf(stderr, "fedrec-keygen: prefix too long\n");
        return 1;
    }
    if (force) {
        (void) unlink(path);
    }
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, mode);
    if (fd < 0 || write(fd, b, len) != (ssize_t) len) {
        fprintf(stderr, "fedrec-keygen: writing %s: %s\n", path,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return 1;
    }
    close(fd);
    return 0;
}

static int
credential(const char *signer, const char *subject, long days,
           const char *prefix, int force)
{
    fri_identity root;
    fri_pubkeys  edge;
    if (fri_key_load(&root, signer) != FR_OK) {
        fprintf(stderr, "fedrec-keygen: cannot load the secret key %s\n",
                signer);
        return 1;
    }
    if (fri_pub_load(&edge, subject) != FR_OK) {
        fri_identity_wipe(&root);
        fprintf(stderr, "fedrec-keygen: cannot read %s as a public key "
                        "file\n", subject);
        return 1;
    }
    uint8_t  file[FRI_CREDFILE_LEN] = {'F', 'R', 'C', 'R', 1, 0, 0, 0};
    uint64_t not_after = (uint64_t) time(NULL) + (uint64_t) days * 86400u;
    fr_err   e = fri_cred_make(file + 8, &root, &edge, not_after);
    fri_identity_wipe(&root);
    if (e != FR_OK || write_new(prefix, ".cred", file, sizeof(file), 0644,
                                force) != 0) {
        return 1;
    }
    printf("%s.cred written: %s authorized by %s until %llu (Unix time)\n",
           prefix, subject, signer, (unsigned long long) not_after);
    return 0;
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
        {"credential", no_argument, NULL, 'c'},
        {"signer", required_argument, NULL, 's'},
        {"subject", required_argument, NULL, 'S'},
        {"days", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prefix = NULL, *edge = NULL, *root = NULL;
    const char *signer = NULL, *subject = NULL;
    long        days   = 90;
    int         force  = 0, cred = 0;
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
        case 'c':
            cred = 1;
            break;
        case 's':
            signer = optarg;
            break;
        case 'S':
            subject = optarg;
            break;
        case 'd': {
            char *end = NULL;
            days      = strtol(optarg, &end, 10);
            if (end == optarg || *end != 0 || days < 1 || days > 3650) {
                fprintf(stderr, "fedrec-keygen: --days wants 1..3650\n");
                return 2;
            }
            break;
        }
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
    if (cred) {
        if (signer == NULL || subject == NULL) {
            usage(stderr);
            return 2;
        }
        return credential(signer, subject, days, prefix, force);
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
