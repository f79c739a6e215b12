#include "common/protocol/enrollment.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>

namespace evpn::protocol {

using nlohmann::json;

namespace {

// Reads the fields of one JSON object with type checks, keeping the first error.
class Reader {
 public:
  Reader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  std::string string(const char* key) {
    const json* v = find(key);
    if (!v) return {};
    if (!v->is_string()) return mismatch(key, "a string"), std::string{};
    return v->get<std::string>();
  }

  std::uint16_t port(const char* key) {
    const json* v = find(key);
    if (!v) return 0;
    if (!v->is_number_unsigned() || v->get<unsigned long long>() == 0 || v->get<unsigned long long>() > 65535)
      return mismatch(key, "a port number"), std::uint16_t{0};
    return static_cast<std::uint16_t>(v->get<unsigned>());
  }

  std::vector<std::string> strings(const char* key) {
    const json* v = find(key);
    std::vector<std::string> out;
    if (!v) return out;
    if (!v->is_array()) return mismatch(key, "a list of strings"), out;
    for (const auto& item : *v) {
      if (!item.is_string()) return mismatch(key, "a list of strings"), out;
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  Reader object(const char* key) {
    const json* v = find(key);
    if (v && !v->is_object()) mismatch(key, "an object");
    static const json empty = json::object();
    return Reader(v && v->is_object() ? *v : empty, where_ + "." + key, error_);
  }

  std::optional<Error>& error() { return *error_; }

 private:
  Reader(const json& object, std::string where, std::shared_ptr<std::optional<Error>> error)
      : object_(object), where_(std::move(where)), error_(std::move(error)) {}

  const json* find(const char* key) {
    auto it = object_.find(key);
    if (it == object_.end()) {
      if (!*error_) *error_ = Error{Errc::invalid_request, "field '" + where_ + "." + key + "' is missing"};
      return nullptr;
    }
    return &*it;
  }

  void mismatch(const char* key, const char* expected) {
    if (!*error_) *error_ = Error{Errc::invalid_request, "field '" + where_ + "." + key + "' must be " + expected};
  }

  const json& object_;
  std::string where_;
  std::shared_ptr<std::optional<Error>> error_ = std::make_shared<std::optional<Error>>();
};

Result<json> parse_object(std::string_view body, const char* what) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return fail(Errc::invalid_request, std::string(what) + " is not valid JSON");
  if (!doc.is_object()) return fail(Errc::invalid_request, std::string(what) + " must be a JSON object");
  // json converts from almost anything, so the value must be placed explicitly.
  return Result<json>(boost::system::in_place_value, std::move(doc));
}

}  // namespace

Result<EnrollRequest> parse_enroll_request(std::string_view body) {
  auto doc = parse_object(body, "the request body");
  if (!doc) return doc.error();
  Reader r(*doc, "body");
  EnrollRequest out{r.string("token"), r.string("csr")};
  if (r.error()) return *r.error();
  return out;
}

std::string to_json(const EnrollRequest& r) { return json{{"token", r.token}, {"csr", r.csr}}.dump(); }

Result<RenewRequest> parse_renew_request(std::string_view body) {
  auto doc = parse_object(body, "the request body");
  if (!doc) return doc.error();
  Reader r(*doc, "body");
  RenewRequest out{r.string("csr")};
  if (r.error()) return *r.error();
  return out;
}

std::string to_json(const RenewRequest& r) { return json{{"csr", r.csr}}.dump(); }

Result<EnrollmentResult> parse_enrollment_result(std::string_view body) {
  auto doc = parse_object(body, "the enrollment result");
  if (!doc) return doc.error();
  Reader r(*doc, "result");
  EnrollmentResult out;
  out.certificate = r.string("certificate");
  out.chain = r.strings("chain");
  out.root = r.string("root");
  out.serial = r.string("serial");
  out.not_before = r.string("not_before");
  out.not_after = r.string("not_after");
  out.renew_after = r.string("renew_after");
  out.server_time = r.string("server_time");
  Reader node = r.object("node");
  out.node = {node.string("username"), node.string("jid"), node.string("group"), node.string("overlay")};
  Reader xmpp = r.object("xmpp");
  out.xmpp = {xmpp.string("host"), xmpp.port("port"), xmpp.string("domain"), xmpp.string("transport")};
  if (r.error()) return *r.error();
  return out;
}

std::string to_json(const EnrollmentResult& r) {
  return json{{"certificate", r.certificate},
              {"chain", r.chain},
              {"root", r.root},
              {"serial", r.serial},
              {"not_before", r.not_before},
              {"not_after", r.not_after},
              {"renew_after", r.renew_after},
              {"server_time", r.server_time},
              {"node",
               {{"username", r.node.username},
                {"jid", r.node.jid},
                {"group", r.node.group},
                {"overlay", r.node.overlay}}},
              {"xmpp",
               {{"host", r.xmpp.host},
                {"port", r.xmpp.port},
                {"domain", r.xmpp.domain},
                {"transport", r.xmpp.transport}}}}
      .dump();
}

const char* to_string(CertificateState state) noexcept {
  switch (state) {
    case CertificateState::current: return "current";
    case CertificateState::superseded: return "superseded";
    case CertificateState::revoked: return "revoked";
    case CertificateState::expired: return "expired";
  }
  return "current";
}

Result<CertificateStatus> parse_certificate_status(std::string_view body) {
  auto doc = parse_object(body, "the certificate status");
  if (!doc) return doc.error();
  Reader r(*doc, "status");
  CertificateStatus out{r.string("serial")};
  const std::string status = r.string("status");
  if (r.error()) return *r.error();
  for (auto state : {CertificateState::current, CertificateState::superseded, CertificateState::revoked,
                     CertificateState::expired})
    if (status == to_string(state)) {
      out.status = state;
      return out;
    }
  return fail(Errc::invalid_request, "the certificate status '" + status.substr(0, 32) + "' is not one of current, "
                                     "superseded, revoked, expired");
}

std::string to_json(const CertificateStatus& s) {
  return json{{"serial", s.serial}, {"status", to_string(s.status)}}.dump();
}

Result<ErrorBody> parse_error_body(std::string_view body) {
  auto doc = parse_object(body, "the error body");
  if (!doc) return doc.error();
  Reader r(*doc, "error");
  ErrorBody out{r.string("error"), r.string("message")};
  if (r.error()) return *r.error();
  return out;
}

std::string to_json(const ErrorBody& e) { return json{{"error", e.error}, {"message", e.message}}.dump(); }

}  // namespace evpn::protocol
