// The `flowgate` command line: subcommands are registered here and dispatched with CLI11.
#pragma once

namespace flowgate::cli {

int run(int argc, char** argv);

} // namespace flowgate::cli
