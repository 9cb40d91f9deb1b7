// Identities, key files (R30) and fedrec-keygen.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keys.h"
#include "samples.h"

static char dir[256];

static void
mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fr_keys_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void
rm_tmp(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(proto_keys, derivation_is_deterministic_and_separated)
{
    fri_identity a, b;
    sample_identity(&a, 5);
    sample_identity(&b, 5);
    cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
    cr_assert_neq(memcmp(a.kx_pk, a.sign_pk, 32), 0);
    cr_assert_neq(memcmp(a.kx_sk, a.seed, 32), 0);
    sample_identity(&b, 6);
    cr_assert_neq(memcmp(a.kx_pk, b.kx_pk, 32), 0);
    fri_identity_wipe(&a);
    uint8_t zero[sizeof(a)];
    memset(zero, 0, sizeof(zero));
    cr_assert_eq(memcmp(&a, zero, sizeof(a)), 0);
    fri_identity_wipe(&b);
}

Test(proto_keys, R30_keyfile_format_errors)
{
    uint8_t seed[32] = { 1, 2, 3 }, f[FRI_KEYFILE_LEN], out[32];
    fri_keyfile_encode(f, seed);
    cr_assert_eq(fri_keyfile_decode(out, f, sizeof(f)), FR_OK);
    cr_assert_eq(fri_keyfile_decode(out, f, sizeof(f) - 1), FR_EFORMAT);
    for (size_t i = 0; i < sizeof(f); i++) {
        f[i] ^= 0x10;
        cr_assert_eq(fri_keyfile_decode(out, f, sizeof(f)), FR_EFORMAT,
                     "byte %zu", i);
        f[i] ^= 0x10;
    }
    fri_pubkeys pk, pk2;
    uint8_t     p[FRI_PUBFILE_LEN];
    memset(&pk, 7, sizeof(pk));
    fri_pubfile_encode(p, &pk);
    cr_assert_eq(fri_pubfile_decode(&pk2, p, sizeof(p)), FR_OK);
    p[50] ^= 1;
    cr_assert_eq(fri_pubfile_decode(&pk2, p, sizeof(p)), FR_EFORMAT);
    char hex[FRI_PUBHEX_LEN + 1];
    fri_pubkeys_hex(hex, &pk);
    cr_assert_eq(fri_pubkeys_from_hex(&pk2, hex), FR_OK);
    cr_assert_eq(memcmp(&pk, &pk2, sizeof(pk)), 0);
    hex[5] = 'x';
    cr_assert_eq(fri_pubkeys_from_hex(&pk2, hex), FR_EFORMAT);
}

Test(proto_keys, save_load_modes_and_overwrite)
{
    mkdir_tmp();
    char prefix[300], path[320];
    snprintf(prefix, sizeof(prefix), "%s/agg", dir);
    fri_identity id, back;
    cr_assert_eq(fri_identity_generate(&id), FR_OK);
    umask(0); // the 0600 must not depend on the umask
    cr_assert_eq(fri_key_save(prefix, &id, 0), FR_OK);
    umask(022);
    struct stat st;
    snprintf(path, sizeof(path), "%s.key", prefix);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(st.st_size, FRI_KEYFILE_LEN);
    cr_assert_eq(fri_key_load(&back, path), FR_OK);
    cr_assert_eq(memcmp(&back, &id, sizeof(id)), 0);
    // Refuses to overwrite, unless forced.
    cr_assert_eq(fri_key_save(prefix, &id, 0), FR_EIO);
    fri_identity id2;
    cr_assert_eq(fri_identity_generate(&id2), FR_OK);
    cr_assert_eq(fri_key_save(prefix, &id2, 1), FR_OK);
    cr_assert_eq(fri_key_load(&back, path), FR_OK);
    cr_assert_eq(memcmp(back.kx_pk, id2.kx_pk, 32), 0);
    // R30: group/world-readable key refused.
    cr_assert_eq(chmod(path, 0640), 0);
    cr_assert_eq(fri_key_load(&back, path), FR_EDENIED);
    cr_assert_eq(chmod(path, 0604), 0);
    cr_assert_eq(fri_key_load(&back, path), FR_EDENIED);
    cr_assert_eq(chmod(path, 0600), 0);
    // Truncated file.
    cr_assert_eq(truncate(path, 40), 0);
    cr_assert_eq(fri_key_load(&back, path), FR_EFORMAT);
    snprintf(path, sizeof(path), "%s.pub", prefix);
    fri_pubkeys pk;
    cr_assert_eq(fri_pub_load(&pk, path), FR_OK);
    cr_assert_eq(memcmp(pk.sign, id2.sign_pk, 32), 0);
    cr_assert_eq(fri_key_load(&back, "/nonexistent/x.key"), FR_EIO);
    fri_identity_wipe(&id);
    fri_identity_wipe(&id2);
    fri_identity_wipe(&back);
    rm_tmp();
}

static int
run(const char *cmd)
{
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "%s did not exit", cmd);
    return WEXITSTATUS(st);
}

Test(proto_keys, keygen_tool_writes_0600_and_refuses_overwrite)
{
    const char *bin = getenv("FR_BIN_DIR");
    cr_assert_not_null(bin, "FR_BIN_DIR (build/bin) is not set");
    mkdir_tmp();
    char cmd[1024], path[320];
    snprintf(cmd, sizeof(cmd), FR_TEST_RUN "'%s/fedrec-keygen' --out '%s/c1' >/dev/null",
             bin, dir);
    cr_assert_eq(run(cmd), 0, "%s", cmd);
    snprintf(path, sizeof(path), "%s/c1.key", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    uint8_t      before[FRI_KEYFILE_LEN];
    FILE        *f = fopen(path, "rb");
    cr_assert_eq(fread(before, 1, sizeof(before), f), sizeof(before));
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             FR_TEST_RUN "'%s/fedrec-keygen' --out '%s/c1' >/dev/null 2>&1", bin, dir);
    cr_assert_eq(run(cmd), 1);
    uint8_t after[FRI_KEYFILE_LEN];
    f = fopen(path, "rb");
    cr_assert_eq(fread(after, 1, sizeof(after), f), sizeof(after));
    fclose(f);
    cr_assert_eq(memcmp(before, after, sizeof(after)), 0, "key replaced");
    snprintf(cmd, sizeof(cmd),
             FR_TEST_RUN "'%s/fedrec-keygen' --out '%s/c1' --force >/dev/null", bin, dir);
    cr_assert_eq(run(cmd), 0);
    fri_identity id;
    cr_assert_eq(fri_key_load(&id, path), FR_OK);
    cr_assert_neq(memcmp(id.seed, before + 8, 32), 0);
    fri_identity_wipe(&id);
    snprintf(cmd, sizeof(cmd), FR_TEST_RUN "'%s/fedrec-keygen' >/dev/null 2>&1", bin);
    cr_assert_eq(run(cmd), 2); // usage
    rm_tmp();
}
