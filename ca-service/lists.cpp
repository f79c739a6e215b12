#include "ca-service/lists.hpp"

#include "ca-service/authority/authority.hpp"
#include "ca-service/enrollment/tokens.hpp"
#include "ca-service/service.hpp"

#include <nlohmann/json.hpp>

#include <iostream>

namespace evpn::ca {
namespace {

using nlohmann::json;

// Prints `rows` as left-aligned columns; the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i)
      line += i + 1 < row.size() ? row[i] + std::string(widths[i] - row[i].size() + 2, ' ') : row[i];
    std::cout << line << "\n";
  }
}

// What the list commands print: `out` with --json, else `rows` as a table.
void print_list(const ListOptions& o, const json& out, const std::vector<std::vector<std::string>>& rows) {
  if (o.json)
    std::cout << out.dump(2) << "\n";
  else
    print_table(rows);
}

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

}  // namespace

Result<void> list_nodes(const ListOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  auto nodes = store->list_nodes();
  if (!nodes) return nodes.error();
  const auto now = now_seconds();
  json out = json::array();
  std::vector<std::vector<std::string>> rows{{"USERNAME", "GROUP", "OVERLAY", "SERIAL", "NOT AFTER", "STATE"}};
  for (const auto& n : *nodes) {
    const std::string state(to_string(authority::node_state(n, now)));
    json entry{{"username", n.username},
               {"group", n.group},
               {"overlay", n.overlay},
               {"serial", n.current_serial},
               {"not_before", to_rfc3339(n.not_before)},
               {"not_after", to_rfc3339(n.not_after)},
               {"state", state},
               {"directory_step_pending", n.pending_lockout.has_value()}};
    std::string shown = state;
    if (n.revoked_at) {
      entry["revoked_at"] = to_rfc3339(*n.revoked_at);
      entry["revocation_reason"] = n.revocation_reason;
    }
    if (n.pending_lockout) {
      entry["directory_error"] = n.pending_lockout->last_error;
      shown += ", directory step pending" +
               (n.pending_lockout->last_error.empty() ? "" : " (" + n.pending_lockout->last_error + ")");
    }
    out.push_back(std::move(entry));
    rows.push_back({n.username, n.group, n.overlay, n.current_serial, to_rfc3339(n.not_after), shown});
  }
  print_list(o, out, rows);
  return {};
}

Result<void> list_tokens(const ListOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  auto tokens = store->list_tokens();
  if (!tokens) return tokens.error();
  const auto now = now_seconds();
  json out = json::array();
  std::vector<std::vector<std::string>> rows{{"ID", "GROUP", "USERNAME", "USES LEFT", "EXPIRES", "CREATED", "STATE"}};
  for (const auto& t : *tokens) {
    const std::string state(to_string(enrollment::token_state(t, now)));
    out.push_back({{"id", t.id},
                   {"group", t.group},
                   {"username", t.username ? json(*t.username) : json(nullptr)},
                   {"uses_left", t.uses_left},
                   {"expires_at", to_rfc3339(t.expires_at)},
                   {"created_at", to_rfc3339(t.created_at)},
                   {"revoked_at", t.revoked_at ? json(to_rfc3339(*t.revoked_at)) : json(nullptr)},
                   {"state", state}});
    rows.push_back({t.id, t.group, t.username.value_or("(any)"), std::to_string(t.uses_left),
                    to_rfc3339(t.expires_at), to_rfc3339(t.created_at), state});
  }
  print_list(o, out, rows);
  return {};
}

Result<void> list_audit(const ListOptions& o) {
  auto store = open_store(CaPaths{o.dir});
  if (!store) return store.error();
  auto entries = store->list_audit();
  if (!entries) return entries.error();
  json out = json::array();
  std::vector<std::vector<std::string>> rows{{"TIME", "ACTION", "USERNAME", "SERIAL", "TOKEN", "DETAIL"}};
  for (const auto& e : *entries) {
    out.push_back({{"at", to_rfc3339(e.at)},
                   {"action", e.action},
                   {"username", e.username},
                   {"serial", e.serial},
                   {"token_id", e.token_id},
                   {"detail", e.detail}});
    rows.push_back(
        {to_rfc3339(e.at), e.action, or_dash(e.username), or_dash(e.serial), or_dash(e.token_id), e.detail});
  }
  print_list(o, out, rows);
  return {};
}

}  // namespace evpn::ca
