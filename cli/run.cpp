// Dispatch of the `flowgate` command line; see commands.hpp.
#include "cli/commands.hpp"

#include <iostream>

namespace flowgate::cli {

int run(int argc, char** argv) {
    CLI::App app{"flowgate: data-flow authorization for a health insurance society"};
    app.require_subcommand(1);
    Outcome outcome;
    register_policy_commands(app, outcome);
    register_daemon_commands(app, outcome);
    register_audit_commands(app, outcome);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? exit_allow : exit_error;
    }
    std::cout.flush();
    return outcome.status;
}

} // namespace flowgate::cli
