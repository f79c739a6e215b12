#pragma once
// The store's schema, in one place, and its migrations.

#include "ca-service/store/database.hpp"
#include "common/result.hpp"

namespace evpn::ca::store {

// Brings the database on `db` to the schema this evpn-ca knows, in one transaction: a new store
// gets every version, an older one the versions it lacks. Errc::internal for a store written by a
// newer evpn-ca.
Result<void> create_schema(Connection& db);

}  // namespace evpn::ca::store
