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
#include <fcntl.h>
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
          m_room(m_socket.get_executor()), m_watch(m_socket.get_executor()), m_peer(peer) {
        m_wake.expires_at(asio::steady_timer::time_point::max());
    }
    ~Session() { m_server.session_ended(this); }

    const Peer& peer() const { return m_peer; }

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
        m_room.cancel();
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
        m_pending_bytes += answer.size();
        slot.answer = std::move(answer);
        slot.ready = true;
        --m_in_flight;
        m_wake.cancel();
        if (m_in_flight < m_server.m_limits.max_requests_in_flight) {
            wake_reader();
        }
    }

    Answer next_answer() {
        m_pending.emplace_back();
        ++m_in_flight;
        return Answer(shared_from_this(), m_first_pending + m_pending.size() - 1);
    }

    // Whether the next line may be served now. A connection has at most
    // max_requests_in_flight requests being decided, so that one pipelining as fast as it
    // can gets that many places in the audit writer's queue, as every other connection
    // does, and then waits its turn; and it holds at most max_pending_answers answers, of
    // max_pending_answer_bytes, that it has not read.
    bool has_room() const {
        const Limits& limits = m_server.m_limits;
        return m_in_flight < limits.max_requests_in_flight &&
               m_pending.size() < limits.max_pending_answers &&
               m_pending_bytes < limits.max_pending_answer_bytes;
    }

    // Hands each complete line to the protocol while there is room, then reads. A
    // pipelining client costs one read per chunk, not per request, and its lines beyond
    // its room wait in the buffer (and then in the socket) until answers free it.
    awaitable<void> read_requests() {
        const Limits& limits = m_server.m_limits;
        std::vector<char> chunk(64 * 1024);
        std::size_t scanned = 0; // a prefix of m_buffer known to hold no newline
        while (!m_stopping) {
            std::size_t consumed = 0;
            bool partial_line_left = false; // false: stopped for want of room
            bool closing = false;           // the last answer was given
            while (has_room()) {
                std::size_t newline = m_buffer.find('\n', std::max(consumed, scanned));
                if (newline == std::string::npos) {
                    partial_line_left = true;
                    break;
                }
                std::string_view line(m_buffer.data() + consumed, newline - consumed);
                consumed = newline + 1;
                if (exceeds(line, limits.max_line_bytes)) {
                    refuse_oversized(line);
                    closing = true;
                    break;
                }
                if (serve_line(line) && ++m_refused_lines >= limits.max_refused_lines) {
                    m_server.m_handler.on_too_many_refused(m_refused_lines, m_peer, next_answer());
                    closing = true;
                    break;
                }
            }
            if (closing) {
                break;
            }
            m_buffer.erase(0, consumed);
            scanned = partial_line_left ? m_buffer.size() : 0;
            if (partial_line_left && exceeds(m_buffer, limits.max_line_bytes)) {
                refuse_oversized(m_buffer);
                break;
            }
            if (!partial_line_left) {
                // Woken by an answer (set_answer) or by the writer; a client that does
                // not read its answers is cut off by the watchdog meanwhile.
                m_waiting_for_room = true;
                m_room.expires_after(limits.write_timeout);
                co_await m_room.async_wait(tuple_awaitable);
                m_waiting_for_room = false;
                continue;
            }
            // What is left is the start of a line: its deadline runs from its first byte.
            if (!m_buffer.empty() && (consumed > 0 || !m_partial)) {
                m_line_since = Clock::now();
            }
            m_partial = !m_buffer.empty();
            // The watchdog ends a read that waits too long (see watch()).
            m_read_since = Clock::now();
            m_reading = true;
            auto [error, length] =
                co_await m_socket.async_read_some(asio::buffer(chunk), tuple_awaitable);
            m_reading = false;
            if (m_line_late) {
                m_server.m_handler.on_late_line(m_buffer, m_peer, next_answer());
                break;
            }
            if (error || m_stopping) {
                break; // end of stream, reset, idle or stopping
            }
            m_buffer.append(chunk.data(), length);
        }
        m_buffer = std::string();
        m_reading_done = true;
        m_wake.cancel();
    }

    // Whether the line was refused as not understood.
    bool serve_line(std::string_view line) {
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.find_first_not_of(" \t") == std::string_view::npos) {
            return false; // a blank line is no request: `echo | socat` sends one
        }
        return m_server.m_handler.on_line(line, m_peer, next_answer());
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
            std::size_t answer_bytes = 0;
            while (!m_pending.empty() && m_pending.front().ready) {
                answer_bytes += m_pending.front().answer.size();
                out += m_pending.front().answer;
                out += '\n';
                m_pending.pop_front();
                ++m_first_pending;
            }
            wake_reader(); // fewer answers held: the reader may go on
            m_write_since = Clock::now();
            m_writing = true;
            auto [error, written] =
                co_await asio::async_write(m_socket, asio::buffer(out), tuple_awaitable);
            m_writing = false;
            m_pending_bytes -= answer_bytes;
            if (error) {
                break; // gone, or cut off by the watchdog
            }
            wake_reader(); // and fewer bytes
            if (out.capacity() > 1024 * 1024) {
                out = std::string(); // one large answer does not stay allocated
            }
        }
        // Answers still owed to a vanished client are dropped here; their decisions
        // are in the audit store all the same.
        m_stopping = true;
        m_closed = true;
        m_room.cancel();
        m_watch.cancel();
        boost::system::error_code ignored;
        m_socket.shutdown(stream_protocol::socket::shutdown_both, ignored);
        m_socket.close(ignored);
    }

    void wake_reader() {
        if (m_waiting_for_room) {
            m_room.cancel();
        }
    }

    // Cuts off a client that sends nothing for idle_timeout while no answer is owed to
    // it, one that takes longer than line_timeout to finish a line it began (a client
    // trickling bytes would otherwise hold its connection for ever), and one that does
    // not take its answers within write_timeout. One timer per session, ticking at a
    // quarter of the shortest limit, instead of a timer armed around every read and write.
    awaitable<void> watch() {
        const Limits& limits = m_server.m_limits;
        const auto tick = std::max<std::chrono::steady_clock::duration>(
            std::chrono::milliseconds(10),
            std::min({limits.idle_timeout, limits.write_timeout, limits.line_timeout}) / 4);
        while (!m_closed) {
            m_watch.expires_after(tick);
            co_await m_watch.async_wait(tuple_awaitable);
            if (m_closed) {
                break;
            }
            const auto now = Clock::now();
            boost::system::error_code ignored;
            if (m_writing && now - m_write_since >= limits.write_timeout) {
                if (auto suppressed = m_server.m_not_reading_log.admit(now)) {
                    spdlog::warn("event=client_not_reading uid={} pid={} action=disconnect "
                                 "suppressed={}",
                                 m_peer.uid, m_peer.pid, *suppressed);
                }
                m_socket.cancel(ignored); // the write fails; the writer closes the connection
            } else if (m_reading && m_partial && !m_stopping &&
                       now - m_line_since >= limits.line_timeout) {
                if (auto suppressed = m_server.m_late_line_log.admit(now)) {
                    spdlog::warn("event=line_timeout uid={} pid={} received={} action=disconnect "
                                 "suppressed={}",
                                 m_peer.uid, m_peer.pid, m_buffer.size(), *suppressed);
                }
                m_line_late = true;
                stop_reading();
            } else if (m_reading && !m_partial && !m_stopping &&
                       now - m_read_since >= limits.idle_timeout) {
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
    asio::steady_timer m_room;  // the reader's wait for room (answers given, or read)
    asio::steady_timer m_watch; // the watchdog's tick
    Peer m_peer;
    std::string m_buffer;              // received, not yet served
    std::deque<Slot> m_pending;        // answers owed, in request order
    std::uint64_t m_first_pending = 0; // the index of m_pending.front()
    std::size_t m_in_flight = 0;       // requests being decided: slots not yet ready
    std::size_t m_pending_bytes = 0;   // answers ready or being written, in bytes
    std::size_t m_refused_lines = 0;   // lines refused as not understood
    bool m_stopping = false;
    bool m_reading_done = false;
    bool m_waiting_for_room = false; // the reader waits for answers to be given or read
    bool m_closed = false;           // the writer closed the connection
    bool m_reading = false;          // a read is outstanding, since m_read_since
    bool m_writing = false;          // a write is outstanding, since m_write_since
    bool m_partial = false;          // m_buffer holds the start of a line, since m_line_since
    bool m_line_late = false;        // that line took longer than line_timeout
    Clock::time_point m_read_since;
    Clock::time_point m_write_since;
    Clock::time_point m_line_since;
};

void Answer::operator()(std::string answer) const {
    m_session->set_answer(m_index, std::move(answer));
}

Server::Server(asio::io_context& io, Limits limits, LineHandler& handler)
    : m_io(io), m_limits(limits), m_handler(handler), m_acceptor(io) {}

Server::~Server() {
    if (m_spare_fd >= 0) {
        ::close(m_spare_fd);
    }
}

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
    m_spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    asio::co_spawn(m_io, accept_loop(), asio::detached);
}

awaitable<void> Server::accept_loop() {
    asio::steady_timer backoff(m_io);
    while (!m_stopping) {
        auto [error, socket] = co_await m_acceptor.async_accept(tuple_awaitable);
        if (m_stopping) {
            break;
        }
        if (error == asio::error::no_descriptors || error.value() == ENFILE) {
            // The client waits in the backlog: answer it rather than let it hang.
            if (!refuse_without_descriptor()) {
                backoff.expires_after(std::chrono::milliseconds(50));
                co_await backoff.async_wait(tuple_awaitable);
            }
            continue;
        }
        if (error) {
            if (auto suppressed = m_accept_log.admit()) {
                spdlog::warn("event=accept_failed error=\"{}\" suppressed={}", error.message(),
                             *suppressed);
            }
            backoff.expires_after(std::chrono::milliseconds(50)); // rather than spin
            co_await backoff.async_wait(tuple_awaitable);
            continue;
        }
        if (m_sessions.size() >= m_limits.max_connections) {
            refuse(socket, m_handler.too_many_connections_answer(nullptr));
            continue;
        }
        std::string why;
        std::optional<Peer> peer = peer_of(socket, why);
        if (!peer) {
            ++m_refused;
            spdlog::error("event=peer_credentials_failed error=\"{}\" action=disconnect", why);
            boost::system::error_code ignored;
            socket.close(ignored);
            continue;
        }
        std::size_t& held = m_per_uid[peer->uid];
        if (held >= m_limits.max_connections_per_uid) {
            refuse(socket, m_handler.too_many_connections_answer(&*peer));
            continue;
        }
        ++held;
        ++m_accepted;
        std::make_shared<Session>(*this, std::move(socket), *peer)->start();
    }
}

void Server::refuse(stream_protocol::socket& socket, const std::string& answer) {
    ++m_refused;
    if (auto suppressed = m_refused_log.admit()) {
        spdlog::warn("event=connection_refused connections={} answer={} suppressed={}",
                     m_sessions.size(), answer, *suppressed);
    }
    // A fresh socket's buffer takes one line: the write does not block.
    const std::string line = answer + "\n";
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(line), ignored);
    socket.close(ignored);
}

bool Server::refuse_without_descriptor() {
    if (m_spare_fd >= 0) {
        ::close(m_spare_fd);
        m_spare_fd = -1;
    }
    const int fd =
        ::accept4(m_acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (auto suppressed = m_accept_log.admit()) {
        spdlog::error("event=out_of_descriptors connections={} action=refuse suppressed={}",
                      m_sessions.size(), *suppressed);
    }
    if (fd >= 0) {
        ++m_refused;
        const std::string line = m_handler.too_many_connections_answer(nullptr) + "\n";
        [[maybe_unused]] ssize_t sent = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
        ::close(fd);
    }
    m_spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
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
    if (auto held = m_per_uid.find(session->peer().uid); held != m_per_uid.end()) {
        if (--held->second == 0) {
            m_per_uid.erase(held);
        }
    }
    if (m_stopping && m_sessions.empty() && m_on_drained) {
        asio::post(m_io, std::exchange(m_on_drained, nullptr));
    }
}

} // namespace flowgate::daemon
