// flowgated's life once its configuration is read: start-up in named steps (the signing
// key, the policy, the store's lock, the audit store and its anchor, the socket, then the
// start events and the signals), serving until SIGTERM or SIGINT, and the stop event; or,
// with --init-store, a new audit store and its first anchor made. Only start-up may
// fail; each failing step says why in the log (a policy's diagnostics also on stderr),
// and a start that fails records nothing in the store.
#pragma once

#include "daemon/config.hpp"

namespace flowgate::daemon {

// Serves the v1 protocol as `config` says: SIGHUP reloads the policy; SIGTERM or SIGINT
// stop accepting, answer what is in flight, record the stop and return 0. Returns 1
// when start-up fails.
int run_daemon(Config config);

// flowgated --init-store: makes a new audit store at the configured path (under the
// store's lock, so not beside a running daemon) whose one row says that a new log began,
// writes its first anchor, and returns 0 without serving; returns 1, changing nothing,
// if a store (or its WAL) or an anchor is there already or the file cannot be made.
int init_store(const Config& config);

} // namespace flowgate::daemon
