#include "knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Owned CSR copy.
typedef struct mat {
    uint32_t  n_rows;
    uint32_t  n_cols;
    size_t   *ptr;
    uint32_t *idx;
    float    *val;
} mat;

typedef struct nb {
    float    sim;
    uint32_t id;
} nb;

struct fri_knn {
    fri_knn_config c;
    uint32_t       n_users;
    uint32_t       n_items;
    float          mu;
    float         *item_mean; // damped, n_items
    mat            by_user;
    mat            by_item;
    // The similarity side: rows are users (USER) or items (ITEM); "other"
    // is the transpose. sim is n x n, n = rows.n_rows.
    const mat *rows;
    const mat *other;
    float     *sim;
    // Each row's k nearest neighbours (sim > 0), best first: graph[a*k ..],
    // graph_len[a] of them.
    nb       *graph;
    uint32_t *graph_len;
    // Content-based (fri_knn_fit_content): item features, n_items x n_feat.
    float   *feat;
    uint32_t n_feat;
};

static void
mat_free(mat *m)
{
    free(m->ptr);
    free(m->idx);
    free(m->val);
    memset(m, 0, sizeof(*m));
}

static fr_err
mat_alloc(mat *m, uint32_t n_rows, uint32_t n_cols, size_t nnz)
{
    m->n_rows = n_rows;
    m->n_cols = n_cols;
    m->ptr    = calloc((size_t)n_rows + 1, sizeof(size_t));
    m->idx    = malloc((nnz > 0 ? nnz : 1) * sizeof(uint32_t));
    m->val    = malloc((nnz > 0 ? nnz : 1) * sizeof(float));
    if (m->ptr == NULL || m->idx == NULL || m->val == NULL) {
        mat_free(m);
        return FR_ENOMEM;
    }
    return FR_OK;
}

// Transpose by counting sort: rows of the result come out sorted by column
// because the source rows are scanned in order.
static fr_err
mat_transpose(mat *t, const mat *s)
{
    size_t nnz = s->ptr[s->n_rows];
    fr_err e   = mat_alloc(t, s->n_cols, s->n_rows, nnz);
    if (e != FR_OK) {
        return e;
    }
    for (size_t j = 0; j < nnz; j++) {
        t->ptr[s->idx[j] + 1]++;
    }
    for (uint32_t r = 0; r < t->n_rows; r++) {
        t->ptr[r + 1] += t->ptr[r];
    }
    size_t *fill = malloc(((size_t)t->n_rows + 1) * sizeof(size_t));
    if (fill == NULL) {
        mat_free(t);
        return FR_ENOMEM;
    }
    memcpy(fill, t->ptr, ((size_t)t->n_rows + 1) * sizeof(size_t));
    for (uint32_t r = 0; r < s->n_rows; r++) {
        for (size_t j = s->ptr[r]; j < s->ptr[r + 1]; j++) {
            size_t at  = fill[s->idx[j]]++;
            t->idx[at] = r;
            t->val[at] = s->val[j];
        }
    }
    free(fill);
    return FR_OK;
}

void
fri_knn_config_init(fri_knn_config *c)
{
    c->kind        = FRI_KNN_USER;
    c->k           = 40;
    c->min_support = 1;
    c->norm        = FRI_KNN_NORM_COMMON;
    c->centre      = 1;
}

void
fri_knn_destroy(fri_knn *m)
{
    if (m == NULL) {
        return;
    }
    mat_free(&m->by_user);
    mat_free(&m->by_item);
    free(m->item_mean);
    free(m->sim);
    free(m->graph);
    free(m->graph_len);
    free(m->feat);
    free(m);
}

// a is a worse neighbour than b: lower similarity, ties to the higher id.
static int
worse(const nb *a, const nb *b)
{
    return a->sim < b->sim || (a->sim == b->sim && a->id > b->id);
}

// Min-heap (worst at the root) of at most cap neighbours.
static void
heap_push(nb *h, uint32_t *len, uint32_t cap, nb x)
{
    if (*len == cap) {
        if (!worse(&h[0], &x)) {
            return;
        }
        // Replace the root and sift down.
        size_t i = 0;
        h[0]     = x;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < *len && worse(&h[l], &h[m])) {
                m = l;
            }
            if (r < *len && worse(&h[r], &h[m])) {
                m = r;
            }
            if (m == i) {
                break;
            }
            nb t = h[i];
            h[i] = h[m];
            h[m] = t;
            i    = m;
        }
        return;
    }
    size_t i = (*len)++;
    h[i]     = x;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p])) {
            break;
        }
        nb t = h[i];
        h[i] = h[p];
        h[p] = t;
        i    = p;
    }
}

static int
cmp_best_first(const void *pa, const void *pb)
{
    const nb *a = pa, *b = pb;
    return worse(a, b) ? 1 : (worse(b, a) ? -1 : 0);
}

// sim[a][b] for every pair of rows through the co-rated columns: for row a,
// walk each of its columns' other rows and accumulate the dot product, the
// co-rated squared norms of both sides and the support.
static fr_err
compute_sims(fri_knn *m)
{
    const mat     *R = m->rows, *T = m->other;
    const uint32_t n       = R->n_rows;
    double        *dot     = calloc(n, sizeof(double));
    double        *sqa     = calloc(n, sizeof(double));
    double        *sqb     = calloc(n, sizeof(double));
    double        *full    = calloc(n, sizeof(double));
    uint32_t      *cnt     = calloc(n, sizeof(uint32_t));
    uint32_t      *touched = malloc((size_t)n * sizeof(uint32_t));
    if (dot == NULL || sqa == NULL || sqb == NULL || full == NULL
        || cnt == NULL || touched == NULL) {
        free(dot);
        free(sqa);
        free(sqb);
        free(full);
        free(cnt);
        free(touched);
        return FR_ENOMEM;
    }
    for (uint32_t a = 0; a < n; a++) {
        for (size_t j = R->ptr[a]; j < R->ptr[a + 1]; j++) {
            full[a] += (double)R->val[j] * R->val[j];
        }
    }
    for (uint32_t a = 0; a < n; a++) {
        size_t n_t = 0;
        for (size_t j = R->ptr[a]; j < R->ptr[a + 1]; j++) {
            double   ra  = R->val[j];
            uint32_t col = R->idx[j];
            for (size_t q = T->ptr[col]; q < T->ptr[col + 1]; q++) {
                uint32_t b = T->idx[q];
                if (b == a) {
                    continue;
                }
                double rb = T->val[q];
                if (cnt[b] == 0) {
                    touched[n_t++] = b;
                }
                cnt[b]++;
                dot[b] += ra * rb;
                sqa[b] += ra * ra;
                sqb[b] += rb * rb;
            }
        }
        float *row = m->sim + (size_t)a * n;
        for (size_t t = 0; t < n_t; t++) {
            uint32_t b   = touched[t];
            double   den = m->c.norm == FRI_KNN_NORM_FULL
                  ? sqrt(full[a] * full[b])
                  : sqrt(sqa[b] * sqb[b]);
            if (cnt[b] >= m->c.min_support && den > 0.0) {
                row[b] = (float)(dot[b] / den);
            }
            dot[b] = sqa[b] = sqb[b] = 0.0;
            cnt[b]                   = 0;
        }
    }
    free(dot);
    free(sqa);
    free(sqb);
    free(full);
    free(cnt);
    free(touched);
    return FR_OK;
}

static void
build_graph(fri_knn *m)
{
    const uint32_t n = m->rows->n_rows, k = m->c.k;
    for (uint32_t a = 0; a < n; a++) {
        nb          *h   = m->graph + (size_t)a * k;
        uint32_t     len = 0;
        const float *row = m->sim + (size_t)a * n;
        for (uint32_t b = 0; b < n; b++) {
            if (row[b] > 0.0f) {
                heap_push(h, &len, k, (nb) { row[b], b });
            }
        }
        qsort(h, len, sizeof(nb), cmp_best_first);
        m->graph_len[a] = len;
    }
}

// Item-item cosine of the feature vectors (zero vectors: similarity 0).
static void
compute_feature_sims(fri_knn *m)
{
    const uint32_t n = m->n_items, d = m->n_feat;
    for (uint32_t a = 0; a < n; a++) {
        const float *xa = m->feat + (size_t)a * d;
        double       na = 0.0;
        for (uint32_t f = 0; f < d; f++) {
            na += (double)xa[f] * xa[f];
        }
        for (uint32_t b = 0; b < n && na > 0.0; b++) {
            const float *xb  = m->feat + (size_t)b * d;
            double       dot = 0.0, nb2 = 0.0;
            for (uint32_t f = 0; f < d; f++) {
                dot += (double)xa[f] * xb[f];
                nb2 += (double)xb[f] * xb[f];
            }
            if (b != a && nb2 > 0.0) {
                m->sim[(size_t)a * n + b] = (float)(dot / sqrt(na * nb2));
            }
        }
    }
}

static fr_err fit_common(fri_knn **out, const fri_csr *train,
    const fri_knn_config *c, const float *features, uint32_t n_feat);

fr_err
fri_knn_fit(fri_knn **out, const fri_csr *train, const fri_knn_config *c)
{
    return fit_common(out, train, c, NULL, 0);
}

fr_err
fri_knn_fit_content(fri_knn **out, const fri_csr *train, const float *features,
    size_t features_len, uint32_t n_feat, const fri_knn_config *c)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (train == NULL || features == NULL || n_feat == 0 || c == NULL
        || c->kind != FRI_KNN_ITEM
        || features_len / n_feat < (size_t)train->n_cols) {
        return FR_EINVAL;
    }
    for (size_t j = 0; j < (size_t)train->n_cols * n_feat; j++) {
        if (!isfinite(features[j])) {
            return FR_EINVAL;
        }
    }
    return fit_common(out, train, c, features, n_feat);
}

static fr_err
fit_common(fri_knn **out, const fri_csr *train, const fri_knn_config *c,
    const float *features, uint32_t n_feat)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (train == NULL || c == NULL || train->ptr == NULL || c->k == 0
        || train->n_rows == 0 || train->n_cols == 0
        || (c->kind != FRI_KNN_USER && c->kind != FRI_KNN_ITEM)
        || (c->norm != FRI_KNN_NORM_COMMON && c->norm != FRI_KNN_NORM_FULL)) {
        return FR_EINVAL;
    }
    const size_t nnz = train->ptr[train->n_rows];
    if (nnz == 0 || train->idx == NULL || train->val == NULL) {
        return FR_EINVAL;
    }
    double sum = 0.0;
    for (uint32_t r = 0; r < train->n_rows; r++) {
        if (train->ptr[r + 1] < train->ptr[r]) {
            return FR_EINVAL;
        }
    }
    for (size_t j = 0; j < nnz; j++) {
        if (train->idx[j] >= train->n_cols || !isfinite(train->val[j])) {
            return FR_EINVAL;
        }
        sum += train->val[j];
    }
    uint32_t n = c->kind == FRI_KNN_USER ? train->n_rows : train->n_cols;
    if (n > FRI_KNN_MAX_ROWS) {
        return FR_ETOOBIG;
    }
    fri_knn *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return FR_ENOMEM;
    }
    m->c       = *c;
    m->n_users = train->n_rows;
    m->n_items = train->n_cols;
    m->mu      = (float)(sum / (double)nnz);
    fr_err e   = mat_alloc(&m->by_user, train->n_rows, train->n_cols, nnz);
    if (e == FR_OK) {
        memcpy(m->by_user.ptr, train->ptr,
            ((size_t)train->n_rows + 1) * sizeof(size_t));
        memcpy(m->by_user.idx, train->idx, nnz * sizeof(uint32_t));
        memcpy(m->by_user.val, train->val, nnz * sizeof(float));
        e = mat_transpose(&m->by_item, &m->by_user);
    }
    if (e == FR_OK) {
        m->rows      = c->kind == FRI_KNN_USER ? &m->by_user : &m->by_item;
        m->other     = c->kind == FRI_KNN_USER ? &m->by_item : &m->by_user;
        m->item_mean = malloc((size_t)m->n_items * sizeof(float));
        m->sim       = calloc((size_t)n * n, sizeof(float));
        m->graph     = malloc((size_t)n * c->k * sizeof(nb));
        m->graph_len = calloc(n, sizeof(uint32_t));
        if (m->item_mean == NULL || m->sim == NULL || m->graph == NULL
            || m->graph_len == NULL) {
            e = FR_ENOMEM;
        }
    }
    if (e == FR_OK) {
        const mat *bi = &m->by_item;
        for (uint32_t i = 0; i < m->n_items; i++) {
            double s = FRI_KNN_DAMP * (double)m->mu;
            for (size_t j = bi->ptr[i]; j < bi->ptr[i + 1]; j++) {
                s += bi->val[j];
            }
            double cnt      = (double)(bi->ptr[i + 1] - bi->ptr[i]);
            m->item_mean[i] = (float)(s / (cnt + FRI_KNN_DAMP));
        }
        if (features != NULL) {
            size_t fl = (size_t)m->n_items * n_feat;
            m->feat   = malloc(fl * sizeof(float));
            if (m->feat == NULL) {
                e = FR_ENOMEM;
            } else {
                memcpy(m->feat, features, fl * sizeof(float));
                m->n_feat = n_feat;
                compute_feature_sims(m);
            }
        } else {
            e = compute_sims(m);
        }
    }
    if (e != FR_OK) {
        fri_knn_destroy(m);
        return e;
    }
    build_graph(m);
    *out = m;
    return FR_OK;
}

uint32_t
fri_knn_n_users(const fri_knn *m)
{
    return m != NULL ? m->n_users : 0;
}

uint32_t
fri_knn_n_items(const fri_knn *m)
{
    return m != NULL ? m->n_items : 0;
}

float
fri_knn_global_mean(const fri_knn *m)
{
    return m != NULL ? m->mu : 0.0f;
}

float
fri_knn_similarity(const fri_knn *m, uint32_t a, uint32_t b)
{
    if (m == NULL) {
        return 0.0f;
    }
    uint32_t n = m->rows->n_rows;
    if (a >= n || b >= n) {
        return 0.0f;
    }
    return m->sim[(size_t)a * n + b];
}

fr_err
fri_knn_predict(
    const fri_knn *m, uint32_t u, uint32_t i, float *out, int *fell_back)
{
    if (m == NULL || out == NULL) {
        return FR_EINVAL;
    }
    float fb = i < m->n_items ? m->item_mean[i] : m->mu;
    *out     = fb;
    if (fell_back != NULL) {
        *fell_back = 1;
    }
    if (u >= m->n_users || i >= m->n_items) {
        return FR_OK;
    }
    // The similarity entity a and the candidate neighbours: the other
    // entity's row b lists who/what is rated together with their rating.
    uint32_t       a = m->c.kind == FRI_KNN_USER ? u : i;
    uint32_t       b = m->c.kind == FRI_KNN_USER ? i : u;
    const mat     *T = m->other;
    const uint32_t n = m->rows->n_rows, k = m->c.k;
    const float   *row = m->sim + (size_t)a * n;
    // Heap of (sim, position in T's row b): the ids are candidate indices,
    // so ties go to the lower neighbour index as T's rows are sorted.
    nb  heap_stack[64];
    nb *heap = k <= 64 ? heap_stack : malloc((size_t)k * sizeof(nb));
    if (heap == NULL) {
        return FR_ENOMEM;
    }
    uint32_t len = 0;
    for (size_t q = T->ptr[b]; q < T->ptr[b + 1]; q++) {
        float s = row[T->idx[q]];
        if (s > 0.0f) {
            heap_push(heap, &len, k, (nb) { s, (uint32_t)(q - T->ptr[b]) });
        }
    }
    double num = 0.0, den = 0.0;
    for (uint32_t t = 0; t < len; t++) {
        num += (double)heap[t].sim * T->val[T->ptr[b] + heap[t].id];
        den += heap[t].sim;
    }
    if (heap != heap_stack) {
        free(heap);
    }
    if (den > 0.0) {
        *out = (float)(num / den);
        if (fell_back != NULL) {
            *fell_back = 0;
        }
    }
    return FR_OK;
}

// Profile p_u = sum_j w_j x_j over the items u rated, w_j = r_uj minus the
// user's mean rating when c.centre (what the user liked more or less than
// usual), else r_uj; score(i) = cos(p_u, x_i).
static void
content_scores(const fri_knn *m, uint32_t u, double *prof, float *o)
{
    const mat     *U  = &m->by_user;
    const uint32_t d  = m->n_feat;
    size_t         lo = U->ptr[u], hi = U->ptr[u + 1];
    double         mean = 0.0;
    for (size_t j = lo; j < hi && m->c.centre; j++) {
        mean += U->val[j] / (double)(hi - lo);
    }
    memset(prof, 0, d * sizeof(double));
    for (size_t j = lo; j < hi; j++) {
        const float *x = m->feat + (size_t)U->idx[j] * d;
        double       w = U->val[j] - mean;
        for (uint32_t f = 0; f < d; f++) {
            prof[f] += w * x[f];
        }
    }
    double np = 0.0;
    for (uint32_t f = 0; f < d; f++) {
        np += prof[f] * prof[f];
    }
    if (!(np > 0.0)) {
        return;
    }
    for (uint32_t i = 0; i < m->n_items; i++) {
        const float *x   = m->feat + (size_t)i * d;
        double       dot = 0.0, nx = 0.0;
        for (uint32_t f = 0; f < d; f++) {
            dot += prof[f] * x[f];
            nx += (double)x[f] * x[f];
        }
        if (nx > 0.0) {
            o[i] = (float)(dot / sqrt(np * nx));
        }
    }
}

fr_err
fri_knn_score_users(const fri_knn *m, float *out, size_t out_len,
    const uint32_t *users, size_t n_users)
{
    if (m == NULL || out == NULL || (n_users > 0 && users == NULL)) {
        return FR_EINVAL;
    }
    const size_t ni = m->n_items;
    if (n_users > 0 && out_len / n_users < ni) {
        return FR_ENOSPC;
    }
    for (size_t r = 0; r < n_users; r++) {
        if (users[r] >= m->n_users) {
            return FR_EINVAL;
        }
    }
    const uint32_t k    = m->c.k;
    const mat     *U    = &m->by_user;
    double        *prof = NULL;
    if (m->feat != NULL) {
        prof = malloc((size_t)m->n_feat * sizeof(double));
        if (prof == NULL) {
            return FR_ENOMEM;
        }
    }
    for (size_t r = 0; r < n_users; r++) {
        float *o = out + r * ni;
        memset(o, 0, ni * sizeof(float));
        uint32_t u = users[r];
        if (m->feat != NULL) {
            content_scores(m, u, prof, o);
        } else if (m->c.kind == FRI_KNN_USER) {
            const nb *g = m->graph + (size_t)u * k;
            for (uint32_t t = 0; t < m->graph_len[u]; t++) {
                uint32_t v = g[t].id;
                for (size_t j = U->ptr[v]; j < U->ptr[v + 1]; j++) {
                    o[U->idx[j]] += g[t].sim * U->val[j];
                }
            }
        } else {
            for (size_t j = U->ptr[u]; j < U->ptr[u + 1]; j++) {
                uint32_t  it = U->idx[j];
                const nb *g  = m->graph + (size_t)it * k;
                for (uint32_t t = 0; t < m->graph_len[it]; t++) {
                    o[g[t].id] += g[t].sim * U->val[j];
                }
            }
        }
    }
    free(prof);
    return FR_OK;
}
