// The load pipeline: read, parse, check, compile; see policy_loader.hpp.
#include "policy_loader.hpp"

#include "checker.hpp"
#include "parser.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace flowgate::dsl {

namespace fs = std::filesystem;

namespace {

Diagnostic file_error(std::string file, std::string message) {
    Diagnostic diagnostic;
    diagnostic.file = std::move(file);
    diagnostic.message = std::move(message);
    return diagnostic;
}

// An open descriptor, closed when it goes.
class Descriptor {
public:
    explicit Descriptor(int fd) : m_fd(fd) {}
    ~Descriptor() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    int get() const { return m_fd; }

private:
    int m_fd;
};

// What a file that is not a regular one is, for the diagnostic.
const char* file_kind(mode_t mode) {
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    return "not a regular file";
}

std::string too_big(std::size_t limit) {
    return "this file is larger than " + std::to_string(limit) +
           " bytes, the room the policy has left (a policy may hold at most " +
           std::to_string(max_policy_bytes) + " bytes, all its files together)";
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

std::optional<std::string> read_policy_file(const fs::path& path, Diagnostics& diagnostics,
                                            std::size_t limit) {
    auto fail = [&](std::string message) {
        diagnostics.push_back(file_error(path.string(), std::move(message)));
        return std::nullopt;
    };
    Descriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0) {
        return fail(std::string("cannot open this file: ") + std::strerror(errno));
    }
    struct stat status {};
    if (::fstat(fd.get(), &status) != 0) {
        return fail(std::string("cannot examine this file: ") + std::strerror(errno));
    }
    if (!S_ISREG(status.st_mode)) {
        return fail(std::string("this is ") + file_kind(status.st_mode) +
                    ", not a regular file; only regular files are read as policy files");
    }
    if (static_cast<std::uintmax_t>(status.st_size) > limit) {
        return fail(too_big(limit));
    }
    // The size is read as it was at fstat; a file that grows meanwhile is read up to the
    // limit and one byte more, to tell.
    std::string text(static_cast<std::size_t>(status.st_size), '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == text.size()) {
            if (text.size() > limit) {
                return fail(too_big(limit));
            }
            text.resize(std::min(limit + 1, std::max<std::size_t>(text.size() * 2, 4096)));
        }
        ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail(std::string("cannot read this file: ") + std::strerror(errno));
        }
        if (n == 0) {
            break;
        }
        used += static_cast<std::size_t>(n);
    }
    if (used > limit) {
        return fail(too_big(limit));
    }
    text.resize(used);
    return text;
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
    std::size_t left = max_policy_bytes;
    for (const fs::path& file : paths) {
        std::optional<std::string> text = read_policy_file(file, failures.diagnostics, left);
        if (!text) {
            continue;
        }
        left -= text->size();
        files.push_back(PolicyText{file.string(), std::move(*text)});
    }
    if (!failures.diagnostics.empty()) {
        return failures;
    }
    return load_policy(std::move(files));
}

} // namespace flowgate::dsl
