// flowgate's side of the central store's commands: the command line, as given, handed to
// flowgate-central beside this program (see commands.hpp), which parses and runs it.
#include "cli/audit_inputs.hpp"
#include "cli/commands.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

namespace flowgate::cli {

namespace {

[[noreturn]] void run_in_flowgate_central() {
    std::error_code error;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
    const std::filesystem::path central = self.parent_path() / "flowgate-central";
    // The arguments exactly as this process was given them.
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    const std::string cmdline((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    std::vector<std::string> arguments;
    for (std::size_t start = 0; start < cmdline.size();) {
        const std::size_t end = cmdline.find('\0', start);
        arguments.push_back(cmdline.substr(start, end - start));
        start = end == std::string::npos ? cmdline.size() : end + 1;
    }
    std::vector<char*> argv;
    for (std::string& argument : arguments) {
        argv.push_back(argument.data());
    }
    argv.push_back(nullptr);
    if (!error) {
        ::execv(central.c_str(), argv.data());
    }
    report_error("cannot run " + central.string() +
                 ", which runs the central store's commands: " + std::strerror(errno));
    std::exit(exit_error);
}

} // namespace

void register_ship_commands(CLI::App& audit, Outcome& /*outcome*/) {
    CLI::App* ship = audit.add_subcommand("ship", ship_description);
    // Every argument, --help included, is flowgate-central's to read.
    ship->set_help_flag();
    ship->prefix_command();
    ship->callback([] { run_in_flowgate_central(); });
}

int run_central_verify(const std::string& /*uri*/, const std::string& /*origin*/,
                       const std::string& /*key_argument*/) {
    run_in_flowgate_central();
}

int run_central_records(const std::string& /*uri*/, const std::string& /*origin*/,
                        const RecordFilter& /*filter*/, const std::string& /*format*/) {
    run_in_flowgate_central();
}

int run_central_replay(const std::string& /*uri*/, const std::string& /*origin*/,
                       const std::string& /*candidate_path*/, bool /*as_json*/) {
    run_in_flowgate_central();
}

int run_central_report(const std::string& /*uri*/, const std::string& /*origin*/,
                       const std::vector<std::string>& /*key_arguments*/,
                       const AuditReportOptions& /*options*/, const std::string& /*output*/) {
    run_in_flowgate_central();
}

} // namespace flowgate::cli
