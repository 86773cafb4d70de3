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
    return {kind, what + ": " + std::strerror(errno)};
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

} // namespace

std::string default_socket_path() {
    const char* from_env = std::getenv("FLOWGATE_SOCKET");
    return from_env != nullptr && *from_env != '\0' ? from_env : "/run/flowgate/flowgate.sock";
}

Client::~Client() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

Client::Client(Client&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_timeout(other.m_timeout),
      m_buffer(std::move(other.m_buffer)), m_next_id(other.m_next_id) {}

Client& Client::operator=(Client&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = std::exchange(other.m_fd, -1);
        m_timeout = other.m_timeout;
        m_buffer = std::move(other.m_buffer);
        m_next_id = other.m_next_id;
    }
    return *this;
}

Result<Client> Client::connect(const std::string& socket_path, std::chrono::milliseconds timeout) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof address.sun_path) {
        return {std::nullopt, {ErrorKind::io, "socket path too long: " + socket_path}};
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
        ErrorKind kind =
            saved == ENOENT || saved == ECONNREFUSED ? ErrorKind::not_running : ErrorKind::io;
        return {std::nullopt, system_error(kind, "cannot connect to flowgated at " + socket_path)};
    }
    Client client;
    client.m_fd = fd;
    client.m_timeout = timeout;
    return {std::move(client), {}};
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
        return Result<json::object>{
            std::nullopt,
            {ErrorKind::protocol, "flowgated answered something that is not a JSON object"}};
    }
    return Result<json::object>{std::move(answer.as_object()), {}};
}

Result<json::object> Client::request(json::object request) {
    auto answers = batch({std::move(request)});
    if (!answers) {
        return {std::nullopt, answers.error};
    }
    return {std::move(answers.value->front()), {}};
}

Result<std::vector<json::object>> Client::batch(std::vector<json::object> requests) {
    if (m_fd < 0) {
        return {std::nullopt, {ErrorKind::not_running, "not connected"}};
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
    // while neither side reads.
    std::vector<json::object> answers;
    answers.reserve(requests.size());
    std::size_t sent = 0;
    auto deadline = Clock::now() + m_timeout;
    while (answers.size() < requests.size()) {
        if (auto answer = take_answer()) {
            if (!*answer) {
                return {std::nullopt, answer->error};
            }
            answers.push_back(std::move(*answer->value));
            deadline = Clock::now() + m_timeout;
            continue;
        }
        pollfd waiting{m_fd, static_cast<short>(POLLIN | (sent < bytes.size() ? POLLOUT : 0)), 0};
        int ready = ::poll(&waiting, 1, remaining_ms(deadline));
        if (ready == 0) {
            return {std::nullopt,
                    {ErrorKind::timeout, "flowgated did not answer within " +
                                             std::to_string(m_timeout.count()) + " ms"}};
        }
        if (ready < 0) {
            if (errno == EINTR) {
                continue;
            }
            return {std::nullopt, system_error(ErrorKind::io, "poll")};
        }
        if ((waiting.revents & POLLOUT) != 0 && sent < bytes.size()) {
            ssize_t n =
                ::send(m_fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return {std::nullopt, system_error(ErrorKind::disconnected, "send")};
            }
            sent += n > 0 ? static_cast<std::size_t>(n) : 0;
        }
        if ((waiting.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            char chunk[65536];
            ssize_t n = ::recv(m_fd, chunk, sizeof chunk, MSG_DONTWAIT);
            if (n == 0) {
                return {std::nullopt, {ErrorKind::disconnected, "flowgated closed the connection"}};
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return {std::nullopt, system_error(ErrorKind::disconnected, "recv")};
            }
            m_buffer.append(chunk, n > 0 ? static_cast<std::size_t>(n) : 0);
        }
    }
    return {std::move(answers), {}};
}

} // namespace flowgate::client
