// The library's version, from the generated fedrec/version.h.
#include "fedrec/common.h"

unsigned
fr_version(void)
{
    return FR_VERSION_NUMBER;
}

const char *
fr_version_string(void)
{
    return FR_VERSION_STRING;
}
