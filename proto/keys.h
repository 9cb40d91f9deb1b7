// Long-term identities and key files (SPEC.md §7).
//
// One 32-byte secret seed per identity. Both key pairs are derived from it
// with crypto_kdf (BLAKE2b, context "fedrecid"): subkey 1 seeds the X25519
// pair used by the handshake (crypto_kx_seed_keypair), subkey 2 the Ed25519
// pair that signs models (crypto_sign_seed_keypair). A peer pins the two
// public keys (fri_pubkeys).
#ifndef FR_PROTO_KEYS_H
#define FR_PROTO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

#define FRI_SEEDBYTES 32
#define FRI_PKBYTES 32
#define FRI_KEYFILE_LEN 56 // "FRSK" u8 1 u8 1 u16 0 seed[32] check[16]
#define FRI_PUBFILE_LEN 88 // "FRPK" u8 1 u8 0 u16 0 kx[32] sign[32] chk[16]
#define FRI_PUBHEX_LEN 128 // hex of kx || sign, without NUL

typedef struct fri_identity {
    uint8_t seed[FRI_SEEDBYTES];
    uint8_t kx_pk[32];
    uint8_t kx_sk[32];
    uint8_t sign_pk[32];
    uint8_t sign_sk[64];
} fri_identity;

typedef struct fri_pubkeys {
    uint8_t kx[FRI_PKBYTES];   // X25519, pinned for the handshake
    uint8_t sign[FRI_PKBYTES]; // Ed25519, verifies MODEL signatures
} fri_pubkeys;

// Derives both key pairs from seed. FR_EINTERNAL if libsodium fails.
FR_NODISCARD fr_err fri_identity_from_seed(fri_identity *id,
                                           const uint8_t seed[FRI_SEEDBYTES]);
// Fresh random identity.
FR_NODISCARD fr_err fri_identity_generate(fri_identity *id);
// Wipes every secret in id (sodium_memzero).
void fri_identity_wipe(fri_identity *id);
void fri_identity_pub(fri_pubkeys *out, const fri_identity *id);

// In-memory file images. Decoders: FR_EFORMAT on wrong length, magic,
// version, reserved bytes or checksum.
void fri_keyfile_encode(uint8_t out[FRI_KEYFILE_LEN],
                        const uint8_t seed[FRI_SEEDBYTES]);
FR_NODISCARD fr_err fri_keyfile_decode(uint8_t seed[FRI_SEEDBYTES],
                                       const uint8_t *src, size_t src_len);
void fri_pubfile_encode(uint8_t out[FRI_PUBFILE_LEN], const fri_pubkeys *pk);
FR_NODISCARD fr_err fri_pubfile_decode(fri_pubkeys *pk, const uint8_t *src,
                                       size_t src_len);
// Hex text of kx || sign (128 chars + NUL) and back (FR_EFORMAT).
void fri_pubkeys_hex(char out[FRI_PUBHEX_LEN + 1], const fri_pubkeys *pk);
FR_NODISCARD fr_err fri_pubkeys_from_hex(fri_pubkeys *pk, const char *hex);

// Writes PREFIX.key (mode 0600, created with O_CREAT|O_EXCL) and
// PREFIX.pub (0644). An existing file is an error (FR_EIO, errno EEXIST)
// unless force != 0, in which case it is unlinked first. FR_EINVAL if the
// prefix is too long. Secret buffers are wiped.
FR_NODISCARD fr_err fri_key_save(const char *prefix, const fri_identity *id,
                                 int force);
// Loads a secret key file: FR_EIO (cannot open/read), FR_EDENIED (group or
// world may read or write it), FR_EFORMAT (length/format/checksum).
FR_NODISCARD fr_err fri_key_load(fri_identity *id, const char *path);
// Loads a public key file: FR_EIO or FR_EFORMAT.
FR_NODISCARD fr_err fri_pub_load(fri_pubkeys *pk, const char *path);

#endif
