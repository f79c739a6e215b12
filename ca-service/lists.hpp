#pragma once
// The read-only listings of a CA directory's store: `evpn-ca nodes`, `token list` and `audit`,
// each a table for people or JSON with --json.

#include "ca-service/app.hpp"
#include "common/result.hpp"

namespace evpn::ca {

Result<void> list_nodes(const ListOptions& options);
// The secret's hash stays in the store: it is all an attacker would need to test guesses offline.
Result<void> list_tokens(const ListOptions& options);
Result<void> list_audit(const ListOptions& options);

}  // namespace evpn::ca
