// The `flowgate` command: the policy tools, questions to a running flowgated, and
// (later) the auditor's tools. See commands.hpp.
#include "cli/commands.hpp"

int main(int argc, char** argv) {
    return flowgate::cli::run(argc, argv);
}
