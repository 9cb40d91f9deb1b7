// Beyond accuracy: what a population of top-K lists does to the catalog
// and to each user. Computed from the lists themselves (the devices' own
// recommendations in the simulator, the trained model's in fedrec-train),
// the items' training popularity and, for diversity, the item factors.
//   coverage        |union of the lists| / n_items
//   gini            Gini coefficient of the items' exposure (how many lists
//                   hold each item, every catalog item counted, zeros too):
//                   0 = every item equally exposed, -> 1 = a few items get
//                   all the exposure
//   avg_popularity  mean training popularity (number of users who rated
//                   the item) of the recommended items
//   novelty         mean self-information -log2((pop + 1) / (n_users + 1))
//                   of the recommended items (add-one smoothed, so items
//                   nobody rated are finite)
//   ild             intra-list diversity: mean over lists of the mean
//                   pairwise cosine distance 1 - cos(q_a, q_b) of the
//                   items' factor vectors (pairs with a zero vector have no
//                   direction and are left out; a list without a pair is
//                   left out); NaN without factors or pairs
#ifndef FR_COMMON_LISTMETRICS_H
#define FR_COMMON_LISTMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

typedef struct fri_list_metrics {
    double coverage;
    double gini;
    double avg_popularity;
    double novelty;
    double ild;
    size_t n_lists; // lists with at least one item
} fri_list_metrics;

// lists: n_lists rows of K item ids (row r holds lens[r] <= K entries);
// pop: n_items training popularities; Q: n_items x k factors or NULL.
// FR_EINVAL on NULL arguments, K == 0, a length above K or an item id
// >= n_items; FR_ENOMEM.
FR_NODISCARD fr_err fri_list_metrics_eval(fri_list_metrics *out,
                                          const uint32_t *lists,
                                          const uint8_t *lens, size_t n_lists,
                                          size_t K, uint32_t n_items,
                                          const uint32_t *pop,
                                          uint32_t n_users, const float *Q,
                                          uint32_t k);

#endif
