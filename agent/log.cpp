#include "agent/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace evpn::agent::log {
namespace {

constexpr std::string_view names[] = {"debug", "info", "warning", "error", "critical", "off"};

Level threshold = Level::warn;

}  // namespace

void set_level(std::string_view name) {
  if (name == "warn") name = "warning";
  threshold = Level::info;
  for (std::size_t i = 0; i < std::size(names); ++i)
    if (names[i] == name) threshold = static_cast<Level>(i);
}

bool enabled(Level level) { return level != Level::off && level >= threshold; }

void write(Level level, std::string_view message) {
  if (!enabled(level)) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm local{};
  localtime_r(&seconds, &local);
  char stamp[32];
  const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &local);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03d", static_cast<int>(ms));
  std::string line = std::string(stamp) + " evpn-agent " + std::string(names[static_cast<int>(level)]) + ": ";
  line.append(message);
  line += '\n';
  // stderr is unbuffered: one fwrite keeps the line whole when several processes share a journal.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace evpn::agent::log
