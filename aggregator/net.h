// The aggregator's NNG server: a REP socket served by a pool of contexts,
// each an nng_aio state machine (receive -> fri_agg_handle -> send), so
// thousands of clients share a fixed number of in-flight requests and no
// thread is tied to a client; a timer thread calling fri_agg_tick; and an
// optional HTTP server for /metrics and /status.
#ifndef FR_AGGREGATOR_NET_H
#define FR_AGGREGATOR_NET_H

#include <stdint.h>

#include "agg.h"

typedef struct fri_net fri_net;

// Milliseconds of CLOCK_MONOTONIC.
uint64_t fri_now_ms(void);

// Starts serving a on url (and http "HOST:PORT" if non-NULL) with
// n_contexts contexts. FR_ENET with a message on failure.
FR_NODISCARD fr_err fri_net_start(fri_net **out, fri_agg *a, const char *url,
                                  const char *http, int n_contexts,
                                  char *err, size_t err_cap);
// Stops the listener, the contexts, the timer and the HTTP server.
void fri_net_stop(fri_net *n); // NULL is a no-op

#endif
