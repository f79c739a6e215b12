#include "agent/node_files.hpp"

#include "agent/test_hook.hpp"
#include "common/fs/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdlib.h>
#include <string_view>
#include <system_error>
#include <tuple>
#include <unistd.h>

namespace evpn::agent {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NodeState, ca_url, fingerprint, username, jid, group, overlay,
                                   xmpp_host, xmpp_port, xmpp_domain, evio_config, key_type,
                                   serial, not_after, renew_after)

namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;
using stdfs::perms;

constexpr auto kPrivateFile = perms::owner_read | perms::owner_write;
constexpr auto kPublicFile = kPrivateFile | perms::group_read | perms::others_read;
constexpr std::string_view kStagingPrefix = ".staging-";
constexpr std::string_view kPairPrefix = "certs-";

Error io_error(const std::string& what, const stdfs::path& path, const std::error_code& ec) {
  return fail(Errc::io, what + " " + path.string() + ": " + ec.message());
}

// Removes the directories in `dir` whose names start with `prefix`, except those in `keep`.
// Failures are ignored: what is left is retried on the next call.
void remove_directories(const stdfs::path& dir, std::string_view prefix,
                        std::initializer_list<stdfs::path> keep) {
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(dir, ec)) {
    const auto name = entry.path().filename();
    if (name.string().starts_with(prefix) && entry.is_directory(ec) &&
        std::find(keep.begin(), keep.end(), name) == keep.end())
      stdfs::remove_all(entry.path(), ec);
  }
}

}  // namespace

NodeFiles::NodeFiles(stdfs::path state_dir) : dir_(std::move(state_dir)) {}

Result<StagedPair> NodeFiles::stage(const std::string& key_pem, const std::string& cert_pem,
                                    const std::string& root_pem, const std::string& serial) {
  // The serial names a directory: it must not be able to point anywhere else.
  if (serial.empty() ||
      !std::all_of(serial.begin(), serial.end(), [](unsigned char c) { return std::isxdigit(c); }))
    return fail(Errc::invalid_request, "the certificate serial '" + serial + "' is not hexadecimal");

  std::error_code ec;
  if (stdfs::create_directories(dir_, ec)) stdfs::permissions(dir_, perms::owner_all, ec);
  if (ec) return io_error("cannot create the state directory", dir_, ec);
  std::string tmpl = (dir_ / (std::string(kStagingPrefix) + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr)  // mkdtemp creates it 0700
    return fail(Errc::io, "cannot create a staging directory in " + dir_.string() + ": " +
                              std::strerror(errno));
  const stdfs::path dir = tmpl;
  StagedPair staged{dir, dir / "node.key", dir / "node.crt", dir / "root.crt", serial};
  // Each atomic write also fsyncs the staging directory, so the pair is durable when this returns.
  for (const auto& [file, text, mode] : {std::tuple{&staged.key_file, &key_pem, kPrivateFile},
                                         std::tuple{&staged.cert_file, &cert_pem, kPublicFile},
                                         std::tuple{&staged.root_file, &root_pem, kPublicFile}}) {
    if (auto r = fs::write_file_atomic(*file, *text, mode); !r) {
      discard(staged);
      return r.error();
    }
  }
  return staged;
}

Result<void> NodeFiles::commit(const StagedPair& staged, const NodeState& state) {
  std::string state_json;
  try {
    state_json = Json(state).dump(2) + "\n";
  } catch (const Json::exception&) {
    return fail(Errc::invalid_request, "the node state contains text that is not UTF-8");
  }

  const stdfs::path name = std::string(kPairPrefix) + staged.serial;
  const auto pair_dir = dir_ / name;
  std::error_code ec;
  const auto previous = stdfs::read_symlink(current_dir(), ec).filename();
  // state.json names the new serial first: from then on a pair directory that `current` does not
  // name is pending only if it carries that serial (see pending()); the previous pair never is.
  if (auto r = fs::write_file_atomic(state_file(), state_json, kPrivateFile); !r) return r.error();
  test_step("state-written");
  if (staged.dir != pair_dir) {
    // A pair directory only ever appears complete, by this rename. The same serial committed
    // again replaces its earlier copy.
    stdfs::remove_all(pair_dir, ec);
    if (ec) return io_error("cannot remove", pair_dir, ec);
    stdfs::rename(staged.dir, pair_dir, ec);
    if (ec) return io_error("cannot move the staged pair to", pair_dir, ec);
  }
  test_step("pair-renamed");
  // Absent when an interrupted commit already moved it.
  if (stdfs::exists(pair_dir / "root.crt", ec)) {
    stdfs::rename(pair_dir / "root.crt", root_file(), ec);
    if (ec) return io_error("cannot move the root certificate to", root_file(), ec);
  }
  test_step("root-moved");
  // Both renames are durable before `current` can point at the new pair.
  if (auto r = fs::sync_directory(dir_); !r) return r.error();

  // The symlink swap is the single commit point: `current` names either the old pair or the
  // new one, and key and certificate always come from the same directory.
  // One name for the new link, so that one left by a killed run is simply replaced.
  const auto link = dir_ / "current.tmp";
  stdfs::remove(link, ec);
  stdfs::create_directory_symlink(name, link, ec);
  if (ec) return io_error("cannot create the symlink", link, ec);
  test_step("link-created");
  stdfs::rename(link, current_dir(), ec);
  if (ec) {
    stdfs::remove(link, ec);
    return io_error("cannot swap the symlink", current_dir(), ec);
  }
  if (auto r = fs::sync_directory(dir_); !r) return r.error();
  test_step("swapped");

  // The previous pair stays, so a node can still go back to it by hand. Pairs staged by
  // interrupted runs were issued before this one, which the CA now holds current: they are obsolete.
  remove_directories(dir_, kPairPrefix, {name, previous});
  remove_directories(dir_, kStagingPrefix, {});
  return {};
}

std::vector<StagedPair> NodeFiles::pending() const {
  std::vector<StagedPair> out;
  std::error_code ec;
  const auto in_use = stdfs::read_symlink(current_dir(), ec).filename();
  // An interrupted commit wrote state.json before it renamed the pair; see commit().
  auto state = load_state();
  const std::string committing =
      state && *state ? std::string(kPairPrefix) + (*state)->serial : std::string();
  for (const auto& entry : stdfs::directory_iterator(dir_, ec)) {
    const auto name = entry.path().filename().string();
    const bool staging = name.starts_with(kStagingPrefix);
    if (!entry.is_directory(ec) || name == in_use || (!staging && name != committing)) continue;
    const auto& dir = entry.path();
    StagedPair pair{dir, dir / "node.key", dir / "node.crt", dir / "root.crt", ""};
    if (!staging && !stdfs::exists(pair.root_file, ec)) pair.root_file = root_file();
    if (stdfs::exists(pair.key_file, ec) && stdfs::exists(pair.cert_file, ec) && stdfs::exists(pair.root_file, ec))
      out.push_back(std::move(pair));
  }
  return out;
}

void NodeFiles::discard(const StagedPair& staged) const noexcept {
  std::error_code ec;
  stdfs::remove_all(staged.dir, ec);
}

Result<std::optional<NodeState>> NodeFiles::load_state() const {
  auto text = fs::read_file(state_file());
  if (!text) {
    if (text.error().code == Errc::not_found) return std::optional<NodeState>();
    return text.error();
  }
  const auto doc = Json::parse(*text, nullptr, false);
  const auto malformed = [&](const std::string& why) {
    return fail(Errc::invalid_request, state_file().string() + " is malformed (" + why +
                                           "); restore it or enroll again");
  };
  if (doc.is_discarded() || !doc.is_object()) return malformed("not a JSON object");
  // from_json reports a missing or mistyped member by exception; it stays inside this function.
  try {
    return std::optional<NodeState>(doc.get<NodeState>());
  } catch (const Json::exception& e) {
    return malformed(e.what());
  }
}

}  // namespace evpn::agent
