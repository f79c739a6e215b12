#include "agent/evio_config.hpp"

#include "common/fs/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <system_error>

namespace evpn::agent {

namespace {

// ordered_json keeps the operator's key order, so a merge changes only the lines it must.
using Json = nlohmann::ordered_json;
namespace stdfs = std::filesystem;

constexpr std::size_t kMaxConfigBytes = 1 << 20;
// A new config is private: it comes to hold other overlays' passwords and TURN credentials. An
// existing one keeps the mode, owner and group its administrator gave it.
constexpr auto kNewConfigMode = stdfs::perms::owner_read | stdfs::perms::owner_write;
constexpr auto kConfigDirMode = stdfs::perms::owner_all | stdfs::perms::group_read | stdfs::perms::group_exec |
                                stdfs::perms::others_read | stdfs::perms::others_exec;

Error unusable(const std::string& what) {
  return fail(Errc::invalid_request,
              what + "; the file was left unchanged, fix it or move it away");
}

// The member `key` of `parent`, created empty when absent; an error naming `name` when it
// has another type than `type`.
Result<Json*> member(Json& parent, const std::string& key, Json::value_t type,
                     const std::string& name) {
  auto it = parent.find(key);
  if (it == parent.end()) it = parent.emplace(key, Json(type)).first;
  if (it->type() != type)
    return unusable(name + " is not " + (type == Json::value_t::array ? "a list" : "an object"));
  return &*it;
}

// The file's text, or "" when there is no file yet.
Result<std::string> read_existing(const stdfs::path& file) {
  auto text = fs::read_file(file, kMaxConfigBytes);
  if (!text && text.error().code == Errc::not_found) return std::string();
  return text;
}

}  // namespace

Result<std::string> merge_overlay(std::string_view existing, const std::string& overlay,
                                  const SignalEntry& entry) {
  Json doc = Json::object();
  if (!existing.empty()) {
    doc = Json::parse(existing, nullptr, false);
    if (doc.is_discarded()) return unusable("the EdgeVPN config is not valid JSON");
    if (!doc.is_object()) return unusable("the EdgeVPN config is not a JSON object");
  }

  // evio >= 23 reads Broker, 20-21 read CFx; a file with neither is taken as the current one.
  const std::string framework = doc.contains("Broker") || !doc.contains("CFx") ? "Broker" : "CFx";
  auto section = member(doc, framework, Json::value_t::object, framework);
  if (!section) return section.error();
  auto overlays = member(**section, "Overlays", Json::value_t::array, framework + ".Overlays");
  if (!overlays) return overlays.error();
  Json& ids = **overlays;
  if (!std::all_of(ids.begin(), ids.end(), [](const Json& id) { return id.is_string(); }))
    return unusable(framework + ".Overlays is not a list of strings");
  if (std::find(ids.begin(), ids.end(), overlay) == ids.end()) ids.push_back(overlay);

  // Controller sections with their own "Overlays" (LinkManager, Topology, ...) belong to the
  // operator's template and are left alone, even though evio replaces such a section's whole
  // Overlays object when it lacks one of Broker.Overlays (reference §7.1).
  auto signal = member(doc, "Signal", Json::value_t::object, "Signal");
  if (!signal) return signal.error();
  auto signal_overlays = member(**signal, "Overlays", Json::value_t::object, "Signal.Overlays");
  if (!signal_overlays) return signal_overlays.error();
  auto target = member(**signal_overlays, overlay, Json::value_t::object,
                       "Signal.Overlays." + overlay);
  if (!target) return target.error();
  Json& signal_entry = **target;
  // x509 ignores the credentials, but evio warns about them, and a password has no business
  // staying in a file that no longer needs it.
  signal_entry.erase("Username");
  signal_entry.erase("Password");
  signal_entry["HostAddress"] = entry.host_address;
  signal_entry["Port"] = entry.port;
  signal_entry["AuthenticationMethod"] = "x509";
  signal_entry["CertDirectory"] = entry.cert_directory;
  signal_entry["CertFile"] = entry.cert_file;
  signal_entry["KeyFile"] = entry.key_file;

  // The parser only accepts valid UTF-8, so only the caller's strings can make dump() throw.
  try {
    return doc.dump(2) + "\n";
  } catch (const Json::exception&) {
    return fail(Errc::invalid_request,
                "the Signal entry for overlay " + overlay + " contains text that is not UTF-8");
  }
}

Result<void> update_config_file(const stdfs::path& file, const std::string& overlay,
                                const SignalEntry& entry) {
  auto existing = read_existing(file);
  if (!existing) return existing.error();
  auto merged = merge_overlay(*existing, overlay, entry);
  if (!merged) return with_context(merged.error(), file.string());
  if (*merged == *existing) return {};  // already right: EdgeVPN's file stays untouched

  const auto dir = file.parent_path();
  std::error_code ec;
  if (!dir.empty() && stdfs::create_directories(dir, ec))
    stdfs::permissions(dir, kConfigDirMode, ec);
  if (ec) return fail(Errc::io, "cannot create the directory " + dir.string() + ": " + ec.message());
  return fs::replace_file_atomic(file, *merged, kNewConfigMode);
}

Result<void> check_config_file(const stdfs::path& file) {
  auto existing = read_existing(file);
  if (!existing) return existing.error();
  auto merged = merge_overlay(*existing, "evpn-agent-check", SignalEntry{});
  if (!merged) return with_context(merged.error(), file.string());
  return {};
}

}  // namespace evpn::agent
