#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"

#define KDF_CTX "fedrecid" // crypto_kdf_CONTEXTBYTES == 8
#define CHECK_LEN 16

fr_err
fri_identity_from_seed(fri_identity *id, const uint8_t seed[FRI_SEEDBYTES])
{
    uint8_t sub[32];
    fr_err  e = FR_EINTERNAL;
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    memmove(id->seed, seed, FRI_SEEDBYTES);
    if (crypto_kdf_derive_from_key(sub, sizeof(sub), 1, KDF_CTX, id->seed) !=
            0 ||
        crypto_kx_seed_keypair(id->kx_pk, id->kx_sk, sub) != 0) {
        goto out;
    }
    if (crypto_kdf_derive_from_key(sub, sizeof(sub), 2, KDF_CTX, id->seed) !=
            0 ||
        crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, sub) != 0) {
        goto out;
    }
    e = FR_OK;
out:
    sodium_memzero(sub, sizeof(sub));
    if (e != FR_OK) {
        fri_identity_wipe(id);
    }
    return e;
}

fr_err
fri_identity_generate(fri_identity *id)
{
    uint8_t seed[FRI_SEEDBYTES];
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    randombytes_buf(seed, sizeof(seed));
    fr_err e = fri_identity_from_seed(id, seed);
    sodium_memzero(seed, sizeof(seed));
    return e;
}

void
fri_identity_wipe(fri_identity *id)
{
    if (id != NULL) {
        sodium_memzero(id, sizeof(*id));
    }
}

void
fri_identity_pub(fri_pubkeys *out, const fri_identity *id)
{
    memcpy(out->kx, id->kx_pk, 32);
    memcpy(out->sign, id->sign_pk, 32);
}

static void
checksum(uint8_t out[CHECK_LEN], const uint8_t *p, size_t n)
{
    crypto_generichash(out, CHECK_LEN, p, n, NULL, 0);
}

void
fri_keyfile_encode(uint8_t out[FRI_KEYFILE_LEN],
                   const uint8_t seed[FRI_SEEDBYTES])
{
    memcpy(out, "FRSK", 4);
    out[4] = 1; // version
    out[5] = 1; // kind: seed
    fri_put16(out + 6, 0);
    memcpy(out + 8, seed, FRI_SEEDBYTES);
    checksum(out + 40, out, 40);
}

fr_err
fri_keyfile_decode(uint8_t seed[FRI_SEEDBYTES], const uint8_t *src,
                   size_t src_len)
{
    uint8_t c[CHECK_LEN];
    if (src == NULL || src_len != FRI_KEYFILE_LEN ||
        memcmp(src, "FRSK", 4) != 0 || src[4] != 1 || src[5] != 1 ||
        fri_get16(src + 6) != 0) {
        return FR_EFORMAT;
    }
    checksum(c, src, 40);
    if (sodium_memcmp(c, src + 40, CHECK_LEN) != 0) {
        return FR_EFORMAT;
    }
    memcpy(seed, src + 8, FRI_SEEDBYTES);
    return FR_OK;
}

void
fri_pubfile_encode(uint8_t out[FRI_PUBFILE_LEN], const fri_pubkeys *pk)
{
    memcpy(out, "FRPK", 4);
    out[4] = 1;
    out[5] = 0;
    fri_put16(out + 6, 0);
    memcpy(out + 8, pk->kx, 32);
    memcpy(out + 40, pk->sign, 32);
    checksum(out + 72, out, 72);
}

fr_err
fri_pubfile_decode(fri_pubkeys *pk, const uint8_t *src, size_t src_len)
{
    uint8_t c[CHECK_LEN];
    if (src == NULL || src_len != FRI_PUBFILE_LEN ||
        memcmp(src, "FRPK", 4) != 0 || src[4] != 1 || src[5] != 0 ||
        fri_get16(src + 6) != 0) {
        return FR_EFORMAT;
    }
    checksum(c, src, 72);
    if (sodium_memcmp(c, src + 72, CHECK_LEN) != 0) {
        return FR_EFORMAT;
    }
    memcpy(pk->kx, src + 8, 32);
    memcpy(pk->sign, src + 40, 32);
    return FR_OK;
}

void
fri_pubkeys_hex(char out[FRI_PUBHEX_LEN + 1], const fri_pubkeys *pk)
{
    uint8_t b[64];
    memcpy(b, pk->kx, 32);
    memcpy(b + 32, pk->sign, 32);
    sodium_bin2hex(out, FRI_PUBHEX_LEN + 1, b, sizeof(b));
}

fr_err
fri_pubkeys_from_hex(fri_pubkeys *pk, const char *hex)
{
    uint8_t b[64];
    size_t  n = 0;
    if (hex == NULL || strlen(hex) != FRI_PUBHEX_LEN ||
        sodium_hex2bin(b, sizeof(b), hex, FRI_PUBHEX_LEN, NULL, &n, NULL) !=
            0 ||
        n != sizeof(b)) {
        return FR_EFORMAT;
    }
    memcpy(pk->kx, b, 32);
    memcpy(pk->sign, b + 32, 32);
    return FR_OK;
}

static fr_err
write_new(const char *path, const uint8_t *p, size_t n, mode_t mode,
          int force)
{
    if (force && unlink(path) != 0 && errno != ENOENT) {
        return FR_EIO;
    }
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, mode);
    if (fd < 0) {
        return FR_EIO;
    }
    // The umask may only have removed bits; make the mode exact.
    if (fchmod(fd, mode) != 0) {
        close(fd);
        unlink(path);
        return FR_EIO;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            close(fd);
            unlink(path);
            return FR_EIO;
        }
        off += (size_t) w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(path);
        return FR_EIO;
    }
    return FR_OK;
}

fr_err
fri_key_save(const char *prefix, const fri_identity *id, int force)
{
    char path[4096];
    if (prefix == NULL || strlen(prefix) + 5 > sizeof(path)) {
        return FR_EINVAL;
    }
    uint8_t key[FRI_KEYFILE_LEN];
    uint8_t pub[FRI_PUBFILE_LEN];
    fri_pubkeys pk;
    fri_identity_pub(&pk, id);
    fri_pubfile_encode(pub, &pk);
    fri_keyfile_encode(key, id->seed);
    snprintf(path, sizeof(path), "%s.key", prefix);
    if (!force && access(path, F_OK) == 0) {
        sodium_memzero(key, sizeof(key));
        errno = EEXIST;
        return FR_EIO;
    }
    char pubpath[4096];
    snprintf(pubpath, sizeof(pubpath), "%s.pub", prefix);
    if (!force && access(pubpath, F_OK) == 0) {
        sodium_memzero(key, sizeof(key));
        errno = EEXIST;
        return FR_EIO;
    }
    fr_err e = write_new(path, key, sizeof(key), 0600, force);
    sodium_memzero(key, sizeof(key));
    if (e != FR_OK) {
        return e;
    }
    e = write_new(pubpath, pub, sizeof(pub), 0644, force);
    if (e != FR_OK) {
        unlink(path);
    }
    return e;
}

// Reads a whole small file (at most cap bytes + 1 to detect longer ones).
static fr_err
read_small(const char *path, uint8_t *buf, size_t cap, size_t *len,
           int secret)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return FR_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return FR_EIO;
    }
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        close(fd);
        return FR_EDENIED; // group/world may read it: refuse
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap + 1 - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            close(fd);
            return FR_EIO;
        }
        if (r == 0) {
            break;
        }
        n += (size_t) r;
        if (n > cap) {
            break;
        }
    }
    close(fd);
    *len = n;
    return FR_OK;
}

fr_err
fri_key_load(fri_identity *id, const char *path)
{
    uint8_t buf[FRI_KEYFILE_LEN + 1];
    uint8_t seed[FRI_SEEDBYTES];
    size_t  n = 0;
    memset(id, 0, sizeof(*id));
    fr_err e = read_small(path, buf, FRI_KEYFILE_LEN, &n, 1);
    if (e == FR_OK) {
        e = fri_keyfile_decode(seed, buf, n);
    }
    if (e == FR_OK) {
        e = fri_identity_from_seed(id, seed);
    }
    sodium_memzero(buf, sizeof(buf));
    sodium_memzero(seed, sizeof(seed));
    return e;
}

fr_err
fri_pub_load(fri_pubkeys *pk, const char *path)
{
    uint8_t buf[FRI_PUBFILE_LEN + 1];
    size_t  n = 0;
    memset(pk, 0, sizeof(*pk));
    fr_err e = read_small(path, buf, FRI_PUBFILE_LEN, &n, 0);
    if (e != FR_OK) {
        return e;
    }
    return fri_pubfile_decode(pk, buf, n);
}
