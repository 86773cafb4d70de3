// The C++ client's own speed against a running flowgated, for the README's comparison
// with the Python package (tests/bench/bench_python_client.py starts the daemon and runs
// this against it): decisions per second for checks asked one after the other on one
// connection, and for batch() of N pipelined checks. Prints one line per figure.
//   bench_client --socket PATH [--seconds S] [--batch N]
#include "client/client.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

flowgate::client::CheckRequest question(int n) {
    flowgate::client::CheckRequest q;
    q.purpose = "health_services";
    q.recipient = n % 4 == 0 ? "employer" : "prevent"; // a quarter of them denied
    q.data = {"checkup_result"};
    q.subject = "p-" + std::to_string(n);
    return q;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

} // namespace

int main(int argc, char** argv) {
    std::string socket;
    double seconds = 3;
    int batch_size = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view flag = argv[i];
        if (flag == "--socket") {
            socket = argv[i + 1];
        } else if (flag == "--seconds") {
            seconds = std::atof(argv[i + 1]);
        } else if (flag == "--batch") {
            batch_size = std::atoi(argv[i + 1]);
        }
    }
    auto client = flowgate::client::Client::connect(socket, std::chrono::seconds(60));
    if (!client) {
        std::fprintf(stderr, "bench_client: %s\n", client.error.message.c_str());
        return 1;
    }
    int asked = 0;
    auto start = Clock::now();
    while (seconds_since(start) < seconds) {
        if (!client.value->check(question(asked++))) {
            std::fprintf(stderr, "bench_client: a check failed\n");
            return 1;
        }
    }
    std::printf("C++ client, sequential check(): %.0f decisions/s\n", asked / seconds_since(start));

    asked = 0;
    start = Clock::now();
    while (seconds_since(start) < seconds) {
        std::vector<boost::json::object> requests;
        requests.reserve(static_cast<std::size_t>(batch_size));
        for (int i = 0; i < batch_size; ++i) {
            requests.push_back(question(asked + i).to_json());
        }
        auto answers = client.value->batch(std::move(requests));
        if (!answers) {
            std::fprintf(stderr, "bench_client: %s\n", answers.error.message.c_str());
            return 1;
        }
        asked += batch_size;
    }
    std::printf("C++ client, batch() of %d: %.0f decisions/s\n", batch_size,
                asked / seconds_since(start));
    return 0;
}
