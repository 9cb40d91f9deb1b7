// Per-group metrics of fedrec-sim (--users, sim/userattr.h): the u.user
// reader takes MovieLens lines, refuses malformed ones with "path:line:
// what", and the summary's gender and age groups partition the evaluation
// users with an RMSE between the groups'.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"
#include "userattr.h"

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
}

Test(sim_groups, user_attributes_read_and_refused)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/fr-uuser-%d", (int) getpid());
    fri_idmap *m = NULL;
    cr_assert_eq(fri_idmap_create(&m), FR_OK);
    uint32_t u;
    for (int64_t id = 1; id <= 3; id++) {
        cr_assert_eq(fri_idmap_get(m, id * 10, 1, &u), FR_OK);
    }
    uint8_t g[3], a[3];
    char    err[256];
    // User 30 has no line; 99 has no ratings (skipped).
    write_file(path, "10|24|M|student|85711\r\n20|53|F|other|94043\n"
                     "\n99|33|M|writer|32067\n");
    cr_assert_eq(fri_user_attrs_load(path, m, 3, g, a, err, sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(g[0], FRI_GENDER_M);
    cr_assert_eq(a[0], 0);
    cr_assert_eq(g[1], FRI_GENDER_F);
    cr_assert_eq(a[1], 3);
    cr_assert_eq(g[2], FRI_ATTR_UNKNOWN);
    cr_assert_eq(a[2], FRI_ATTR_UNKNOWN);
    cr_assert_eq(fri_age_band(34), 1);
    cr_assert_eq(fri_age_band(35), 2);
    struct {
        const char *text, *why;
    } bad[] = {{"10|24\n", "expected id|age|gender"},
               {"x|24|M|a|b\n", "bad user id"},
               {"10|0|M|a|b\n", "bad age"},
               {"10|24|X|a|b\n", "gender"},
               {"10|24|M|a|b\n10|25|M|a|b\n", "twice"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(path, bad[i].text);
        err[0] = '\0';
        cr_assert_eq(fri_user_attrs_load(path, m, 3, g, a, err, sizeof(err)),
                     FR_EFORMAT, "case %zu", i);
        cr_assert(strstr(err, bad[i].why) != NULL, "case %zu: '%s'", i, err);
        cr_assert(strncmp(err, path, strlen(path)) == 0, "'%s'", err);
        cr_assert_eq(g[0], FRI_ATTR_UNKNOWN, "case %zu left attributes", i);
    }
    cr_assert_eq(fri_user_attrs_load("/nonexistent/u.user", m, 3, g, a, err,
                                     sizeof(err)),
                 FR_EIO);
    unlink(path);
    fri_idmap_destroy(m);
}

// A small population written as files: 60 users (every third female, ages
// across the four bands), 40 items; each user rates 12 items.
Test(sim_groups, summary_groups_partition_the_evaluation_users)
{
    char tr[64], te[64], us[64];
    int  pid = (int) getpid();
    snprintf(tr, sizeof(tr), "/tmp/fr-grp-train-%d", pid);
    snprintf(te, sizeof(te), "/tmp/fr-grp-test-%d", pid);
    snprintf(us, sizeof(us), "/tmp/fr-grp-users-%d", pid);
    FILE *ft = fopen(tr, "w"), *fe = fopen(te, "w"), *fu = fopen(us, "w");
    cr_assert(ft != NULL && fe != NULL && fu != NULL);
    for (int u = 1; u <= 60; u++) {
        for (int j = 0; j < 12; j++) {
            int item = 1 + (u * 7 + j * 3) % 40;
            int r    = 1 + (u + item) % 5;
            fprintf(j < 9 ? ft : fe, "%d\t%d\t%d\t%d\n", u, item, r, 1000 + j);
        }
        fprintf(fu, "%d|%d|%s|other|00000\n", u, 18 + (u * 13) % 50,
                u % 3 == 0 ? "F" : "M");
    }
    cr_assert_eq(fclose(ft) | fclose(fe) | fclose(fu), 0);
    fri_sim_config c;
    fri_sim_config_init(&c);
    c.train_path = tr;
    c.test_path  = te;
    c.users_path = us;
    c.synthetic  = 0;
    c.rounds     = 2;
    c.threads    = 1;
    c.reference  = 0;
    c.progress   = 0;
    c.transport  = FRI_SIM_DIRECT;
    fri_sim_pop pop;
    char        err[512] = "";
    cr_assert_eq(fri_sim_pop_load(&pop, &c, err, sizeof(err)), FR_OK, "%s",
                 err);
    fri_sim_round   rounds[2];
    fri_sim_summary s;
    uint8_t         hash[32];
    fr_err e = fri_sim_run(&c, &pop, rounds, &s, hash, NULL, NULL, err,
                           sizeof(err));
    fri_sim_pop_free(&pop);
    cr_assert_eq(e, FR_OK, "%s", err);
    const fri_sim_round *r = &s.last;
    cr_assert(r->eval_users > 0);
    uint32_t gsum = r->grp_users[FRI_SIM_GRP_FEMALE] +
                    r->grp_users[FRI_SIM_GRP_FEMALE + 1];
    uint32_t asum = 0;
    for (int b = 0; b < FRI_AGE_N; b++) {
        asum += r->grp_users[FRI_SIM_GRP_AGE + b];
        cr_assert(r->grp_users[FRI_SIM_GRP_AGE + b] > 0, "age band %d empty",
                  b);
    }
    cr_assert_eq(gsum, r->eval_users);
    cr_assert_eq(asum, r->eval_users);
    double lo = fmin(r->grp_rmse[FRI_SIM_GRP_FEMALE],
                     r->grp_rmse[FRI_SIM_GRP_FEMALE + 1]);
    double hi = fmax(r->grp_rmse[FRI_SIM_GRP_FEMALE],
                     r->grp_rmse[FRI_SIM_GRP_FEMALE + 1]);
    cr_assert(r->rmse >= lo - 1e-12 && r->rmse <= hi + 1e-12,
              "%g outside [%g, %g]", r->rmse, lo, hi);
    unlink(tr);
    unlink(te);
    unlink(us);
}
