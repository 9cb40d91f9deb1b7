#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset.h"

// Parses buf (a string) with fresh maps; the caller frees via teardown.
static fri_idmap  *U, *I;
static fri_dataset D;
static char        ERR[512];

static void
setup(void)
{
    cr_assert_eq(fri_idmap_create(&U), FR_OK);
    cr_assert_eq(fri_idmap_create(&I), FR_OK);
    memset(&D, 0, sizeof(D));
    ERR[0] = '\0';
}

static void
teardown(void)
{
    fri_dataset_free(&D);
    fri_idmap_destroy(U);
    fri_idmap_destroy(I);
}

static fr_err
parse_opts(const char *s, const fri_load_opts *o)
{
    return fri_dataset_parse(
        &D, "mem.txt", s, strlen(s), U, I, o, ERR, sizeof(ERR));
}

static fr_err
parse(const char *s)
{
    return parse_opts(s, NULL);
}

static void
expect(size_t i, int64_t u, int64_t it, float r, int64_t ts)
{
    cr_assert_lt(i, D.n);
    cr_assert_eq(fri_idmap_ext(U, D.r[i].user), u, "row %zu user", i);
    cr_assert_eq(fri_idmap_ext(I, D.r[i].item), it, "row %zu item", i);
    cr_assert_float_eq(D.r[i].rating, r, 1e-6, "row %zu rating", i);
    cr_assert_eq(D.r[i].ts, ts, "row %zu ts", i);
}

// Expects failure code e and a message naming mem.txt and the line.
static void
expect_fail(const char *s, fr_err e, int line)
{
    fr_err got = parse(s);
    cr_assert_eq(
        got, e, "want %s, got %s (%s)", fr_errname(e), fr_errname(got), ERR);
    char want[64];
    snprintf(want, sizeof(want), "mem.txt:%d: ", line);
    cr_assert(strstr(ERR, want) == ERR, "message '%s' lacks '%s'", ERR, want);
    cr_assert_eq(D.n, 0);
    cr_assert_null(D.r);
    cr_assert_eq(fri_idmap_size(U), 0, "user map not restored");
    cr_assert_eq(fri_idmap_size(I), 0, "item map not restored");
}

TestSuite(common_dataset, .init = setup, .fini = teardown);

Test(common_dataset, idmap_roundtrip_and_growth)
{
    uint32_t idx;
    cr_assert_eq(fri_idmap_get(U, 7, 0, &idx), FR_ENOENT);
    for (int64_t k = 0; k < 100000; k++) {
        cr_assert_eq(fri_idmap_get(U, k * 1000003 - 5, 1, &idx), FR_OK);
        cr_assert_eq(idx, (uint32_t)k);
    }
    cr_assert_eq(fri_idmap_size(U), 100000);
    for (int64_t k = 0; k < 100000; k += 7) {
        cr_assert_eq(fri_idmap_get(U, k * 1000003 - 5, 0, &idx), FR_OK);
        cr_assert_eq(idx, (uint32_t)k);
        cr_assert_eq(fri_idmap_ext(U, idx), k * 1000003 - 5);
    }
    cr_assert_eq(fri_idmap_ext(U, 100000), -1);
}

Test(common_dataset, ml100k_tab)
{
    cr_assert_eq(parse("196\t242\t3\t881250949\n186\t302\t3.5\t891717742\n"
                       "196\t302\t1\t7\n"),
        FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 3);
    cr_assert_eq(D.n_users, 2);
    cr_assert_eq(D.n_items, 2);
    expect(0, 196, 242, 3, 881250949);
    expect(1, 186, 302, 3.5f, 891717742);
    expect(2, 196, 302, 1, 7);
    cr_assert_eq(D.r[0].user, 0);
    cr_assert_eq(D.r[2].user, 0);
    cr_assert_eq(D.r[2].item, 1);
}

Test(common_dataset, ml1m_colons_crlf)
{
    cr_assert_eq(parse("1::1193::5::978300760\r\n1::661::3::978302109\r\n"
                       "2::1193::4::978298413"),
        FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 3);
    expect(0, 1, 1193, 5, 978300760);
    expect(1, 1, 661, 3, 978302109);
    expect(2, 2, 1193, 4, 978298413);
    cr_assert_eq(D.n_users, 2);
    cr_assert_eq(D.n_items, 2);
}

Test(common_dataset, csv_header_ml_latest)
{
    cr_assert_eq(parse("userId,movieId,rating,timestamp\r\n"
                       "1,1,4.0,964982703\r\n1,3,4.0,964981247\r\n"
                       "5,1,0.5,847434962\r\n"),
        FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 3);
    expect(0, 1, 1, 4, 964982703);
    expect(2, 5, 1, 0.5f, 847434962);
}

Test(common_dataset, csv_without_timestamp_or_header)
{
    cr_assert_eq(
        parse("user,item,rating\n10,20,2\n11,20,3\n"), FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 2);
    expect(1, 11, 20, 3, 0);
    fri_dataset_free(&D);
    cr_assert_eq(parse("12,21,2,5\n"), FR_OK, "%s", ERR);
    expect(0, 12, 21, 2, 5);
}

Test(common_dataset, whitespace_with_blank_lines)
{
    cr_assert_eq(parse("\n  3 4 5\n\n3\t 9   1.5  \n   \n"), FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 2);
    expect(0, 3, 4, 5, 0);
    expect(1, 3, 9, 1.5f, 0);
    cr_assert_eq(D.n_users, 1);
    fri_dataset_free(&D);
    cr_assert_eq(parse("007 08 0004.50\n"), FR_OK, "%s", ERR);
    expect(0, 7, 8, 4.5f, 0);
}

Test(common_dataset, duplicates_keep_last)
{
    cr_assert_eq(parse("1 1 1 10\n2 1 2 11\n1 1 5 12\n1 2 3 13\n1 1 4 14\n"),
        FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 3);
    expect(0, 2, 1, 2, 11);
    expect(1, 1, 2, 3, 13);
    expect(2, 1, 1, 4, 14);
}

Test(common_dataset, maps_shared_across_files)
{
    cr_assert_eq(parse("5 50 1\n6 60 2\n"), FR_OK, "%s", ERR);
    fri_dataset d2;
    cr_assert_eq(fri_dataset_parse(&d2, "b", "6 50 3\n7 70 4\n", 14, U, I,
                     NULL, ERR, sizeof(ERR)),
        FR_OK, "%s", ERR);
    cr_assert_eq(d2.n, 2);
    cr_assert_eq(d2.r[0].user, D.r[1].user);
    cr_assert_eq(d2.r[0].item, D.r[0].item);
    cr_assert_eq(d2.r[1].user, 2);
    cr_assert_eq(d2.n_users, 3);
    cr_assert_eq(d2.n_items, 3);
    // A failing third file leaves the maps as they were.
    fri_dataset d3;
    cr_assert_eq(fri_dataset_parse(&d3, "c", "8 80 1\nx 1 1\n", 13, U, I, NULL,
                     ERR, sizeof(ERR)),
        FR_EFORMAT);
    cr_assert_eq(fri_idmap_size(U), 3);
    cr_assert_eq(fri_idmap_size(I), 3);
    uint32_t idx;
    cr_assert_eq(fri_idmap_get(U, 8, 0, &idx), FR_ENOENT);
    cr_assert_eq(fri_idmap_get(U, 7, 0, &idx), FR_OK);
    cr_assert_eq(idx, 2);
    fri_dataset_free(&d2);
}

Test(common_dataset, bad_inputs_name_file_and_line)
{
    expect_fail("1 2 3\nx 2 3\n", FR_EFORMAT, 2); // non-numeric user
    expect_fail("1 2 3\n1 2x 3\n", FR_EFORMAT, 2); // non-numeric item
    expect_fail("1 2 3\n1 2 abc\n", FR_EFORMAT, 2); // non-numeric rating
    expect_fail("1 2 3 4\n1 2 3 4x\n", FR_EFORMAT, 2); // bad timestamp
    expect_fail("1 2 3\n1 2\n", FR_EFORMAT, 2); // missing field
    expect_fail("1\t2\t3\t4\n1\t\t3\t4\n", FR_EFORMAT, 2); // empty field
    expect_fail("1,2,3,\n", FR_EFORMAT, 1); // trailing sep
    expect_fail("1 2 3 4\n1 2 3 4 5\n", FR_EFORMAT, 2); // extra field
    expect_fail("1 2 3 4\n1 2 3\n", FR_EFORMAT, 2); // field count
    expect_fail("1\t2\t3\t4 junk\n", FR_EFORMAT, 1); // garbage
    expect_fail("1 2 3\n\n1 3 9\n", FR_EFORMAT, 3); // out of range
    expect_fail("1 2 0.25\n", FR_EFORMAT, 1); // below min
    expect_fail("1 2 nan\n", FR_EFORMAT, 1);
    expect_fail("1 2 inf\n", FR_EFORMAT, 1);
    expect_fail("1 2 1e0\n", FR_EFORMAT, 1);
    expect_fail("1 2 .\n", FR_EFORMAT, 1);
    expect_fail("1 2 3\n-4 2 3\n", FR_EFORMAT, 2); // negative id
    expect_fail("1 -2 3\n", FR_EFORMAT, 1);
    expect_fail("1 2 3\n1099511627777 2 3\n", FR_EFORMAT, 2); // > 2^40
    expect_fail("99999999999999999999999 2 3\n", FR_EFORMAT, 1);
    expect_fail("1 2 3 99999999999999999999999\n", FR_EFORMAT, 1);
    expect_fail("1::2::3::4\n1\t2\t3\t4\n", FR_EFORMAT, 2); // mixed
    expect_fail("1\t2\t3\t4\n1::2::3::4\n", FR_EFORMAT, 2);
    expect_fail("1,2,3,4\n1 2 3 4\n", FR_EFORMAT, 2);
    expect_fail("1\t2\t3\t4\n1 2 3 4\n", FR_EFORMAT, 2);
    expect_fail(
        "userId,movieId,rating,timestamp\nuserId,2,3,4\n", FR_EFORMAT, 2);
    expect_fail("a,b\n", FR_EFORMAT, 1); // header too short
    expect_fail("1 2 3\r\r\n", FR_EFORMAT, 1);
    expect_fail(" 1,2,3\n", FR_EFORMAT, 1); // not a header
    expect_fail("1 2 3.1234567890123456789\n", FR_EFORMAT, 1);
}

Test(common_dataset, embedded_nul)
{
    static const char buf[] = "1 2 3\n1 2\0 3\n";
    cr_assert_eq(fri_dataset_parse(&D, "mem.txt", buf, sizeof(buf) - 1, U, I,
                     NULL, ERR, sizeof(ERR)),
        FR_EFORMAT);
    cr_assert(strstr(ERR, "mem.txt:2: ") == ERR, "%s", ERR);
    cr_assert(strstr(ERR, "NUL") != NULL, "%s", ERR);
}

Test(common_dataset, empty_input_is_an_error)
{
    cr_assert_eq(parse(""), FR_EFORMAT);
    cr_assert(strstr(ERR, "mem.txt") != NULL, "%s", ERR);
    cr_assert(strstr(ERR, "no ratings") != NULL, "%s", ERR);
    cr_assert_eq(parse("\n\r\n  \n"), FR_EFORMAT);
    cr_assert(strstr(ERR, "mem.txt:3: no ratings") != NULL, "%s", ERR);
    cr_assert_eq(parse("userId,movieId,rating\n"), FR_EFORMAT);
    cr_assert(strstr(ERR, "no ratings") != NULL, "%s", ERR);
}

Test(common_dataset, max_line_limit)
{
    fri_load_opts o;
    fri_load_opts_init(&o);
    o.max_line = 8;
    cr_assert_eq(parse_opts("1 2 3 4\n10 2 3 4\n", &o), FR_OK, "%s", ERR);
    fri_dataset_free(&D);
    cr_assert_eq(parse_opts("1 2 3 4\r\n10 2 3 4\r\n", &o), FR_OK, "%s", ERR);
    fri_dataset_free(&D);
    cr_assert_eq(parse_opts("1 2 3 4\n10 20 3 4\n", &o), FR_ETOOBIG);
    cr_assert(strstr(ERR, "mem.txt:2: ") == ERR, "%s", ERR);
}

Test(common_dataset, custom_rating_range)
{
    fri_load_opts o;
    fri_load_opts_init(&o);
    o.min_rating = 1;
    o.max_rating = 10;
    cr_assert_eq(parse_opts("1 2 10\n1 3 1\n", &o), FR_OK, "%s", ERR);
    fri_dataset_free(&D);
    cr_assert_eq(parse_opts("1 2 0.5\n", &o), FR_EFORMAT);
    o.max_id = 100;
    cr_assert_eq(parse_opts("101 2 1\n", &o), FR_EFORMAT);
    cr_assert(strstr(ERR, "absurd") != NULL, "%s", ERR);
}

// Writes s to a temporary file; returns its malloc'ed path.
static char *
tmpfile_with(const void *s, size_t len)
{
    char *path = strdup("/tmp/fr_test_dataset_XXXXXX");
    cr_assert_not_null(path);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, s, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(common_dataset, load_file_and_errors)
{
    const char *txt  = "1::10::4::100\n2::10::5::200\n";
    char       *path = tmpfile_with(txt, strlen(txt));
    cr_assert_eq(fri_dataset_load(&D, path, U, I, NULL, ERR, sizeof(ERR)),
        FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 2);
    expect(1, 2, 10, 5, 200);
    fri_dataset_free(&D);
    unlink(path);
    cr_assert_eq(
        fri_dataset_load(&D, path, U, I, NULL, ERR, sizeof(ERR)), FR_EIO);
    cr_assert(strstr(ERR, path) == ERR, "%s", ERR);
    free(path);
    cr_assert_eq(
        fri_dataset_load(&D, "/tmp", U, I, NULL, ERR, sizeof(ERR)), FR_EIO);
    cr_assert(strstr(ERR, "/tmp") == ERR, "%s", ERR);
    cr_assert(strstr(ERR, "directory") != NULL, "%s", ERR);
}

// A line far longer than max_line and the read buffer is refused early.
Test(common_dataset, load_file_long_line)
{
    size_t len = (size_t)3 << 20;
    char  *big = malloc(len);
    cr_assert_not_null(big);
    memcpy(big, "1 2 3\n", 6);
    memset(big + 6, '7', len - 6);
    char *path = tmpfile_with(big, len);
    free(big);
    fri_load_opts o;
    fri_load_opts_init(&o);
    cr_assert_eq(
        fri_dataset_load(&D, path, U, I, &o, ERR, sizeof(ERR)), FR_ETOOBIG);
    cr_assert(strstr(ERR, ":2: ") != NULL, "%s", ERR);
    // A line that straddles the 1 MiB read chunk but is short is fine.
    o.max_line = (size_t)4 << 20;
    cr_assert_eq(fri_dataset_load(&D, path, U, I, &o, ERR, sizeof(ERR)),
        FR_EFORMAT, "%s", ERR);
    cr_assert(strstr(ERR, ":2: ") != NULL, "%s", ERR);
    unlink(path);
    free(path);
}

Test(common_dataset, load_file_chunk_boundaries)
{
    // Enough lines to span several 1 MiB reads, with CRLF.
    size_t n = 200000, cap = n * 24, len = 0;
    char  *s = malloc(cap);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%zu,%zu,%zu,%zu\r\n",
            i % 997, i, 1 + i % 5, i);
    }
    char *path = tmpfile_with(s, len);
    free(s);
    cr_assert_eq(fri_dataset_load(&D, path, U, I, NULL, ERR, sizeof(ERR)),
        FR_OK, "%s", ERR);
    unlink(path);
    free(path);
    cr_assert_eq(D.n, n);
    cr_assert_eq(D.n_users, 997);
    cr_assert_eq(D.n_items, n);
    for (size_t i = 0; i < n; i += 1009) {
        expect(
            i, (int64_t)(i % 997), (int64_t)i, (float)(1 + i % 5), (int64_t)i);
    }
}

Test(common_dataset, load_user_filter)
{
    const char *txt  = "1 10 4\n2 20 5\n1 30 3\n3 10 2\n";
    char       *path = tmpfile_with(txt, strlen(txt));
    cr_assert_eq(fri_dataset_load_user(&D, path, 1, I, NULL, ERR, sizeof(ERR)),
        FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 2);
    cr_assert_eq(D.n_users, 1);
    cr_assert_eq(D.n_items, 3);
    cr_assert_eq(D.r[0].user, 0);
    cr_assert_eq(fri_idmap_ext(I, D.r[0].item), 10);
    cr_assert_eq(fri_idmap_ext(I, D.r[1].item), 30);
    cr_assert_eq(fri_idmap_ext(I, 1), 20); // same order as a full load
    fri_dataset_free(&D);
    cr_assert_eq(fri_dataset_load_user(&D, path, 9, I, NULL, ERR, sizeof(ERR)),
        FR_ENOENT);
    cr_assert(strstr(ERR, path) == ERR, "%s", ERR);
    unlink(path);
    free(path);
}

static fr_err
load_ml(const char *file, fri_dataset *d)
{
    const char *dir = getenv("FR_DATA_DIR");
    if (dir == NULL) {
        cr_assert_fail(
            "FR_DATA_DIR is not set (MovieLens 100K directory needed)");
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (access(path, R_OK) != 0) {
        cr_assert_fail(
            "MovieLens 100K file %s missing: set FR_DATA_DIR to the "
            "ml-100k directory",
            path);
    }
    return fri_dataset_load(d, path, U, I, NULL, ERR, sizeof(ERR));
}

Test(common_dataset, movielens_100k)
{
    cr_assert_eq(load_ml("u.data", &D), FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 100000);
    cr_assert_eq(D.n_users, 943);
    cr_assert_eq(D.n_items, 1682);
    expect(0, 196, 242, 3, 881250949);
    double sum = 0;
    for (size_t i = 0; i < D.n; i++) {
        sum += D.r[i].rating;
    }
    cr_assert(sum / (double)D.n > 3.52 && sum / (double)D.n < 3.54);
}

Test(common_dataset, movielens_u1_base_test_share_maps)
{
    fri_dataset test;
    cr_assert_eq(load_ml("u1.base", &D), FR_OK, "%s", ERR);
    cr_assert_eq(load_ml("u1.test", &test), FR_OK, "%s", ERR);
    cr_assert_eq(D.n, 80000);
    cr_assert_eq(test.n, 20000);
    cr_assert_eq(test.n_users, fri_idmap_size(U));
    cr_assert_leq(test.n_users, 943);
    cr_assert_leq(test.n_items, 1682);
    // User 1 is the first user of u1.base: dense index 0 in both.
    uint32_t idx;
    cr_assert_eq(fri_idmap_get(U, 1, 0, &idx), FR_OK);
    cr_assert_eq(idx, 0);
    cr_assert_eq(fri_idmap_ext(U, test.r[0].user), 1);
    fri_dataset_free(&test);
}

Test(common_dataset, tiny_example_exact)
{
    static const int m[10][5] = {
        { 5, 3, 4, 0, 2 },
        { 4, 5, 3, 4, 5 },
        { 2, 4, 5, 5, 1 },
        { 4, 4, 4, 4, 4 },
        { 3, 5, 5, 3, 3 },
        { 2, 2, 5, 4, 3 },
        { 1, 3, 4, 5, 4 },
        { 4, 4, 3, 5, 5 },
        { 3, 4, 5, 3, 5 },
        { 5, 5, 4, 3, 4 },
    };
    cr_assert_eq(fri_dataset_tiny(&D), FR_OK);
    cr_assert_eq(D.n, 49);
    cr_assert_eq(D.n_users, 10);
    cr_assert_eq(D.n_items, 5);
    int seen[10][5] = { { 0 } };
    for (size_t i = 0; i < D.n; i++) {
        const fri_triplet *t = &D.r[i];
        cr_assert_lt(t->user, 10);
        cr_assert_lt(t->item, 5);
        cr_assert_eq(seen[t->user][t->item], 0);
        seen[t->user][t->item] = 1;
        cr_assert_float_eq(t->rating, (float)m[t->user][t->item], 0);
    }
    cr_assert_eq(seen[0][3], 0);
}

static int
same_triplet(const fri_triplet *a, const fri_triplet *b)
{
    return a->user == b->user && a->item == b->item && a->rating == b->rating
        && a->ts == b->ts;
}

// Every rating of all is in exactly one of train/test, order kept.
static void
check_partition(
    const fri_dataset *all, const fri_dataset *tr, const fri_dataset *te)
{
    cr_assert_eq(tr->n + te->n, all->n);
    cr_assert_eq(tr->n_users, all->n_users);
    cr_assert_eq(te->n_users, all->n_users);
    cr_assert_eq(tr->n_items, all->n_items);
    cr_assert_eq(te->n_items, all->n_items);
    size_t a = 0, b = 0;
    for (size_t i = 0; i < all->n; i++) {
        if (a < tr->n && same_triplet(&tr->r[a], &all->r[i])) {
            a++;
        } else {
            cr_assert(b < te->n && same_triplet(&te->r[b], &all->r[i]),
                "rating %zu lost", i);
            b++;
        }
    }
}

Test(common_dataset, split_random_partitions_and_is_seeded)
{
    cr_assert_eq(load_ml("u.data", &D), FR_OK, "%s", ERR);
    fri_dataset tr, te, tr2, te2, tr3, te3;
    cr_assert_eq(fri_split_random(&D, 0.2, 42, &tr, &te), FR_OK);
    check_partition(&D, &tr, &te);
    cr_assert(te.n > 19000 && te.n < 21000, "test %zu", te.n);
    cr_assert_eq(fri_split_random(&D, 0.2, 42, &tr2, &te2), FR_OK);
    cr_assert_eq(te2.n, te.n);
    cr_assert_eq(memcmp(te.r, te2.r, te.n * sizeof(*te.r)), 0);
    cr_assert_eq(fri_split_random(&D, 0.2, 43, &tr3, &te3), FR_OK);
    cr_assert_neq(memcmp(te.r, te3.r, te.n * sizeof(*te.r)), 0);
    // Every user keeps ratings in train.
    uint32_t *cnt = calloc(D.n_users, sizeof(*cnt));
    for (size_t i = 0; i < tr.n; i++) {
        cnt[tr.r[i].user]++;
    }
    for (uint32_t u = 0; u < D.n_users; u++) {
        cr_assert_gt(cnt[u], 0);
    }
    free(cnt);
    fri_dataset_free(&tr);
    fri_dataset_free(&te);
    fri_dataset_free(&tr2);
    fri_dataset_free(&te2);
    fri_dataset_free(&tr3);
    fri_dataset_free(&te3);
    cr_assert_eq(fri_split_random(&D, 1.0, 1, &tr, &te), FR_EINVAL);
    cr_assert_eq(fri_split_random(&D, -0.1, 1, &tr, &te), FR_EINVAL);
    cr_assert_eq(fri_split_last(&D, 1, &D, &te), FR_EINVAL);
    cr_assert_eq(D.n, 100000, "input clobbered");
}

Test(common_dataset, split_single_rating_user_stays_in_train)
{
    cr_assert_eq(parse("1 1 1 5\n2 1 2 6\n2 2 3 7\n2 3 4 8\n"), FR_OK);
    fri_dataset tr, te;
    cr_assert_eq(fri_split_random(&D, 0.9, 3, &tr, &te), FR_OK);
    check_partition(&D, &tr, &te);
    cr_assert_eq(te.n, 2); // user 2: round(2.7) = 3, capped at 2
    for (size_t i = 0; i < te.n; i++) {
        cr_assert_eq(fri_idmap_ext(U, te.r[i].user), 2);
    }
    fri_dataset_free(&tr);
    fri_dataset_free(&te);
    cr_assert_eq(fri_split_last(&D, 5, &tr, &te), FR_OK);
    check_partition(&D, &tr, &te);
    cr_assert_eq(te.n, 2);
    cr_assert_eq(tr.n, 2);
    fri_dataset_free(&tr);
    fri_dataset_free(&te);
}

Test(common_dataset, split_last_takes_newest)
{
    // User 1: newest is ts 9 (line 2); user 2: tie at 5, later line wins.
    cr_assert_eq(parse("1 1 1 3\n1 2 2 9\n1 3 3 4\n2 1 4 5\n2 2 5 5\n"
                       "2 3 1 1\n"),
        FR_OK);
    fri_dataset tr, te;
    cr_assert_eq(fri_split_last(&D, 1, &tr, &te), FR_OK);
    check_partition(&D, &tr, &te);
    cr_assert_eq(te.n, 2);
    expect(1, 1, 2, 2, 9);
    cr_assert(same_triplet(&te.r[0], &D.r[1]));
    cr_assert(same_triplet(&te.r[1], &D.r[4]));
    fri_dataset_free(&tr);
    fri_dataset_free(&te);
    cr_assert_eq(fri_split_last(&D, 2, &tr, &te), FR_OK);
    cr_assert_eq(te.n, 4);
    cr_assert(same_triplet(&te.r[0], &D.r[1]));
    cr_assert(same_triplet(&te.r[1], &D.r[2]));
    cr_assert(same_triplet(&te.r[2], &D.r[3]));
    cr_assert(same_triplet(&te.r[3], &D.r[4]));
    fri_dataset_free(&tr);
    fri_dataset_free(&te);
}

Test(common_dataset, split_last_movielens_newest_per_user)
{
    cr_assert_eq(load_ml("u.data", &D), FR_OK, "%s", ERR);
    fri_dataset tr, te;
    cr_assert_eq(fri_split_last(&D, 1, &tr, &te), FR_OK);
    check_partition(&D, &tr, &te);
    cr_assert_eq(te.n, 943);
    int64_t *newest = calloc(D.n_users, sizeof(*newest));
    for (size_t i = 0; i < tr.n; i++) {
        if (tr.r[i].ts > newest[tr.r[i].user]) {
            newest[tr.r[i].user] = tr.r[i].ts;
        }
    }
    for (size_t i = 0; i < te.n; i++) {
        cr_assert_geq(te.r[i].ts, newest[te.r[i].user]);
    }
    free(newest);
    fri_dataset_free(&tr);
    fri_dataset_free(&te);
}

Test(common_dataset, csr_rows_sorted_and_complete)
{
    cr_assert_eq(load_ml("u.data", &D), FR_OK, "%s", ERR);
    fri_csr cu, ci;
    cr_assert_eq(fri_csr_by_user(&cu, &D), FR_OK);
    cr_assert_eq(fri_csr_by_item(&ci, &D), FR_OK);
    cr_assert_eq(cu.n_rows, 943);
    cr_assert_eq(cu.n_cols, 1682);
    cr_assert_eq(ci.n_rows, 1682);
    cr_assert_eq(cu.ptr[943], D.n);
    cr_assert_eq(ci.ptr[1682], D.n);
    for (uint32_t r = 0; r < cu.n_rows; r++) {
        for (size_t j = cu.ptr[r] + 1; j < cu.ptr[r + 1]; j++) {
            cr_assert_lt(cu.idx[j - 1], cu.idx[j]);
        }
    }
    for (uint32_t r = 0; r < ci.n_rows; r++) {
        for (size_t j = ci.ptr[r] + 1; j < ci.ptr[r + 1]; j++) {
            cr_assert_lt(ci.idx[j - 1], ci.idx[j]);
        }
    }
    // Every triplet is found in both views with its rating.
    for (size_t i = 0; i < D.n; i += 37) {
        const fri_triplet *t     = &D.r[i];
        int                found = 0;
        for (size_t j = cu.ptr[t->user]; j < cu.ptr[t->user + 1]; j++) {
            if (cu.idx[j] == t->item) {
                cr_assert_float_eq(cu.val[j], t->rating, 0);
                found++;
            }
        }
        for (size_t j = ci.ptr[t->item]; j < ci.ptr[t->item + 1]; j++) {
            if (ci.idx[j] == t->user) {
                cr_assert_float_eq(ci.val[j], t->rating, 0);
                found++;
            }
        }
        cr_assert_eq(found, 2);
    }
    fri_csr_free(&cu);
    fri_csr_free(&ci);
}

Test(common_dataset, csr_tiny_and_empty_rows)
{
    cr_assert_eq(fri_dataset_tiny(&D), FR_OK);
    D.n_users = 12; // two users without ratings
    fri_csr c;
    cr_assert_eq(fri_csr_by_user(&c, &D), FR_OK);
    cr_assert_eq(c.ptr[1] - c.ptr[0], 4);
    cr_assert_eq(c.idx[3], 4);
    cr_assert_float_eq(c.val[3], 2, 0);
    cr_assert_eq(c.ptr[10], 49);
    cr_assert_eq(c.ptr[12], 49);
    fri_csr_free(&c);
    D.r[0].item = 7; // out of range
    cr_assert_eq(fri_csr_by_user(&c, &D), FR_EINVAL);
    cr_assert_null(c.ptr);
}
