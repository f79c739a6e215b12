#include "agent/renewal.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/test_pki.hpp"

#include <catch2/catch.hpp>

using namespace evpn;
using namespace std::chrono_literals;

namespace {

const TimePoint kIssued = from_unix(1'800'000'000);

// A node certificate issued at kIssued with `lifetime`, by the production profile.
crypto::Certificate issued_with(std::chrono::seconds lifetime) {
  static const test::TestPki pki;
  auto key = crypto::Key::generate(crypto::KeyType::ec_p256);
  REQUIRE(key);
  auto issued = pki.signer().issue_node(key->get(), {"node1", "example.test", lifetime}, kIssued);
  INFO((issued ? std::string() : issued.error().detail));
  REQUIRE(issued);
  auto cert = crypto::Certificate::from_pem(issued->pem);
  REQUIRE(cert);
  return std::move(*cert);
}

}  // namespace

TEST_CASE("a certificate is due for renewal once a third of its lifetime is left") {
  const auto [lifetime, due_after] = GENERATE(table<std::chrono::seconds, std::chrono::seconds>({
      {std::chrono::days(30), std::chrono::days(20)},
      {std::chrono::days(7), 112h},
      {1min, 40s},
      {100s, 67s},  // notAfter - 33 s: the third is rounded down
      {std::chrono::days(90), std::chrono::days(60)},
  }));
  CAPTURE(lifetime.count());
  const auto cert = issued_with(lifetime);
  // The five minutes by which notBefore is backdated do not count towards the lifetime.
  CHECK(cert.not_before() == kIssued - 5min);
  CHECK(cert.not_after() == kIssued + lifetime);
  CHECK(agent::renew_after(cert) == kIssued + due_after);
}

TEST_CASE("the agent's renewal time agrees with the renew_after the CA reports, to the second") {
  // The CA reports issuance + 2/3 of the lifetime, the agent reads notAfter - lifetime/3 from the
  // certificate; both round down to whole seconds, so they may differ by one when the lifetime is
  // not divisible by three.
  const auto lifetime = GENERATE(as<std::chrono::seconds>{}, 60s, 100s, 3601s, std::chrono::days(30) + 1s);
  CAPTURE(lifetime.count());
  const auto cert = issued_with(lifetime);
  const auto difference = agent::renew_after(cert) - (kIssued + lifetime * 2 / 3);
  CHECK(difference >= 0s);
  CHECK(difference <= 1s);
}
