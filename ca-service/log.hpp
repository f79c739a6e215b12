#pragma once
// Logging: spdlog to stderr (journald picks it up). Never log a token, password or key.

#include <spdlog/spdlog.h>

#include <string_view>

namespace evpn {

// Sets up the default logger for a program: stderr, one line per event, level by name
// ("debug", "info", "warn", "error"; unknown names mean "info").
void init_logging(std::string_view program, std::string_view level = "info");

}  // namespace evpn
