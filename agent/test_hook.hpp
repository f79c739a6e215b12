#pragma once
// Crash-safety tests stop the agent at named steps. Only in builds configured with
// -DEVPN_TEST_HOOKS=ON: reaching the step named by the environment variable EVPN_AGENT_STOP_AT
// kills the process with SIGKILL, as a power loss would. Other builds compile this to nothing.

#ifdef EVPN_TEST_HOOKS
#include <csignal>
#include <cstdlib>
#include <cstring>
#endif

namespace evpn::agent {

#ifdef EVPN_TEST_HOOKS
inline void test_step(const char* step) {
  const char* stop_at = std::getenv("EVPN_AGENT_STOP_AT");
  if (stop_at && std::strcmp(stop_at, step) == 0) std::raise(SIGKILL);
}
#else
inline void test_step(const char*) {}
#endif

}  // namespace evpn::agent
