// Must NOT compile cleanly: a dropped Result is a dropped failure. The test unit_result_nodiscard
// compiles this file with -Werror=unused-result and expects the compiler to refuse the call below.
#include "common/result.hpp"

evpn::Result<void> write_something() { return evpn::fail(evpn::Errc::io, "disk full"); }

int main() {
  write_something();
  return 0;
}
