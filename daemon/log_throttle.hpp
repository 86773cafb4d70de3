// A log line per interval, not per occurrence: a condition a client can cause at will
// (connections refused, a descriptor table that is full, lines that cannot be understood)
// would otherwise write the journal as fast as the client can cause it. The line that is
// written says how many were left out since the one before.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace flowgate::daemon {

class LogThrottle {
public:
    using Clock = std::chrono::steady_clock;
    explicit LogThrottle(Clock::duration interval = std::chrono::seconds(10))
        : m_interval(interval) {}

    // Whether this occurrence is logged; if so, how many were not since the last one that
    // was. The first occurrence is always logged.
    std::optional<std::uint64_t> admit(Clock::time_point now = Clock::now()) {
        if (m_logged && now - m_last < m_interval) {
            ++m_suppressed;
            return std::nullopt;
        }
        m_logged = true;
        m_last = now;
        const std::uint64_t suppressed = m_suppressed;
        m_suppressed = 0;
        return suppressed;
    }

private:
    Clock::duration m_interval;
    Clock::time_point m_last{};
    std::uint64_t m_suppressed = 0;
    bool m_logged = false;
};

} // namespace flowgate::daemon
