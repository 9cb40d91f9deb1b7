// fedrec-sim's command line (sim/args.c): both value forms, clear
// messages for unknown flags and missing values, and every flag the usage
// text documents reaching the parser.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

static fr_err
parse(fri_sim_config *c, int *help, char *err, size_t cap, int argc,
    const char **argv)
{
    fri_sim_config_init(c);
    err[0] = '\0';
    return fri_sim_parse_args(c, argc, (char **)argv, help, err, cap);
}

Test(sim_args, equals_and_separate_values)
{
    fri_sim_config c;
    char           err[256];
    int            help = 0;
    const char    *a[]  = { "x", "--rounds=3", "--k", "12", "--json",
            "--transport=direct", "--state=/tmp/s" };
    cr_assert_eq(parse(&c, &help, err, sizeof(err), 7, a), FR_OK, "%s", err);
    cr_assert_eq(help, 0);
    cr_assert_eq(c.rounds, 3u);
    cr_assert(c.rounds_set);
    cr_assert_eq(c.k, 12u);
    cr_assert(c.json);
    cr_assert_eq(c.transport, FRI_SIM_DIRECT);
    cr_assert_str_eq(c.state_dir, "/tmp/s");
    // A value that looks like a flag is still the value.
    const char *b[] = { "x", "--out", "--json" };
    cr_assert_eq(parse(&c, &help, err, sizeof(err), 3, b), FR_OK, "%s", err);
    cr_assert_str_eq(c.out_dir, "--json");
    cr_assert_eq(c.json, 0);
}

#define EXPECT_BAD(msg, ...)                                                  \
    do {                                                                      \
        const char *v_[] = { "x", __VA_ARGS__ };                              \
        int         n_   = (int)(sizeof(v_) / sizeof(v_[0]));                 \
        fr_err      r_   = parse(&c, &help, err, sizeof(err), n_, v_);        \
        cr_assert_eq(r_, FR_EINVAL, "accepted: %s", v_[1]);                   \
        cr_assert(strstr(err, msg) != NULL, "'%s' lacks '%s'", err, msg);     \
    } while (0)

Test(sim_args, clear_messages)
{
    fri_sim_config c;
    char           err[256];
    int            help = 0;
    EXPECT_BAD("unknown option --bogus", "--bogus", "1");
    EXPECT_BAD("unknown option --bogus", "--bogus=1");
    // No abbreviations: --round is not --rounds.
    EXPECT_BAD("unknown option --round", "--round", "3");
    EXPECT_BAD("--rounds needs a value", "--k", "4", "--rounds");
    EXPECT_BAD("--json takes no value", "--json=1");
    EXPECT_BAD("--help takes no value", "--help=yes");
    EXPECT_BAD("unexpected argument 'stray'", "--k", "4", "stray");
    EXPECT_BAD("unexpected argument '-x'", "-x");
    EXPECT_BAD("unexpected argument '--'", "--k", "4", "--");
    EXPECT_BAD("--rounds: invalid value '0'", "--rounds=0");
    EXPECT_BAD("--k: invalid value ''", "--k=");
    const char *h[] = { "x", "-h" };
    cr_assert_eq(parse(&c, &help, err, sizeof(err), 2, h), FR_OK);
    cr_assert_eq(help, 1);
}

static void
check_flag(const char *name)
{
    fri_sim_config c;
    char           err[512];
    int            help   = 0;
    const char    *with[] = { "x", name, "1" };
    fr_err         rv     = parse(&c, &help, err, sizeof(err), 3, with);
    if (rv != FR_OK && strstr(err, "unexpected argument '1'") != NULL) {
        const char *alone[] = { "x", name }; // a switch
        rv                  = parse(&c, &help, err, sizeof(err), 2, alone);
    }
    cr_assert(rv == FR_OK || strstr(err, "unknown option") == NULL, "%s: %s",
        name, err);
}

// Every flag the usage text documents (a line starting "  --name", or a
// ", --name" alternative) is known to the parser; a value it refuses is
// fine, "unknown option" is not.
Test(sim_args, every_documented_flag_is_parsed)
{
    const char *text   = fri_sim_usage();
    int         n_seen = 0;
    const char *seps[] = { "\n  --", ", --" };
    for (size_t s = 0; s < 2; s++) {
        const char *p = text;
        while ((p = strstr(p, seps[s])) != NULL) {
            p += strlen(seps[s]);
            char   name[64];
            size_t nl = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
            cr_assert(nl > 0 && nl < sizeof(name) - 2);
            snprintf(name, sizeof(name), "--%.*s", (int)nl, p);
            if (strcmp(name, "--help") == 0) {
                continue;
            }
            check_flag(name);
            n_seen++;
        }
    }
    cr_assert_geq(n_seen, 45, "usage lists %d flags", n_seen);
}
