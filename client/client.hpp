// The client library services link to ask flowgated: one connection to its Unix
// socket, synchronous requests with a timeout, and a pipelined batch call. It speaks
// only the wire protocol (newline-delimited JSON); failures are returned as values.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace flowgate::client {

enum class ErrorKind {
    none,
    not_running,  // nothing listens on the socket
    timeout,      // the daemon did not answer in time
    disconnected, // the daemon closed the connection
    protocol,     // the answer was not a JSON object
    io,           // another system error
};

struct ClientError {
    ErrorKind kind = ErrorKind::none;
    std::string message;
};

template <typename T> struct Result {
    std::optional<T> value;
    ClientError error;
    explicit operator bool() const { return value.has_value(); }
};

// The socket path from FLOWGATE_SOCKET, else the system default.
std::string default_socket_path();

class Client {
public:
    Client() = default;
    ~Client();
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    static Result<Client> connect(const std::string& socket_path,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

    // Sends one request object and waits for its answer (an object with "id" and the
    // answer, or with "error"). A request without "id" gets one.
    Result<boost::json::object> request(boost::json::object request);

    // Sends every request before reading any answer; answers come back in order.
    Result<std::vector<boost::json::object>> batch(std::vector<boost::json::object> requests);

    void set_timeout(std::chrono::milliseconds timeout) { m_timeout = timeout; }

private:
    // One complete answer line from the buffer, if there is one.
    std::optional<Result<boost::json::object>> take_answer();

    int m_fd = -1;
    std::chrono::milliseconds m_timeout{5000};
    std::string m_buffer;
    std::uint64_t m_next_id = 1;
};

} // namespace flowgate::client
