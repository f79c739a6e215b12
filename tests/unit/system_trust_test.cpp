// install_system_root against a temporary directory (update-ca-certificates runs only for the
// real one, which tests leave alone).

#include "agent/system_trust.hpp"

#include <catch2/catch.hpp>

#include "common/fs/atomic_file.hpp"
#include "tests/support/process.hpp"
#include "tests/support/test_pki.hpp"

using Catch::Contains;
using evpn::Errc;
namespace fs = std::filesystem;

TEST_CASE("the root is written as a world-readable .crt named after its fingerprint") {
  evpn::test::TempDir dir("evpn-trust");
  evpn::test::TestPki pki;
  auto file = evpn::agent::install_system_root(pki.root_pem(), dir.path());
  REQUIRE(file.has_value());
  CHECK(*file == dir.path() / ("evpn-enroll-" + pki.signer().root().fingerprint_sha256().substr(0, 16) + ".crt"));
  CHECK(*evpn::fs::read_file(*file) == pki.root_pem());
  CHECK((fs::status(*file).permissions() & fs::perms::others_read) == fs::perms::others_read);

  // Enrolling again rewrites the same file; another CA's root gets its own.
  REQUIRE(evpn::agent::install_system_root(pki.root_pem(), dir.path()).has_value());
  evpn::test::TestPki other;
  REQUIRE(evpn::agent::install_system_root(other.root_pem(), dir.path()).has_value());
  CHECK(std::distance(fs::directory_iterator(dir.path()), {}) == 2);
}

TEST_CASE("a missing trust directory or a broken root is refused and writes nothing") {
  evpn::test::TempDir dir("evpn-trust");
  evpn::test::TestPki pki;
  auto missing = evpn::agent::install_system_root(pki.root_pem(), dir.path() / "absent");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == Errc::io);
  CHECK_THAT(missing.error().detail, Contains("is not a directory"));

  auto broken = evpn::agent::install_system_root("not a certificate", dir.path());
  REQUIRE_FALSE(broken.has_value());
  CHECK_THAT(broken.error().detail, Contains("the CA root"));
  CHECK(fs::is_empty(dir.path()));
}
