// The synchronous client over plain POSIX sockets; see client.hpp.
#include "client/client.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace flowgate::client {
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

ClientError system_error(ErrorKind kind, const std::string& what) {
    return {kind, what + ": " + std::strerror(errno), {}, {}};
}

// "what (reason)", for errors whose errno only explains the main message.
ClientError system_error_aside(ErrorKind kind, const std::string& what) {
    return {kind, what + " (" + std::strerror(errno) + ")", {}, {}};
}

// Rounded up, so that a wait never ends before its deadline.
int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

std::string string_field(const json::object& object, std::string_view key) {
    const json::value* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->as_string()) : "";
}

// The "id" of an {"id":…,"label":…} object, or the string itself.
std::string id_of(const json::value* value) {
    if (value == nullptr) {
        return "";
    }
    if (value->is_string()) {
        return std::string(value->as_string());
    }
    return value->is_object() ? string_field(value->as_object(), "id") : "";
}

// The daemon's {"error":{"code","message"}} as a ClientError, if the answer is one.
std::optional<ClientError> error_in(const json::object& answer) {
    const json::value* error = answer.if_contains("error");
    if (error == nullptr) {
        return std::nullopt;
    }
    ClientError out{ErrorKind::daemon_error, "", "", answer};
    if (error->is_object()) {
        out.code = string_field(error->as_object(), "code");
        out.message = string_field(error->as_object(), "message");
    }
    if (out.code.empty()) {
        out.code = "unknown";
    }
    out.message =
        "flowgated answered " + out.code + (out.message.empty() ? "" : ": ") + out.message;
    return out;
}

// Why the daemon closed a connection with `unanswered` requests still owed: its own
// reason when the last thing it said was an error about the connection rather than about
// a request (no id: too_many_connections, line_too_long), else that it closed.
ClientError closed_with(const std::vector<json::object>& answers, std::size_t unanswered) {
    const std::string closed = "flowgated closed the connection with " +
                               std::to_string(unanswered) + " request(s) unanswered";
    if (!answers.empty()) {
        const json::value* id = answers.back().if_contains("id");
        if (id == nullptr || id->is_null()) {
            if (auto error = error_in(answers.back())) {
                error->message += " (" + closed + ")";
                return std::move(*error);
            }
        }
    }
    return {ErrorKind::disconnected, closed, {}, {}};
}

Decision decision_from(json::object answer) {
    Decision decision;
    decision.allowed = string_field(answer, "decision") == "allow";
    decision.reason = string_field(answer, "reason");
    decision.rule = id_of(answer.if_contains("rule"));
    decision.legal_basis = id_of(answer.if_contains("legal_basis"));
    if (const json::value* obligations = answer.if_contains("obligations");
        obligations != nullptr && obligations->is_array()) {
        for (const json::value& obligation : obligations->as_array()) {
            decision.obligations.push_back(id_of(&obligation));
        }
    }
    decision.policy = string_field(answer, "policy");
    if (const json::value* seq = answer.if_contains("audit_seq");
        seq != nullptr && seq->is_int64()) {
        decision.audit_seq = seq->as_int64();
    }
    decision.answer = std::move(answer);
    return decision;
}

} // namespace

const char* to_string(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::none:
        return "none";
    case ErrorKind::not_running:
        return "not_running";
    case ErrorKind::timeout:
        return "timeout";
    case ErrorKind::disconnected:
        return "disconnected";
    case ErrorKind::protocol:
        return "protocol";
    case ErrorKind::io:
        return "io";
    case ErrorKind::daemon_error:
        return "daemon_error";
    }
    return "unknown";
}

std::string default_socket_path() {
    const char* from_env = std::getenv("FLOWGATE_SOCKET");
    return from_env != nullptr && *from_env != '\0' ? from_env : "/run/flowgate/flowgate.sock";
}

json::object CheckRequest::to_json(std::string_view op) const {
    json::array categories;
    for (const std::string& category : data) {
        categories.emplace_back(category);
    }
    json::object request{{"op", op}, {"purpose", purpose}};
    if (!activity.empty()) {
        request["activity"] = activity;
    }
    request["recipient"] = recipient;
    request["data"] = std::move(categories);
    request["direction"] = receive ? "receive" : "send";
    if (!subject.empty()) {
        request["subject"] = subject;
    }
    json::object context{{"consent", consent}, {"objection", objection}};
    if (!legal_basis.empty()) {
        context["legal_basis"] = legal_basis;
    }
    request["context"] = std::move(context);
    return request;
}

Client::~Client() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

Client::Client(Client&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_timeout(other.m_timeout),
      m_buffer(std::move(other.m_buffer)), m_next_id(other.m_next_id),
      m_socket_path(std::move(other.m_socket_path)),
      m_lost_because(std::move(other.m_lost_because)) {}

Client& Client::operator=(Client&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = std::exchange(other.m_fd, -1);
        m_timeout = other.m_timeout;
        m_buffer = std::move(other.m_buffer);
        m_next_id = other.m_next_id;
        m_socket_path = std::move(other.m_socket_path);
        m_lost_because = std::move(other.m_lost_because);
    }
    return *this;
}

Result<Client> Client::connect(const std::string& socket_path, std::chrono::milliseconds timeout) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof address.sun_path) {
        return {std::nullopt, {ErrorKind::io, "socket path too long: " + socket_path, {}, {}}};
    }
    std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return {std::nullopt, system_error(ErrorKind::io, "socket")};
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        int saved = errno;
        ::close(fd);
        errno = saved;
        if (saved == ENOENT || saved == ECONNREFUSED) {
            return {std::nullopt, system_error_aside(ErrorKind::not_running,
                                                     "flowgated is not running at " + socket_path)};
        }
        return {std::nullopt,
                system_error(ErrorKind::io, "cannot connect to flowgated at " + socket_path)};
    }
    Client client;
    client.m_fd = fd;
    client.m_timeout = timeout;
    client.m_socket_path = socket_path;
    return {std::move(client), {}};
}

Result<Client> Client::connect_default(std::chrono::milliseconds timeout) {
    return connect(default_socket_path(), timeout);
}

ClientError Client::lose_connection(ClientError error) {
    if (m_fd >= 0) {
        ::close(m_fd);
        m_fd = -1;
    }
    m_buffer.clear();
    m_lost_because = error.message;
    return error;
}

std::optional<Result<json::object>> Client::take_answer() {
    auto newline = m_buffer.find('\n');
    if (newline == std::string::npos) {
        return std::nullopt;
    }
    boost::system::error_code error;
    json::value answer = json::parse(std::string_view(m_buffer).substr(0, newline), error);
    m_buffer.erase(0, newline + 1);
    if (error || !answer.is_object()) {
        return Result<json::object>{std::nullopt,
                                    {ErrorKind::protocol,
                                     "flowgated answered something that is not a JSON object",
                                     {},
                                     {}}};
    }
    return Result<json::object>{std::move(answer.as_object()), {}};
}

Result<json::object> Client::request(json::object request) {
    auto answers = batch({std::move(request)});
    if (!answers) {
        return {std::nullopt, std::move(answers.error)};
    }
    return {std::move(answers.value->front()), {}};
}

Result<std::vector<json::object>> Client::batch(std::vector<json::object> requests) {
    if (m_fd < 0) {
        std::string message = "not connected to flowgated";
        if (!m_lost_because.empty()) {
            message += " at " + m_socket_path + ": the connection was closed after \"" +
                       m_lost_because + "\"; connect again";
        }
        return {std::nullopt, {ErrorKind::disconnected, message, {}, {}}};
    }
    std::string bytes;
    for (json::object& request : requests) {
        if (!request.contains("id")) {
            request["id"] = m_next_id++;
        }
        bytes += json::serialize(request);
        bytes += '\n';
    }
    // Send and receive together: a large batch must not fill both directions' buffers
    // while neither side reads. Once the daemon has closed its end (a write fails), what
    // it wrote before closing is still read: the answers it owed, or its reason for
    // closing (too_many_connections, line_too_long), which must not become "Broken pipe".
    std::vector<json::object> answers;
    answers.reserve(requests.size());
    std::size_t sent = 0;
    bool writing = true;
    auto deadline = Clock::now() + m_timeout;
    while (answers.size() < requests.size()) {
        if (auto answer = take_answer()) {
            if (!*answer) {
                return {std::nullopt, lose_connection(std::move(answer->error))};
            }
            // An answer for another request means the two sides no longer agree on
            // which answer is whose; nothing after it can be trusted.
            const json::value& expected = requests[answers.size()].at("id");
            const json::value* echoed = answer->value->if_contains("id");
            if (echoed != nullptr && !echoed->is_null() && *echoed != expected) {
                return {
                    std::nullopt,
                    lose_connection({ErrorKind::protocol,
                                     "flowgated answered id " + json::serialize(*echoed) +
                                         " where id " + json::serialize(expected) + " was expected",
                                     {},
                                     {}})};
            }
            answers.push_back(std::move(*answer->value));
            deadline = Clock::now() + m_timeout;
            continue;
        }
        const bool to_send = writing && sent < bytes.size();
        pollfd waiting{m_fd, static_cast<short>(POLLIN | (to_send ? POLLOUT : 0)), 0};
        int ready = ::poll(&waiting, 1, remaining_ms(deadline));
        if (ready == 0 && Clock::now() >= deadline) {
            return {std::nullopt, lose_connection({ErrorKind::timeout,
                                                   "flowgated did not answer within " +
                                                       std::to_string(m_timeout.count()) + " ms",
                                                   {},
                                                   {}})};
        }
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            return {std::nullopt, lose_connection(system_error(ErrorKind::io, "poll"))};
        }
        if ((waiting.revents & POLLOUT) != 0 && to_send) {
            ssize_t n =
                ::send(m_fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
                writing = false; // the daemon closed: read what it said before it did
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return {std::nullopt,
                        lose_connection(system_error_aside(ErrorKind::disconnected,
                                                           "flowgated closed the connection"))};
            }
            sent += n > 0 ? static_cast<std::size_t>(n) : 0;
        }
        if ((waiting.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            char chunk[65536];
            ssize_t n = ::recv(m_fd, chunk, sizeof chunk, MSG_DONTWAIT);
            // A reset comes only after the bytes the daemon sent have been read.
            if (n == 0 || (n < 0 && errno == ECONNRESET)) {
                return {std::nullopt,
                        lose_connection(closed_with(answers, requests.size() - answers.size()))};
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return {std::nullopt,
                        lose_connection(system_error_aside(ErrorKind::disconnected,
                                                           "flowgated closed the connection"))};
            }
            m_buffer.append(chunk, n > 0 ? static_cast<std::size_t>(n) : 0);
        }
    }
    return {std::move(answers), {}};
}

Result<json::object> Client::ask(json::object request) {
    auto answer = this->request(std::move(request));
    if (!answer) {
        return answer;
    }
    if (auto error = error_in(*answer.value)) {
        return {std::nullopt, std::move(*error)};
    }
    return answer;
}

Result<Decision> Client::decide(const CheckRequest& question, std::string_view op) {
    auto answer = ask(question.to_json(op));
    if (!answer) {
        return {std::nullopt, std::move(answer.error)};
    }
    return {decision_from(std::move(*answer.value)), {}};
}

Result<Decision> Client::check(const CheckRequest& question) {
    return decide(question, "check");
}

Result<Decision> Client::explain(const CheckRequest& question) {
    return decide(question, "explain");
}

Result<json::object> Client::describe() {
    return ask(json::object{{"op", "describe"}});
}

Result<json::object> Client::status() {
    return ask(json::object{{"op", "status"}});
}

Result<std::string> Client::reload() {
    auto answer = ask(json::object{{"op", "reload"}});
    if (!answer) {
        return {std::nullopt, std::move(answer.error)};
    }
    return {string_field(*answer.value, "policy"), {}};
}

} // namespace flowgate::client
