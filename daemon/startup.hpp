// flowgated's life once its configuration is read: start-up in named steps (the
// policy, the audit store and its start events, the socket, the signals), serving
// until SIGTERM or SIGINT, and the stop event. Only start-up may fail; each failing
// step says why in the log (a policy's diagnostics also on stderr).
#pragma once

#include "daemon/config.hpp"

namespace flowgate::daemon {

// Serves the v1 protocol as `config` says: SIGHUP reloads the policy; SIGTERM or SIGINT
// stop accepting, answer what is in flight, record the stop and return 0. Returns 1
// when start-up fails.
int run_daemon(Config config);

} // namespace flowgate::daemon
