// Reading the auditor's documents and keys; see audit_inputs.hpp.
#include "cli/audit_inputs.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <system_error>

namespace flowgate::cli {

InputResult<std::string> read_input(const std::string& path, std::size_t max_bytes) {
    std::ifstream file;
    if (path != "-") {
        file.open(path, std::ios::binary);
        if (!file) {
            return InputError{path + ": cannot open: " + std::strerror(errno)};
        }
    }
    std::istream& in = path == "-" ? std::cin : file;
    const std::string name = path == "-" ? "the standard input" : path;
    std::string text;
    char buffer[65536];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
        text.append(buffer, static_cast<std::size_t>(in.gcount()));
        if (text.size() > max_bytes) {
            return InputError{name + " is longer than " + std::to_string(max_bytes) + " bytes"};
        }
    }
    if (in.bad()) {
        return InputError{name + ": cannot read"};
    }
    return text;
}

InputResult<audit::VerifierKey> read_verifier_key(const std::string& argument) {
    auto key = audit::parse_verifier_key(argument);
    if (key) {
        return key.value();
    }
    std::error_code error;
    if (argument.find('+') != std::string::npos && !std::filesystem::exists(argument, error)) {
        return InputError{"--key: " + key.error().message};
    }
    auto text = read_input(argument, 4096);
    if (!text) {
        return InputError{"--key: " + text.error().message};
    }
    auto from_file = audit::parse_verifier_key(text.value());
    if (!from_file) {
        return InputError{"--key: " + argument + ": " + from_file.error().message};
    }
    return from_file.value();
}

void report_error(const std::string& message) {
    std::cerr << "flowgate audit: error: " << message << "\n";
}

std::unique_ptr<audit::AuditReader> open_or_report(const std::string& path) {
    auto reader = audit::AuditReader::open(path);
    if (!reader) {
        report_error(reader.error().message);
        return nullptr;
    }
    return std::move(reader).value();
}

std::optional<OpenedLog> open_log_or_report(const std::string& path) {
    auto reader = open_or_report(path);
    if (!reader) {
        return std::nullopt;
    }
    auto last = reader->last_seq();
    if (!last) {
        report_error(last.error().message);
        return std::nullopt;
    }
    return OpenedLog{std::move(reader), last.value()};
}

} // namespace flowgate::cli
