#pragma once
// EdgeVPN's config.json: merging one overlay's x509 Signal entry (the rules: README, "The EdgeVPN config").

#include "common/result.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace evpn::agent {

struct SignalEntry {
  std::string host_address;
  std::string port;  // a string, as EdgeVPN ships it
  std::string cert_directory;
  std::string cert_file;
  std::string key_file;
};

// Merges `entry` as Signal.Overlays.<overlay> into the document `existing` (empty: no file yet,
// a minimal valid config is made) and returns the new text. Errc::invalid_request when
// `existing` is not a JSON object of a config shape; nothing else is touched.
Result<std::string> merge_overlay(std::string_view existing, const std::string& overlay,
                                  const SignalEntry& entry);

// Reads `file` (absent is fine), merges and writes it atomically (mode 0644).
// A file that is not valid JSON is never overwritten.
Result<void> update_config_file(const std::filesystem::path& file, const std::string& overlay,
                                const SignalEntry& entry);

// Checks, without writing, that `file` is absent or mergeable, so that enrollment can stop
// before it spends a token.
Result<void> check_config_file(const std::filesystem::path& file);

}  // namespace evpn::agent
