#include "fedrec/err.h"

const char *
fr_strerror(fr_err e)
{
    switch (e) {
#define FR_ERR_STR_(n, v, s)                                                \
    case FR_##n:                                                            \
        return s;
        FR_ERR_MAP(FR_ERR_STR_)
#undef FR_ERR_STR_
    }
    return "unknown error";
}

const char *
fr_errname(fr_err e)
{
    switch (e) {
#define FR_ERR_NAME_(n, v, s)                                               \
    case FR_##n:                                                            \
        return "FR_" #n;
        FR_ERR_MAP(FR_ERR_NAME_)
#undef FR_ERR_NAME_
    }
    return "FR_UNKNOWN";
}
