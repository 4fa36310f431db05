// signals: a graceful stop on SIGTERM, SIGUSR1 (Slurm's warning before a time limit or
// preemption) and SIGINT -- the handlers only set a flag that long-running loops poll
#pragma once

namespace nas {

// Installs the handlers (idempotent). A second SIGINT while stopping ends the process at once
// (the study file stays consistent: every write is a transaction).
void install_stop_handlers();

// The signal that asked to stop, or 0. Safe from any thread.
int stop_signal();
inline bool stop_requested() { return stop_signal() != 0; }

// Asks to stop as if signal `sig` had arrived (deadlines, tests).
void request_stop(int sig);

// Clears the request (tests).
void clear_stop();

} // namespace nas
