// The listener and the per-client session; see server.hpp. One io_context thread runs
// all of it: a session owns its socket, two timers and its queue of answers, and is
// kept alive by its two coroutines (reader and writer).
#include "daemon/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace flowgate::daemon {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::local::stream_protocol;
constexpr auto tuple_awaitable = asio::as_tuple(use_awaitable);
using Clock = std::chrono::steady_clock;

namespace {

// The caller as the kernel reports it; nullopt when it does not, for then nothing can
// be known of the caller (least of all that it is not root) and it is not served.
std::optional<Peer> peer_of(stream_protocol::socket& socket, std::string& error) {
    ucred credentials{};
    socklen_t size = sizeof credentials;
    if (getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    if (size != sizeof credentials) {
        error = "short answer";
        return std::nullopt;
    }
    return Peer{credentials.uid, credentials.gid, credentials.pid};
}

// Whether a line (without its newline) is longer than `limit`. The "\r" of a "\r\n"
// line end is not the request's: it does not count. A line still incomplete may end in
// the "\r" whose "\n" has not arrived yet.
bool exceeds(std::string_view line, std::size_t limit) {
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    return line.size() > limit;
}

} // namespace

class Session : public std::enable_shared_from_this<Session> {
public:
    friend class Answer;
    Session(Server& server, stream_protocol::socket socket, const Peer& peer)
        : m_server(server), m_socket(std::move(socket)), m_wake(m_socket.get_executor()),
          m_idle(m_socket.get_executor()), m_watch(m_socket.get_executor()), m_peer(peer) {
        m_wake.expires_at(asio::steady_timer::time_point::max());
    }
    ~Session() { m_server.session_ended(this); }

    void start() {
        m_server.m_sessions.insert(this);
        asio::co_spawn(
            m_socket.get_executor(), [self = shared_from_this()] { return self->read_requests(); },
            asio::detached);
        asio::co_spawn(
            m_socket.get_executor(), [self = shared_from_this()] { return self->write_answers(); },
            asio::detached);
        asio::co_spawn(
            m_socket.get_executor(), [self = shared_from_this()] { return self->watch(); },
            asio::detached);
    }

    // Stops reading new requests; what was received is still answered.
    void stop_reading() {
        m_stopping = true;
        m_idle.cancel();
        boost::system::error_code ignored;
        m_socket.shutdown(stream_protocol::socket::shutdown_receive, ignored); // ends a read
    }

private:
    struct Slot {
        std::string answer;
        bool ready = false;
    };

    // Called through an Answer: fills the request's place in the queue.
    void set_answer(std::uint64_t index, std::string answer) {
        Slot& slot = m_pending[static_cast<std::size_t>(index - m_first_pending)];
        slot.answer = std::move(answer);
        slot.ready = true;
        m_wake.cancel();
    }

    Answer next_answer() {
        m_pending.emplace_back();
        return Answer(shared_from_this(), m_first_pending + m_pending.size() - 1);
    }

    // Hands each complete line to the protocol. Every line already received is served
    // before the next read, so a pipelining client costs one read per chunk, not per
    // request.
    awaitable<void> read_requests() {
        const Limits& limits = m_server.m_limits;
        std::string buffer;
        std::vector<char> chunk(64 * 1024);
        std::size_t scanned = 0; // a prefix of buffer known to hold no newline
        bool oversized = false;
        while (!m_stopping) {
            std::size_t consumed = 0;
            bool partial_line_left = false; // false: stopped by the limit on pending answers
            while (m_pending.size() < limits.max_pending_answers) {
                std::size_t newline = buffer.find('\n', std::max(consumed, scanned));
                if (newline == std::string::npos) {
                    partial_line_left = true;
                    break;
                }
                std::string_view line(buffer.data() + consumed, newline - consumed);
                consumed = newline + 1;
                if (exceeds(line, limits.max_line_bytes)) {
                    oversized = true;
                    refuse_oversized(line);
                    break;
                }
                serve_line(line);
            }
            if (oversized) {
                break;
            }
            buffer.erase(0, consumed);
            scanned = partial_line_left ? buffer.size() : 0;
            if (partial_line_left && exceeds(buffer, limits.max_line_bytes)) {
                refuse_oversized(buffer);
                break;
            }
            if (m_pending.size() >= limits.max_pending_answers) {
                // The client is not reading its answers: read no more until it does (the
                // writer wakes us) or the writer gives up on it.
                m_throttled = true;
                m_idle.expires_after(limits.write_timeout);
                co_await m_idle.async_wait(tuple_awaitable);
                m_throttled = false;
                continue;
            }
            // The watchdog ends a read that waits too long (see watch()).
            m_read_since = Clock::now();
            m_reading = true;
            auto [error, length] =
                co_await m_socket.async_read_some(asio::buffer(chunk), tuple_awaitable);
            m_reading = false;
            if (error || m_stopping) {
                break; // end of stream, reset, idle or stopping
            }
            buffer.append(chunk.data(), length);
        }
        m_reading_done = true;
        m_wake.cancel();
    }

    void serve_line(std::string_view line) {
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.find_first_not_of(" \t") == std::string_view::npos) {
            return; // a blank line is no request: `echo | socat` sends one
        }
        m_server.m_handler.on_line(line, m_peer, next_answer());
    }

    // The answer to a line over the limit is the last: the connection closes after it.
    void refuse_oversized(std::string_view line) {
        m_server.m_handler.on_oversized_line(line, m_peer, next_answer());
    }

    awaitable<void> write_answers() {
        std::string out;
        for (;;) {
            if (m_pending.empty() || !m_pending.front().ready) {
                if (m_reading_done && m_pending.empty()) {
                    break;
                }
                m_wake.expires_at(asio::steady_timer::time_point::max());
                co_await m_wake.async_wait(tuple_awaitable);
                continue;
            }
            out.clear();
            while (!m_pending.empty() && m_pending.front().ready) {
                out += m_pending.front().answer;
                out += '\n';
                m_pending.pop_front();
                ++m_first_pending;
            }
            if (m_throttled) {
                m_idle.cancel(); // room again: the reader may go on
            }
            m_write_since = Clock::now();
            m_writing = true;
            auto [error, written] =
                co_await asio::async_write(m_socket, asio::buffer(out), tuple_awaitable);
            m_writing = false;
            if (error) {
                break; // gone, or cut off by the watchdog
            }
        }
        // Answers still owed to a vanished client are dropped here; their decisions
        // are in the audit store all the same.
        m_stopping = true;
        m_closed = true;
        m_idle.cancel();
        m_watch.cancel();
        boost::system::error_code ignored;
        m_socket.shutdown(stream_protocol::socket::shutdown_both, ignored);
        m_socket.close(ignored);
    }

    // Cuts off a client that sends nothing for idle_timeout while no answer is owed to
    // it, and one that does not take its answers within write_timeout. One timer per
    // session, ticking at a quarter of the shorter limit, instead of a timer armed and
    // disarmed around every read and write.
    awaitable<void> watch() {
        const Limits& limits = m_server.m_limits;
        const auto tick = std::max<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(10), std::min(limits.idle_timeout, limits.write_timeout) / 4);
        while (!m_closed) {
            m_watch.expires_after(tick);
            co_await m_watch.async_wait(tuple_awaitable);
            if (m_closed) {
                break;
            }
            const auto now = Clock::now();
            boost::system::error_code ignored;
            if (m_writing && now - m_write_since >= limits.write_timeout) {
                spdlog::warn("event=client_not_reading uid={} pid={} action=disconnect", m_peer.uid,
                             m_peer.pid);
                m_socket.cancel(ignored); // the write fails; the writer closes the connection
            } else if (m_reading && !m_stopping && now - m_read_since >= limits.idle_timeout) {
                if (!m_pending.empty()) {
                    m_read_since = now; // answers still outstanding: not idle
                    continue;
                }
                spdlog::info("event=client_idle uid={} pid={}", m_peer.uid, m_peer.pid);
                stop_reading();
            }
        }
    }

    Server& m_server;
    stream_protocol::socket m_socket;
    asio::steady_timer m_wake;  // cancelled to wake the writer
    asio::steady_timer m_idle;  // the reader's wait while the client does not read
    asio::steady_timer m_watch; // the watchdog's tick
    Peer m_peer;
    std::deque<Slot> m_pending;        // answers owed, in request order
    std::uint64_t m_first_pending = 0; // the index of m_pending.front()
    bool m_stopping = false;
    bool m_reading_done = false;
    bool m_throttled = false; // the reader waits for the client to read its answers
    bool m_closed = false;    // the writer closed the connection
    bool m_reading = false;   // a read is outstanding, since m_read_since
    bool m_writing = false;   // a write is outstanding, since m_write_since
    Clock::time_point m_read_since;
    Clock::time_point m_write_since;
};

void Answer::operator()(std::string answer) const {
    m_session->set_answer(m_index, std::move(answer));
}

Server::Server(asio::io_context& io, Limits limits, LineHandler& handler)
    : m_io(io), m_limits(limits), m_handler(handler), m_acceptor(io) {}

Server::~Server() = default;

std::optional<std::string> Server::listen(const std::string& path,
                                          std::optional<std::uint32_t> mode,
                                          const std::string& group) {
    if (auto refused = m_socket_file.claim(path)) {
        return refused;
    }
    boost::system::error_code error;
    m_acceptor.open(stream_protocol(), error);
    if (!error) {
        m_acceptor.bind(stream_protocol::endpoint(path), error);
    }
    if (!error) {
        m_acceptor.listen(asio::socket_base::max_listen_connections, error);
    }
    if (error) {
        return "cannot listen on " + path + ": " + error.message();
    }
    m_socket_file.bound();
    if (!group.empty()) {
        struct group* entry = ::getgrnam(group.c_str());
        if (entry == nullptr) {
            return "unknown group '" + group + "' for the socket";
        }
        if (::chown(path.c_str(), static_cast<uid_t>(-1), entry->gr_gid) != 0) {
            return "cannot set the socket's group: " + std::string(std::strerror(errno));
        }
    }
    if (mode && ::chmod(path.c_str(), *mode) != 0) {
        return "cannot set the socket's mode: " + std::string(std::strerror(errno));
    }
    return std::nullopt;
}

std::optional<std::string> Server::adopt(int fd) {
    boost::system::error_code error;
    m_acceptor.assign(stream_protocol(), fd, error);
    if (error) {
        return "cannot use the inherited socket: " + error.message();
    }
    return std::nullopt;
}

void Server::start() {
    asio::co_spawn(
        m_io,
        [this]() -> awaitable<void> {
            asio::steady_timer backoff(m_io);
            while (!m_stopping) {
                auto [error, socket] = co_await m_acceptor.async_accept(tuple_awaitable);
                if (m_stopping) {
                    break;
                }
                if (error) {
                    // Out of descriptors, say: wait a little rather than spin.
                    spdlog::warn("event=accept_failed error=\"{}\"", error.message());
                    backoff.expires_after(std::chrono::milliseconds(50));
                    co_await backoff.async_wait(tuple_awaitable);
                    continue;
                }
                if (m_sessions.size() >= m_limits.max_connections) {
                    ++m_refused;
                    std::string answer = m_handler.too_many_connections_answer() + "\n";
                    boost::system::error_code ignored;
                    socket.non_blocking(true, ignored);
                    socket.write_some(asio::buffer(answer), ignored);
                    socket.close(ignored);
                    continue;
                }
                std::string why;
                std::optional<Peer> peer = peer_of(socket, why);
                if (!peer) {
                    ++m_refused;
                    spdlog::error("event=peer_credentials_failed error=\"{}\" action=disconnect",
                                  why);
                    boost::system::error_code ignored;
                    socket.close(ignored);
                    continue;
                }
                ++m_accepted;
                std::make_shared<Session>(*this, std::move(socket), *peer)->start();
            }
        },
        asio::detached);
}

void Server::stop(std::function<void()> on_drained) {
    m_stopping = true;
    m_on_drained = std::move(on_drained);
    boost::system::error_code ignored;
    m_acceptor.close(ignored);
    for (Session* session : m_sessions) {
        session->stop_reading();
    }
    if (m_sessions.empty() && m_on_drained) {
        asio::post(m_io, std::exchange(m_on_drained, nullptr));
    }
}

void Server::session_ended(Session* session) {
    m_sessions.erase(session);
    if (m_stopping && m_sessions.empty() && m_on_drained) {
        asio::post(m_io, std::exchange(m_on_drained, nullptr));
    }
}

} // namespace flowgate::daemon
