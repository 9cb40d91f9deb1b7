// JNI glue for org.fedrec.FedrecClient over the public API of
// fedrec/client.h. Each native method takes the fr_client handle as a
// jlong; the Java class serializes calls on one handle. A failing fr_*
// call becomes an org.fedrec.FedrecException carrying the code, its name
// and the handle's message; argument errors the C API would only report as
// FR_EINVAL (negative ids or counts) become IllegalArgumentException.
// Secrets passed in (state key, identity seed) are wiped from the C copies.
#include <jni.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fedrec/client.h"

static fr_client *
H(jlong h)
{
    return (fr_client *)(intptr_t)h;
}

static void
throw_class(JNIEnv *env, const char *cls, const char *msg)
{
    jclass k = (*env)->FindClass(env, cls);
    if (k != NULL) {
        (*env)->ThrowNew(env, k, msg);
    }
}

static void
throw_fr(JNIEnv *env, fr_err e, const char *msg)
{
    jclass k = (*env)->FindClass(env, "org/fedrec/FedrecException");
    if (k == NULL) {
        return;
    }
    jmethodID ctor = (*env)->GetMethodID(
        env, k, "<init>", "(ILjava/lang/String;Ljava/lang/String;)V");
    jstring name = (*env)->NewStringUTF(env, fr_errname(e));
    jstring text = (*env)->NewStringUTF(
        env, msg != NULL && *msg ? msg : fr_strerror(e));
    if (ctor == NULL || name == NULL || text == NULL) {
        return; // an OutOfMemoryError is pending
    }
    jobject ex = (*env)->NewObject(env, k, ctor, (jint)e, name, text);
    if (ex != NULL) {
        (*env)->Throw(env, (jthrowable)ex);
    }
}

// Throws for e != FR_OK with the handle's message; returns e.
static fr_err
check(JNIEnv *env, fr_client *c, fr_err e)
{
    if (e != FR_OK) {
        throw_fr(env, e, c != NULL ? fr_client_errmsg(c) : NULL);
    }
    return e;
}

static int
item_ok(JNIEnv *env, jint item)
{
    if (item < 0) {
        throw_class(env, "java/lang/IllegalArgumentException",
            "item ids are non-negative");
        return 0;
    }
    return 1;
}

// Copies a Java byte array of exactly len bytes into dst.
static int
get_bytes(JNIEnv *env, jbyteArray a, uint8_t *dst, size_t len)
{
    if ((size_t)(*env)->GetArrayLength(env, a) != len) {
        throw_class(env, "java/lang/IllegalArgumentException",
            "key of the wrong length");
        return 0;
    }
    (*env)->GetByteArrayRegion(env, a, 0, (jsize)len, (jbyte *)dst);
    return !(*env)->ExceptionCheck(env);
}

static jbyteArray
new_bytes(JNIEnv *env, const uint8_t *src, size_t len)
{
    jbyteArray a = (*env)->NewByteArray(env, (jsize)len);
    if (a != NULL) {
        (*env)->SetByteArrayRegion(env, a, 0, (jsize)len, (const jbyte *)src);
    }
    return a;
}

JNIEXPORT jstring JNICALL
Java_org_fedrec_FedrecClient_version(JNIEnv *env, jclass cls)
{
    (void)cls;
    return (*env)->NewStringUTF(env, fr_version_string());
}

JNIEXPORT jlong JNICALL
Java_org_fedrec_FedrecClient_nCreate(JNIEnv *env, jclass cls, jbyteArray pk,
    jstring state_path, jbyteArray state_key, jbyteArray identity, jlong seed,
    jdouble recency, jboolean verify_adverts, jdouble svdpp,
    jdouble transition)
{
    (void)cls;
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    fr_client  *c    = NULL;
    const char *path = NULL;
    int         ok   = get_bytes(env, pk, cfg.server_pk, sizeof cfg.server_pk);
    if (ok && state_key != NULL) {
        ok = get_bytes(env, state_key, cfg.state_key, sizeof cfg.state_key);
    }
    if (ok && identity != NULL) {
        ok = get_bytes(
            env, identity, cfg.identity_seed, sizeof cfg.identity_seed);
        cfg.has_identity = 1;
    }
    if (ok && state_path != NULL) {
        path = (*env)->GetStringUTFChars(env, state_path, NULL);
        ok   = path != NULL;
    }
    if (ok) {
        cfg.state_path = path;
        cfg.seed       = (uint64_t)seed;
        if (recency == recency) { // NaN: the library's default
            cfg.recency_half_life = recency;
        }
        cfg.verify_adverts = verify_adverts ? 1 : 0;
        if (svdpp == svdpp) { // NaN: the library's default
            cfg.svdpp_weight = svdpp;
        }
        if (transition == transition) {
            cfg.transition_weight = transition;
        }
        fr_err e       = fr_client_create(&c, &cfg);
        if (e != FR_OK) {
            char msg[160];
            snprintf(msg, sizeof msg,
                "cannot create the client: %s (state file: %s)",
                fr_strerror(e), path != NULL ? "given" : "none");
            c = NULL;
            throw_fr(env, e, msg);
        }
    }
    if (path != NULL) {
        (*env)->ReleaseStringUTFChars(env, state_path, path);
    }
    sodium_memzero(&cfg, sizeof cfg);
    return (jlong)(intptr_t)c;
}

JNIEXPORT void JNICALL
Java_org_fedrec_FedrecClient_nDestroy(JNIEnv *env, jclass cls, jlong h)
{
    (void)env;
    (void)cls;
    fr_client_destroy(H(h));
}

// PREFIX.pub (proto/SPEC.md §6): "FRPK", version 1, kind 0, reserved 0,
// the 64-byte key, BLAKE2b-128 of the first 72 bytes.
JNIEXPORT jbyteArray JNICALL
Java_org_fedrec_FedrecClient_nKeyFromFile(
    JNIEnv *env, jclass cls, jbyteArray file)
{
    (void)cls;
    uint8_t b[88], sum[16];
    if ((*env)->GetArrayLength(env, file) != (jsize)sizeof b) {
        throw_fr(env, FR_EFORMAT, "a public key file is 88 bytes");
        return NULL;
    }
    (*env)->GetByteArrayRegion(env, file, 0, (jsize)sizeof b, (jbyte *)b);
    if (memcmp(b, "FRPK", 4) != 0 || b[4] != 1 || b[5] != 0 || b[6] != 0
        || b[7] != 0) {
        throw_fr(env, FR_EFORMAT, "not a fedrec public key file");
        return NULL;
    }
    if (crypto_generichash(sum, sizeof sum, b, 72, NULL, 0) != 0
        || sodium_memcmp(sum, b + 72, sizeof sum) != 0) {
        throw_fr(env, FR_EFORMAT, "public key file checksum mismatch");
        return NULL;
    }
    return new_bytes(env, b + 8, FR_PUBLICKEYBYTES);
}

JNIEXPORT jbyteArray JNICALL
Java_org_fedrec_FedrecClient_nPublicKey(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    uint8_t pk[FR_PUBLICKEYBYTES];
    fr_client_public_key(H(h), pk);
    return new_bytes(env, pk, sizeof pk);
}

JNIEXPORT void JNICALL
Java_org_fedrec_FedrecClient_nAdd(
    JNIEnv *env, jclass cls, jlong h, jint item, jfloat value, jlong ts)
{
    (void)cls;
    if (item_ok(env, item)) {
        check(env, H(h),
            fr_client_add(H(h), (uint32_t)item, value, (int64_t)ts));
    }
}

JNIEXPORT void JNICALL
Java_org_fedrec_FedrecClient_nRemove(
    JNIEnv *env, jclass cls, jlong h, jint item)
{
    (void)cls;
    if (item_ok(env, item)) {
        check(env, H(h), fr_client_remove(H(h), (uint32_t)item));
    }
}

JNIEXPORT jlong JNICALL
Java_org_fedrec_FedrecClient_nCount(JNIEnv *env, jclass cls, jlong h)
{
    (void)env;
    (void)cls;
    return (jlong)fr_client_count(H(h));
}

JNIEXPORT void JNICALL
Java_org_fedrec_FedrecClient_nSave(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    check(env, H(h), fr_client_save(H(h)));
}

JNIEXPORT void JNICALL
Java_org_fedrec_FedrecClient_nFoldIn(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    check(env, H(h), fr_client_fold_in(H(h)));
}

JNIEXPORT jfloat JNICALL
Java_org_fedrec_FedrecClient_nPredict(
    JNIEnv *env, jclass cls, jlong h, jint item)
{
    (void)cls;
    float s = 0.0f;
    if (item_ok(env, item)) {
        check(env, H(h), fr_client_predict(H(h), (uint32_t)item, &s));
    }
    return s;
}

// A Ranked of the first n entries of items/scores.
static jobject
new_ranked(JNIEnv *env, const uint32_t *items, const float *scores, size_t n)
{
    jclass k = (*env)->FindClass(env, "org/fedrec/Ranked");
    if (k == NULL) {
        return NULL;
    }
    jmethodID   ctor = (*env)->GetMethodID(env, k, "<init>", "([I[F)V");
    jintArray   ia   = (*env)->NewIntArray(env, (jsize)n);
    jfloatArray fa   = (*env)->NewFloatArray(env, (jsize)n);
    if (ctor == NULL || ia == NULL || fa == NULL) {
        return NULL;
    }
    // uint32 ids below the catalog bound (< 2^31 in any model a device
    // accepts: max_items <= 2^24 by default) fit a jint.
    (*env)->SetIntArrayRegion(env, ia, 0, (jsize)n, (const jint *)items);
    (*env)->SetFloatArrayRegion(env, fa, 0, (jsize)n, scores);
    return (*env)->NewObject(env, k, ctor, ia, fa);
}

// Runs a ranking call into n-entry scratch arrays; explain_item < 0 means
// recommend (with lambda), else explain that item.
static jobject
ranked_call(JNIEnv *env, fr_client *c, float lambda, jint explain_item, jint n)
{
    size_t    cap    = n > 0 ? (size_t)n : 1;
    uint32_t *items  = malloc(cap * sizeof *items);
    float    *scores = malloc(cap * sizeof *scores);
    jobject   out    = NULL;
    size_t    got    = 0;
    if (items == NULL || scores == NULL) {
        throw_fr(env, FR_ENOMEM, "out of memory");
    } else {
        fr_err e = explain_item >= 0 ? fr_client_explain(c,
                       (uint32_t)explain_item, items, scores, (size_t)n, &got)
                                     : fr_client_recommend_diverse(c, lambda,
                                         items, scores, (size_t)n, &got);
        if (check(env, c, e) == FR_OK) {
            out = new_ranked(env, items, scores, got);
        }
    }
    free(items);
    free(scores);
    return out;
}

JNIEXPORT jobject JNICALL
Java_org_fedrec_FedrecClient_nRecommend(
    JNIEnv *env, jclass cls, jlong h, jfloat lambda, jint n)
{
    (void)cls;
    return ranked_call(env, H(h), lambda, -1, n);
}

JNIEXPORT jobject JNICALL
Java_org_fedrec_FedrecClient_nExplain(
    JNIEnv *env, jclass cls, jlong h, jint item, jint n)
{
    (void)cls;
    if (!item_ok(env, item)) {
        return NULL;
    }
    return ranked_call(env, H(h), 1.0f, item, n);
}

static jobject
info_of(JNIEnv *env, fr_client *c)
{
    fr_checkin_info ci;
    fr_client_checkin_info_get(c, &ci);
    jclass k = (*env)->FindClass(env, "org/fedrec/CheckinInfo");
    if (k == NULL) {
        return NULL;
    }
    jmethodID ctor = (*env)->GetMethodID(env, k, "<init>", "(IJJIJJ)V");
    if (ctor == NULL) {
        return NULL;
    }
    return (*env)->NewObject(env, k, ctor, (jint)ci.status, (jlong)ci.round,
        (jlong)ci.model_version, (jint)ci.retry_after_ms, (jlong)ci.bytes_up,
        (jlong)ci.bytes_down);
}

JNIEXPORT jobject JNICALL
Java_org_fedrec_FedrecClient_nCheckinNng(
    JNIEnv *env, jclass cls, jlong h, jstring url, jint timeout_ms)
{
    (void)cls;
    const char *u = (*env)->GetStringUTFChars(env, url, NULL);
    if (u == NULL) {
        return NULL;
    }
    fr_err e = fr_client_checkin_nng(H(h), u, (int)timeout_ms);
    (*env)->ReleaseStringUTFChars(env, url, u);
    if (check(env, H(h), e) != FR_OK) {
        return NULL;
    }
    return info_of(env, H(h));
}

JNIEXPORT jobject JNICALL
Java_org_fedrec_FedrecClient_nCheckinInfo(JNIEnv *env, jclass cls, jlong h)
{
    (void)cls;
    return info_of(env, H(h));
}

JNIEXPORT void JNICALL
Java_org_fedrec_FedrecClient_nCheckinBegin(JNIEnv *env, jclass cls, jlong h,
                                           jlong now_ms, jboolean model_only)
{
    (void) cls;
    check(env, H(h),
          model_only ? fr_client_model_begin(H(h), (uint64_t) now_ms)
                     : fr_client_checkin_begin(H(h), (uint64_t) now_ms));
}

// The next request, sized by fr_client_request_bound (grown on the
// recoverable FR_ENOSPC); NULL when there is none now.
JNIEXPORT jbyteArray JNICALL
Java_org_fedrec_FedrecClient_nPoll(JNIEnv *env, jclass cls, jlong h)
{
    (void) cls;
    size_t   cap = fr_client_request_bound(H(h));
    uint8_t *buf = NULL;
    size_t   len = 0;
    fr_err   e   = FR_ENOSPC;
    for (int tries = 0; e == FR_ENOSPC && tries < 8; tries++, cap *= 2) {
        uint8_t *nb = realloc(buf, cap > 0 ? cap : 1);
        if (nb == NULL) {
            free(buf);
            throw_fr(env, FR_ENOMEM, "out of memory");
            return NULL;
        }
        buf = nb;
        e   = fr_client_poll(H(h), buf, cap, &len);
    }
    jbyteArray out = NULL;
    if (check(env, H(h), e) == FR_OK && len > 0) {
        out = new_bytes(env, buf, len);
    }
    free(buf);
    return out;
}

JNIEXPORT void JNICALL
Java_org_fedrec_FedrecClient_nReceive(JNIEnv *env, jclass cls, jlong h,
                                      jbyteArray reply)
{
    (void) cls;
    jsize    n   = (*env)->GetArrayLength(env, reply);
    uint8_t *buf = malloc(n > 0 ? (size_t) n : 1);
    if (buf == NULL) {
        throw_fr(env, FR_ENOMEM, "out of memory");
        return;
    }
    (*env)->GetByteArrayRegion(env, reply, 0, n, (jbyte *) buf);
    if (!(*env)->ExceptionCheck(env)) {
        check(env, H(h), fr_client_receive(H(h), buf, (size_t) n));
    }
    free(buf);
}
