// The Unix-socket server: accepts clients, reads newline-delimited requests with a
// size limit, hands each line to the protocol layer, and writes the answers back in
// request order (pipelining). It knows nothing of policies or the audit store; the
// protocol layer answers through a callback, on the serving thread.
#pragma once

#include "daemon/config.hpp"
#include "daemon/log_throttle.hpp"
#include "daemon/socket_file.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <unordered_map>
#include <unordered_set>

namespace flowgate::daemon {

// The caller, as the kernel reports it (SO_PEERCRED), never as the request claims. A
// connection whose credentials cannot be read is not served; the defaults are no one.
struct Peer {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    pid_t pid = -1;
};

class Session;

// Where one request's answer goes: its place in its session's queue of answers, which
// the session writes in request order. Called exactly once per request with the answer
// line (no trailing newline), on the serving thread (the io_context's). It keeps the
// session alive until then.
class Answer {
public:
    Answer(std::shared_ptr<Session> session, std::uint64_t index)
        : m_session(std::move(session)), m_index(index) {}
    void operator()(std::string answer) const;

private:
    std::shared_ptr<Session> m_session;
    std::uint64_t m_index;
};

// The protocol layer, as the server sees it.
class LineHandler {
public:
    virtual ~LineHandler() = default;
    // A complete line; true when it is refused as not understood (the connection is
    // closed once it has sent max_refused_lines of those).
    virtual bool on_line(std::string_view line, const Peer& peer, Answer answer) = 0;
    // A line longer than the limit: `received` is what was read of it before it was
    // refused (more than the limit, at most one read more). The connection is closed
    // after this answer.
    virtual void on_oversized_line(std::string_view received, const Peer& peer, Answer answer) = 0;
    // A line not completed within line_timeout (`received`: what came of it): the
    // connection is closed after this answer.
    virtual void on_late_line(std::string_view received, const Peer& peer, Answer answer) = 0;
    // The connection sent `refused` lines that could not be understood: it is closed
    // after this answer.
    virtual void on_too_many_refused(std::size_t refused, const Peer& peer, Answer answer) = 0;
    // A client refused because too many are connected, in all or (`per_uid`) of its uid;
    // not answered through a session.
    virtual std::string too_many_connections_answer(const Peer* per_uid) = 0;
};

class Server {
public:
    Server(boost::asio::io_context& io, Limits limits, LineHandler& handler);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds PATH, then applies mode and group. Refuses a PATH that is not a socket or on
    // which another process listens; replaces only a stale socket (SocketFile). At the
    // end the file is removed if it is still the one bound.
    std::optional<std::string> listen(const std::string& path, std::optional<std::uint32_t> mode,
                                      const std::string& group);
    // Takes over a listening socket passed by systemd (socket activation).
    std::optional<std::string> adopt(int fd);

    void start();
    // Stops accepting; every session stops reading, answers what it has received, and
    // closes. `on_drained` runs once no session is left.
    void stop(std::function<void()> on_drained);

    std::size_t connections() const { return m_sessions.size(); }
    // Connections refused: too many in all or for their uid, no credentials, or no
    // descriptor left to serve them.
    std::uint64_t accepted() const { return m_accepted; }
    std::uint64_t refused() const { return m_refused; }

private:
    friend class Session;
    void session_ended(Session* session);
    boost::asio::awaitable<void> accept_loop();
    // Accepts and turns away the connection that found no descriptor left (EMFILE),
    // with the descriptor held in reserve for that; false if none could be accepted.
    bool refuse_without_descriptor();
    void refuse(boost::asio::local::stream_protocol::socket& socket, const std::string& answer);

    boost::asio::io_context& m_io;
    Limits m_limits;
    LineHandler& m_handler;
    boost::asio::local::stream_protocol::acceptor m_acceptor;
    SocketFile m_socket_file;
    std::unordered_set<Session*> m_sessions;
    std::unordered_map<uid_t, std::size_t> m_per_uid; // open connections by uid
    int m_spare_fd = -1;       // /dev/null, closed to accept one connection when out of descriptors
    LogThrottle m_refused_log; // connections refused
    LogThrottle m_accept_log;  // accept() failing
    LogThrottle m_not_reading_log; // clients cut off for not reading their answers
    LogThrottle m_late_line_log;   // clients cut off for not finishing a line
    std::function<void()> m_on_drained;
    bool m_stopping = false;
    std::uint64_t m_accepted = 0;
    std::uint64_t m_refused = 0;
};

} // namespace flowgate::daemon
