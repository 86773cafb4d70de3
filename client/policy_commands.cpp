// The `flowgate policy ...` subcommands.
#include "client/policy_commands.hpp"

#include <CLI/CLI.hpp>

namespace flowgate::cli {

int run(int argc, char** argv) {
    CLI::App app{"flowgate: data-flow authorization"};
    app.require_subcommand(1);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return 0;
}

} // namespace flowgate::cli
