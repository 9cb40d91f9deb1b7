#include <criterion/criterion.h>
#include <string.h>

#include "fedrec/err.h"

Test(common_err, every_code_has_a_message_and_name)
{
    for (int e = 0; e <= FR_ERESYNC; e++) {
        cr_assert_not_null(fr_strerror((fr_err) e));
        cr_assert_neq(strcmp(fr_strerror((fr_err) e), "unknown error"), 0);
        cr_assert_neq(strcmp(fr_errname((fr_err) e), "FR_UNKNOWN"), 0);
    }
}

Test(common_err, unknown_code_is_static_text)
{
    cr_assert_str_eq(fr_strerror((fr_err) 9999), "unknown error");
    cr_assert_str_eq(fr_errname((fr_err) 9999), "FR_UNKNOWN");
    cr_assert_str_eq(fr_errname(FR_EPROTO), "FR_EPROTO");
}
