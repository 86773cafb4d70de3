// `flowgate audit keygen|verifier-key`: making the Ed25519 key a host signs its log's
// checkpoints with, and showing the verifier key the auditors check them with. The
// private key file is created, never replaced: a signing key overwritten by accident
// would leave every checkpoint signed so far checkable only with a key nobody holds.
#include "audit/key_file.hpp"
#include "audit/signing_key.hpp"
#include "cli/commands.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace flowgate::cli {

namespace {

void report(const std::string& message) {
    std::cerr << "flowgate audit: error: " << message << "\n";
}

std::string system_error(const std::string& path, const char* what) {
    return path + ": " + what + ": " + std::strerror(errno);
}

// Writes all of `text` to a new file at `path` with mode 0600; "" or what went wrong (the
// file removed again).
std::string write_new_private_file(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            return path + ": exists; a key file is never overwritten (remove it first if the "
                          "key it holds is to be replaced)";
        }
        return system_error(path, "cannot create the key file");
    }
    std::string failure;
    // 0600 whatever the umask.
    if (::fchmod(fd, 0600) != 0) {
        failure = system_error(path, "cannot set mode 0600");
    }
    for (std::size_t written = 0; failure.empty() && written < text.size();) {
        const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            failure = system_error(path, "cannot write the key file");
            break;
        }
        written += static_cast<std::size_t>(n);
    }
    if (failure.empty() && ::fsync(fd) != 0) {
        failure = system_error(path, "cannot write the key file");
    }
    if (::close(fd) != 0 && failure.empty()) {
        failure = system_error(path, "cannot write the key file");
    }
    if (!failure.empty()) {
        ::unlink(path.c_str());
    }
    return failure;
}

int run_keygen(const std::string& name, const std::string& path) {
    auto key = audit::generate_signing_key(name);
    if (!key) {
        report(key.error().message);
        return exit_error;
    }
    if (std::string failure = write_new_private_file(path, key.value().private_key_text() + "\n");
        !failure.empty()) {
        report(failure);
        return exit_error;
    }
    std::cout << audit::format_verifier_key(key.value().verifier()) << "\n";
    std::cerr << "flowgate audit: the private key is in " << path
              << " (mode 0600, keep it secret); the verifier key above is for the auditors\n";
    return exit_allow;
}

int run_verifier_key(const std::string& path) {
    auto file = audit::read_private_key_file(path);
    if (!file) {
        report(file.error().message);
        return exit_error;
    }
    if (file.value().open_to_others()) {
        std::cerr << "flowgate audit: warning: " << path
                  << " can be read by others than its owner (chmod 600 it)\n";
    }
    std::cout << audit::format_verifier_key(file.value().key.verifier()) << "\n";
    return exit_allow;
}

} // namespace

void register_key_commands(CLI::App& audit, Outcome& outcome) {
    auto keygen_name = std::make_shared<std::string>();
    auto keygen_file = std::make_shared<std::string>();
    CLI::App* keygen = audit.add_subcommand(
        "keygen", "Make an Ed25519 key for signing checkpoints: the private key into a new "
                  "file (mode 0600), the verifier key for the auditors on stdout");
    keygen
        ->add_option("NAME", *keygen_name,
                     "The key's name, conventionally the log's origin (host.example/flowgate)")
        ->required();
    keygen
        ->add_option("-o,--output", *keygen_file,
                     "The private key file to create (an existing file is not replaced)")
        ->required();
    keygen->callback([=, &outcome] { outcome.status = run_keygen(*keygen_name, *keygen_file); });

    auto key_file = std::make_shared<std::string>();
    CLI::App* verifier_key = audit.add_subcommand(
        "verifier-key", "Print the verifier key of a private key file made by keygen");
    verifier_key->add_option("KEYFILE", *key_file, "The private key file")->required();
    verifier_key->callback([=, &outcome] { outcome.status = run_verifier_key(*key_file); });
}

} // namespace flowgate::cli
