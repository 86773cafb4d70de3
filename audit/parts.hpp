// A pass over a long log, cut into contiguous parts that run side by side, each on its
// own thread and read-only connection: the auditor's verify and replay of a society's
// millions of decisions take seconds, not minutes. Rows are append-only, so the rows up
// to one snapshot's last seq are the same in any later snapshot: parts read through
// their own connections see one log.
#pragma once

#include "audit/error.hpp"
#include "audit/reader.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

namespace flowgate::audit {

struct PassOptions {
    // Parts run side by side; 0: one per hardware thread (at most 16).
    unsigned threads = 0;
    // A log with fewer rows is read in one part.
    std::uint64_t split_from_rows = 100'000;
    // Rows done so far, called now and then on the caller's thread.
    std::function<void(std::uint64_t)> progress;
};

// One contiguous part of the log: seqs [start, end] (the last part has no end), read as
// `range`.
struct Part {
    AuditRowRange range;
    std::uint64_t start = 1;
    std::optional<std::uint64_t> end; // none for the last part
};

// The parts of a log whose last seq is `last`: the first also reads rows a forger
// numbered below 1, the last any row past `last`.
std::vector<Part> split_log(std::uint64_t last, const PassOptions& options);

// Counts rows into a shared total in steps, so that threads do not share a cache line
// per row; the caller's part also reports the total.
class RowCounter {
public:
    RowCounter(std::atomic<std::uint64_t>& total, const std::function<void(std::uint64_t)>* report)
        : m_total(total), m_report(report) {}
    ~RowCounter() { m_total += m_local; }
    RowCounter(const RowCounter&) = delete;
    RowCounter& operator=(const RowCounter&) = delete;
    void row() {
        if (++m_local == 4096) {
            const std::uint64_t total = m_total += m_local;
            m_local = 0;
            if (m_report != nullptr && *m_report) {
                (*m_report)(total);
            }
        }
    }

private:
    std::atomic<std::uint64_t>& m_total;
    const std::function<void(std::uint64_t)>* m_report;
    std::uint64_t m_local = 0;
};

// Runs `pass(reader, part, counter)` over each part of the log up to `last`: the first
// on the caller's reader, the others on their own threads and readers. The results in
// part order, or the first error.
template <class Result, class Pass>
AuditResult<std::vector<Result>> run_parts(AuditReader& reader, std::uint64_t last,
                                           const PassOptions& options, Pass pass) {
    const std::vector<Part> parts = split_log(last, options);
    std::atomic<std::uint64_t> total{0};
    std::vector<std::optional<AuditResult<Result>>> results(parts.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < parts.size(); ++i) {
        threads.emplace_back([&, i] {
            try {
                auto own = AuditReader::open(reader.path());
                if (!own) {
                    results[i].emplace(own.error());
                    return;
                }
                RowCounter counter(total, nullptr);
                results[i].emplace(pass(*own.value(), parts[i], counter));
            } catch (const std::exception& e) {
                results[i].emplace(AuditError{AuditErrc::unavailable, e.what()});
            }
        });
    }
    {
        RowCounter counter(total, &options.progress);
        results[0].emplace(pass(reader, parts[0], counter));
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    if (options.progress) {
        options.progress(total);
    }
    std::vector<Result> out;
    for (auto& result : results) {
        if (!*result) {
            return result->error();
        }
        out.push_back(std::move(*result).value());
    }
    return out;
}

} // namespace flowgate::audit
