// The `flowgate` command: policy tools now; daemon queries and audit tools to come.
#include "client/policy_commands.hpp"

int main(int argc, char** argv) {
    return flowgate::cli::run(argc, argv);
}
