// What the agent accepts from the CA's enrollment or renewal answer before it writes anything:
// check_answer() with a throwaway PKI, one hostile answer at a time.

#include "agent/install.hpp"

#include "tests/support/catch_result.hpp"
#include "tests/support/test_pki.hpp"

#include <catch2/catch.hpp>

using Catch::Matchers::Contains;
using evpn::Errc;
using evpn::agent::check_answer;
using evpn::test::error_of;
using evpn::test::ok;
using evpn::test::TestPki;

namespace {

const std::string domain = "evpn.test";

// The pinned PKI, its node "node1", and the answer the CA gives for it.
struct Answer {
  TestPki pki;
  TestPki::Pair node = pki.node("node1", domain);
  evpn::protocol::EnrollmentResult result;

  Answer() {
    result.certificate = node.cert.to_pem();
    result.root = pki.root_pem();
    result.serial = node.cert.serial_hex();
    result.node = {"node1", "node1@" + domain, "lab", "101000F"};
    result.xmpp = {"127.0.0.1", 5222, domain, "starttls"};
  }

  evpn::Result<evpn::agent::CheckedAnswer> check() const {
    return check_answer(result, node.key, pki.signer().root(), "node1", evpn::now_seconds());
  }
};

// The refusal of `answer`, which must name `what`.
void refused(const Answer& answer, const std::string& what) {
  const auto e = error_of(answer.check());
  CHECK(e.code == Errc::invalid_request);
  CHECK_THAT(e.detail, Contains(what));
}

}  // namespace

TEST_CASE("the CA's normal answer is accepted and what is written is exactly what was checked") {
  const Answer answer;
  const auto checked = ok(answer.check());
  CHECK(checked.chain_pem == answer.node.cert.to_pem());
  CHECK(checked.root_pem == answer.pki.root_pem());
}

TEST_CASE("an answer whose root is another CA's root is refused") {
  Answer answer;
  answer.result.root = TestPki().root_pem();
  refused(answer, "root");
}

TEST_CASE("an answer whose root carries a second certificate after the pinned one is refused") {
  Answer answer;
  answer.result.root += TestPki().root_pem();
  refused(answer, "root");
}

TEST_CASE("an answer whose certificate field carries a second certificate is refused") {
  Answer answer;
  answer.result.certificate += TestPki().root_pem();
  refused(answer, "certificate");
}

TEST_CASE("an answer with a leaf certificate in its chain is refused") {
  Answer answer;
  answer.result.chain.push_back(answer.pki.node("node2", domain).cert.to_pem());
  refused(answer, "not a CA certificate");
}

TEST_CASE("an answer with another CA's certificate in its chain is refused") {
  Answer answer;
  answer.result.chain.push_back(TestPki().root_pem());
  refused(answer, "chain");
}

TEST_CASE("an answer whose certificate is for another key or name is refused") {
  Answer for_key;
  for_key.result.certificate = for_key.pki.node("node1", domain).cert.to_pem();
  refused(for_key, "another key");
  Answer for_name;
  for_name.node = for_name.pki.node("node2", domain);
  for_name.result.certificate = for_name.node.cert.to_pem();
  refused(for_name, "not for node1@evpn.test");
}
