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

// Limits on what a peer can make the server hold before it authenticates.
typedef struct fri_net_opts {
    int      n_contexts;           // concurrent requests (default 128)
    uint32_t max_connections;      // open connections, 0 = no cap (20000)
    uint64_t handshake_timeout_ms; // a connection whose requests got no
                                   // WELCOME or sealed reply in this time is
                                   // closed; 0 = never (default 10000)
    double   hello_rate;           // HELLOs per second per remote IP
                                   // address, 0 = no limit (default 1000)
    uint32_t hello_burst;          // bucket size of that rate (2000)
    size_t   max_frame;            // NNG receive limit: cfg.max_frame
} fri_net_opts;

void fri_net_opts_init(fri_net_opts *o);

typedef struct fri_net_stats {
    uint64_t connections;          // open now
    uint64_t refused_connections;  // over max_connections
    uint64_t handshake_timeouts;   // closed for no handshake in time
    uint64_t hellos_rate_limited;  // dropped over hello_rate
} fri_net_stats;

// Milliseconds of CLOCK_MONOTONIC.
uint64_t fri_now_ms(void);

// Starts serving a on url (and http "HOST:PORT" if non-NULL) with the
// limits in o. FR_ENET with a message on failure.
FR_NODISCARD fr_err fri_net_start(fri_net **out, fri_agg *a, const char *url,
                                  const char *http, const fri_net_opts *o,
                                  char *err, size_t err_cap);
void fri_net_stats_get(fri_net *n, fri_net_stats *st);

// Appends the transport counters to a metrics page of *len bytes in dst:
// Prometheus lines, or for JSON (json != 0; dst holds one object) a
// "transport" member inside it. FR_ENOSPC if they do not fit.
FR_NODISCARD fr_err fri_net_stats_append(const fri_net_stats *st, int json,
                                         char *dst, size_t cap, size_t *len);
// Stops the listener, the contexts, the timer and the HTTP server.
void fri_net_stop(fri_net *n); // NULL is a no-op

#endif
