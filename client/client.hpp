// The client library services link to ask flowgated: one connection to its Unix
// socket, synchronous requests with a timeout, and a pipelined batch call. It speaks
// only the wire protocol (newline-delimited JSON); failures are returned as values.
//
// Two layers: request()/batch() send any request object and hand back the daemon's
// answer as it came (an error answer is still an answer); check(), explain(),
// describe(), status() and reload() build the request and turn an error answer into
// an error of kind daemon_error, so a caller can tell "flowgated said no to the
// request" from "flowgated could not be reached".
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgate::client {

enum class ErrorKind {
    none,
    not_running,  // nothing listens on the socket
    timeout,      // the daemon did not answer in time (the connection is then closed)
    disconnected, // the daemon closed the connection, or this client is not connected
    protocol,     // the answer was not a JSON object, or not the answer to this request
    io,           // another system error (permissions, a path too long, ...)
    daemon_error, // the daemon answered {"error":{"code","message"}}: see code
};

// "not_running", "timeout", ...: for logs and the command line's --json output.
const char* to_string(ErrorKind kind);

struct ClientError {
    ErrorKind kind = ErrorKind::none;
    std::string message;
    // For daemon_error: the daemon's error code ("forbidden", "reload_failed",
    // "missing_field", ...) and its whole answer (a failed reload's "diagnostics").
    std::string code;
    boost::json::object answer;
};

template <typename T> struct Result {
    std::optional<T> value;
    ClientError error;
    explicit operator bool() const { return value.has_value(); }
};

// The socket path from FLOWGATE_SOCKET, else the system default.
std::string default_socket_path();

// One question, as check and explain take it. Names are identifiers or the table's
// labels; empty optional fields are left out of the request.
struct CheckRequest {
    std::string purpose;
    std::string activity; // optional
    std::string recipient;
    std::vector<std::string> data;
    bool receive = false; // an inbound flow: recipient names the sender
    std::string subject;  // pseudonymous reference to the person, optional
    bool consent = false;
    bool objection = false;
    std::string legal_basis; // the legal ground relied on, optional

    // The wire request for op "check" or "explain" (without an id).
    boost::json::object to_json(std::string_view op = "check") const;
};

// The daemon's decision on a check or explain.
struct Decision {
    bool allowed = false;
    std::string reason;
    std::string rule;                     // the deciding rule's id, "" when none decided
    std::string legal_basis;              // the legal basis's id, "" when none
    std::vector<std::string> obligations; // obligation ids the caller must fulfil
    std::string policy;                   // "sha256:…" of the policy that decided
    std::int64_t audit_seq = -1;          // the committed audit row
    boost::json::object answer;           // everything the daemon said (explain: "trace")
};

class Client {
public:
    Client() = default;
    ~Client();
    Client(Client&& other) noexcept;
    Client& operator=(Client&& other) noexcept;
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Connects to flowgated's socket; `timeout` bounds every later answer.
    static Result<Client> connect(const std::string& socket_path,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // As connect, on default_socket_path().
    static Result<Client>
    connect_default(std::chrono::milliseconds timeout = std::chrono::seconds(5));

    // Sends one request object and waits for its answer (an object with "id" and the
    // answer, or with "error"). A request without "id" gets one.
    Result<boost::json::object> request(boost::json::object request);

    // Pipelines the requests (sends them without waiting for answers, reading as it
    // goes so neither side's buffer stalls the other); answers come back in order.
    // A daemon that closes the connection is still read to the end: the answers it sent
    // are taken, and a refusal it sent before closing (too_many_connections to a client
    // beyond its limit) is the answer to the first request, or, with requests left
    // unanswered, a daemon_error with its code — not a "Broken pipe".
    Result<std::vector<boost::json::object>> batch(std::vector<boost::json::object> requests);

    Result<Decision> check(const CheckRequest& question);
    Result<Decision> explain(const CheckRequest& question);
    // The loaded policy's vocabulary (purposes, parties, categories) and "policy".
    Result<boost::json::object> describe();
    // Version, "policy", uptime, "counters", "audit".
    Result<boost::json::object> status();
    // Admins only: the new policy's hash. A bad policy is a daemon_error
    // "reload_failed" whose answer holds the diagnostics; the old policy keeps serving.
    Result<std::string> reload();

    // False before connect, and after a timeout or a lost connection: an answer that
    // arrives late could otherwise be taken for the next request's.
    bool connected() const { return m_fd >= 0; }
    void set_timeout(std::chrono::milliseconds timeout) { m_timeout = timeout; }

private:
    // One complete answer line from the buffer, if there is one.
    std::optional<Result<boost::json::object>> take_answer();
    // Sends op-only or built requests and turns an error answer into daemon_error.
    Result<boost::json::object> ask(boost::json::object request);
    Result<Decision> decide(const CheckRequest& question, std::string_view op);
    // Closes the connection and remembers why, for the calls that follow.
    ClientError lose_connection(ClientError error);

    int m_fd = -1;
    std::chrono::milliseconds m_timeout{5000};
    std::string m_buffer;
    std::uint64_t m_next_id = 1;
    std::string m_socket_path;
    std::string m_lost_because; // why the connection was closed, "" if never connected
};

} // namespace flowgate::client
