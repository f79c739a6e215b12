#include "agent/exit_codes.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace evpn::agent {

ExitCode report_failure(const Failure& f, bool as_json, const char* done_key, const char* what) {
  if (as_json)
    std::cout << nlohmann::json{{done_key, false},
                                {"error", to_string(f.error.code)},
                                {"message", f.error.detail},
                                {"exit_code", static_cast<int>(f.code)}}
                     .dump(2)
              << "\n";
  std::cerr << "evpn-agent: " << what << " failed: " << f.error.detail << "\n";
  return f.code;
}

}  // namespace evpn::agent
