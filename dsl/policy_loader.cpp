// The load pipeline: read, parse, check, compile; see policy_loader.hpp.
#include "policy_loader.hpp"

#include "checker.hpp"
#include "parser.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

namespace flowgate::dsl {

namespace fs = std::filesystem;

namespace {

Diagnostic file_error(std::string file, std::string message) {
    Diagnostic diagnostic;
    diagnostic.file = std::move(file);
    diagnostic.message = std::move(message);
    return diagnostic;
}

bool read_file(const fs::path& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return false;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    out = std::move(buffer).str();
    return !in.bad();
}

// Whether an entry of a policy directory is one of its files; see policy_files().
bool is_policy_file(const fs::directory_entry& entry) {
    if (entry.path().extension() != ".policy") {
        return false;
    }
    // A link that leads nowhere, or a target that cannot be examined, has no type to go
    // by: it is kept, and reading it reports it.
    std::error_code no_type;
    fs::file_status target = entry.status(no_type);
    return fs::is_regular_file(target) || !fs::exists(target);
}

} // namespace

std::optional<std::vector<fs::path>> policy_files(const fs::path& path) {
    std::error_code error;
    if (!fs::is_directory(path, error)) {
        return std::vector<fs::path>{path};
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(path, error); it != fs::directory_iterator();
         it.increment(error)) {
        if (is_policy_file(*it)) {
            files.push_back(it->path());
        }
    }
    if (error) {
        return std::nullopt;
    }
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
        return a.filename().string() < b.filename().string();
    });
    return files;
}

std::string policy_hash(const std::vector<PolicyText>& files) {
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    EVP_DigestInit_ex(context, EVP_sha256(), nullptr);
    for (const PolicyText& file : files) {
        std::string header = fs::path(file.name).filename().string() + '\n' +
                             std::to_string(file.text.size()) + '\n';
        EVP_DigestUpdate(context, header.data(), header.size());
        EVP_DigestUpdate(context, file.text.data(), file.text.size());
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context, digest, &length);
    EVP_MD_CTX_free(context);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xF];
    }
    return out;
}

LoadResult load_policy(std::vector<PolicyText> files) {
    LoadResult result;
    std::string hash = policy_hash(files);
    SourceSet sources;
    for (PolicyText& file : files) {
        sources.add(std::move(file.name), std::move(file.text));
    }
    std::vector<ast::File> parsed(sources.size());
    for (std::uint32_t i = 0; i < sources.size(); ++i) {
        parse_file(sources, i, parsed[i], result.diagnostics);
    }
    if (!result.diagnostics.empty()) {
        // Check what did parse too, so one run shows every error; the checker leaves out
        // the unknown names that the dropped declarations may explain.
        CheckResult checked = check(sources, parsed, true);
        if (auto* diagnostics = std::get_if<Diagnostics>(&checked)) {
            result.diagnostics.insert(result.diagnostics.end(), diagnostics->begin(),
                                      diagnostics->end());
        }
        sort_diagnostics(result.diagnostics);
        return result;
    }
    CheckResult checked = check(sources, parsed);
    if (auto* diagnostics = std::get_if<Diagnostics>(&checked)) {
        result.diagnostics = std::move(*diagnostics);
        return result;
    }
    result.policy =
        compile(std::move(std::get<CheckedPolicy>(checked)), std::move(sources), std::move(hash));
    return result;
}

LoadResult load_policy(const fs::path& path) {
    std::error_code error;
    if (!fs::exists(path, error)) {
        return {nullptr, {file_error(path.string(), "no such file or directory")}};
    }
    // Only a directory can name no files; one that cannot be listed is reported alike.
    std::vector<fs::path> paths = policy_files(path).value_or(std::vector<fs::path>());
    if (paths.empty()) {
        return {nullptr, {file_error(path.string(), "no *.policy files in this directory")}};
    }
    std::vector<PolicyText> files;
    LoadResult failures;
    for (const fs::path& file : paths) {
        PolicyText text{file.string(), {}};
        if (!read_file(file, text.text)) {
            failures.diagnostics.push_back(file_error(file.string(), "cannot read this file"));
        }
        files.push_back(std::move(text));
    }
    if (!failures.diagnostics.empty()) {
        return failures;
    }
    return load_policy(std::move(files));
}

} // namespace flowgate::dsl
