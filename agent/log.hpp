#pragma once
// The agent's log: one line per event on stderr (journald picks it up), in the same format as the
// CA's spdlog lines. Not spdlog: its shared library and fmt's would bring the shared libstdc++ into
// a short-lived process whose peak memory is kept under 10 MB. Never log a token, password or key.

#include <functional>
#include <string_view>

namespace evpn::agent::log {

enum class Level { debug, info, warn, error, critical, off };

// Sets the lowest level written, by name ("debug", "info", "warn", "error", "critical", "off";
// unknown names mean "info").
void set_level(std::string_view name);

// Whether a line at `level` would be written; lets callers skip building one that would not.
bool enabled(Level level);

// Writes "<local time> evpn-agent <level>: <message>" as one line when `level` is enabled.
void write(Level level, std::string_view message);

inline void debug(std::string_view message) { write(Level::debug, message); }
inline void info(std::string_view message) { write(Level::info, message); }
inline void warn(std::string_view message) { write(Level::warn, message); }
inline void critical(std::string_view message) { write(Level::critical, message); }

// debug() while debug lines are written, else nothing: for callbacks such as LoginOptions::trace,
// which then skip building lines nobody reads.
inline std::function<void(std::string_view)> debug_sink() {
  if (!enabled(Level::debug)) return {};
  return [](std::string_view message) { debug(message); };
}

}  // namespace evpn::agent::log
