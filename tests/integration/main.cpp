// The Catch2 main of the integration tests. A daemon that a test leaves behind would
// hold its port and temp directory, so the rig kills it; SIGPIPE must not kill the
// tests when flowgated cuts a connection off on purpose.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <csignal>

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    return Catch::Session().run(argc, argv);
}
