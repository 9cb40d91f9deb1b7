// fedrec error codes, shared by every fedrec library and tool.
//
// Codes are stable: a value is never reused or renumbered, new codes are
// appended. fr_strerror() returns a static string for every value, including
// unknown ones, and never NULL.
#ifndef FEDREC_ERR_H
#define FEDREC_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define FR_NODISCARD __attribute__((warn_unused_result))
#define FR_API __attribute__((visibility("default")))
#else
#define FR_NODISCARD
#define FR_API
#endif

#define FR_ERR_MAP(X)                                                         \
    X(OK, 0, "no error")                                                      \
    X(ENOMEM, 1, "out of memory")                                             \
    X(EINVAL, 2, "invalid argument")                                          \
    X(ENOSPC, 3, "output buffer too small")                                   \
    X(EPROTO, 4, "malformed message")                                         \
    X(EVERSION, 5, "unsupported protocol version")                            \
    X(ECRYPTO, 6, "authentication failed")                                    \
    X(ESTATE, 7, "operation not valid in this state")                         \
    X(ENOENT, 8, "unknown user or item")                                      \
    X(ENET, 9, "transport error")                                             \
    X(EINTERNAL, 10, "internal error")                                        \
    X(EIO, 11, "file input/output error")                                     \
    X(EFORMAT, 12, "malformed input data")                                    \
    X(ETIMEDOUT, 13, "timed out")                                             \
    X(EREPLAY, 14, "replayed or reordered message")                           \
    X(ELATE, 15, "update for a round that is closed")                         \
    X(EDUP, 16, "duplicate update")                                           \
    X(EDENIED, 17, "peer not allowed")                                        \
    X(ETOOBIG, 18, "size limit exceeded")                                     \
    X(ECLOSED, 19, "closed")                                                  \
    X(ESTALE, 20, "update computed on a model too many versions old")         \
    X(ERESYNC, 21, "contribution out of step with the aggregator's record")

typedef enum fr_err {
#define FR_ERR_ENUM_(n, v, s) FR_##n = v,
    FR_ERR_MAP(FR_ERR_ENUM_)
#undef FR_ERR_ENUM_
} fr_err;

// Returns a static, human-readable description of e. Never NULL.
FR_API const char *fr_strerror(fr_err e);

// Returns the symbolic name of e ("FR_EPROTO"), or "FR_UNKNOWN".
FR_API const char *fr_errname(fr_err e);

#ifdef __cplusplus
}
#endif
#endif // FEDREC_ERR_H
