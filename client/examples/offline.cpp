// libfedrec-client from C++: the C API behind RAII (the handle is freed on
// every path) and an exception for errors. Offline: records ratings and
// shows what a device without a model can and cannot do yet.
//   c++ -std=c++11 offline.cpp $(pkg-config --cflags --libs fedrec-client)
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include <fedrec/client.h>

namespace {

struct client_deleter {
    void operator()(fr_client *c) const { fr_client_destroy(c); }
};
using client_ptr = std::unique_ptr<fr_client, client_deleter>;

struct fedrec_error : std::runtime_error {
    fr_err code;
    fedrec_error(fr_err e, const std::string &what)
        : std::runtime_error(std::string(fr_errname(e)) + ": " + what)
        , code(e)
    {
    }
};

void
check(fr_client *c, fr_err e)
{
    if (e != FR_OK) {
        throw fedrec_error(
            e, c != nullptr ? fr_client_errmsg(c) : fr_strerror(e));
    }
}

client_ptr
make_client()
{
    fr_client_config cfg;
    fr_client_config_init(&cfg);
    for (int i = 0; i < FR_PUBLICKEYBYTES; i++) {
        cfg.server_pk[i] = static_cast<uint8_t>(i + 1); // the aggregator's
    }
    fr_client *raw = nullptr;
    check(nullptr, fr_client_create(&raw, &cfg));
    return client_ptr(raw);
}

} // namespace

int
main()
{
    try {
        client_ptr c = make_client();
        for (uint32_t item = 10; item < 15; item++) {
            check(c.get(), fr_client_add(c.get(), item, 4.0f, 0));
        }
        std::printf("ratings: %zu\n", fr_client_count(c.get()));
        uint32_t items[5];
        float    scores[5];
        size_t   n = 0;
        try {
            check(c.get(), fr_client_recommend(c.get(), items, scores, 5, &n));
            std::printf("recommended %zu without a model\n", n);
            return 1;
        } catch (const fedrec_error &e) {
            if (e.code != FR_ESTATE) {
                throw;
            }
            std::printf("no model yet (%s)\n", e.what());
        }
        check(c.get(),
            fr_client_add(
                c.get(), 3, std::numeric_limits<float>::infinity(), 0));
        std::printf("a non-finite rating was accepted\n");
        return 1;
    } catch (const fedrec_error &e) {
        if (e.code == FR_EINVAL) {
            std::printf("refused: %s\n", e.what());
            return 0;
        }
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}
