#include "ca-service/xmpp/openfire_admin.hpp"

#include <openssl/pkcs12.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "common/crypto/openssl_error.hpp"

namespace evpn::ca::xmpp {
namespace {

using nlohmann::json;
using Value = std::optional<std::string>;  // a system property; nullopt = not set (Openfire's default)

const std::string san_mapper = "org.jivesoftware.util.cert.SANCertificateIdentityMapping";
const std::string cn_mapper = "org.jivesoftware.util.cert.CNCertificateIdentityMapping";

// What a property's value means for certificate login.
struct Verdict {
  bool ok = true;
  std::string note;   // what the value does; for a wrong one, also how to fix it
  Value recommended;  // what `setup` writes; nullopt = leave the value alone
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Openfire splits these lists on commas and white space.
bool lists(const std::string& list, const std::string& item) {
  std::string token;
  std::istringstream in(list);
  while (std::getline(in, token, ','))
    for (std::istringstream words(token); words >> token;)
      if (iequals(token, item)) return true;
  return false;
}

Verdict judge_policy(const Value& v) {
  if (v && *v == "needed") return {true, "clients must present a certificate", {}};
  if (v && *v == "wanted") return {true, "clients are asked for a certificate (needed makes it mandatory)", {}};
  return {false,
          "Openfire does not ask clients for a certificate" + std::string(v ? "" : " (unset means disabled)") +
              "; set it to needed (or wanted while password users migrate) and restart Openfire",
          "needed"};
}

Verdict judge_mechs(const Value& v) {
  if (!v) return {true, "the default list includes EXTERNAL", {}};
  if (lists(*v, "EXTERNAL")) return {true, "includes EXTERNAL", {}};
  return {false, "EXTERNAL is missing, so certificate login is never offered; add EXTERNAL to the list",
          v->find_first_not_of(" ,") == std::string::npos ? "EXTERNAL" : *v + ",EXTERNAL"};
}

Verdict judge_mappers(const Value& v) {
  // Our certificates carry CN=<username> and an xmppAddr. The CN mapper reads the CN on every
  // Openfire and every Java. The SAN mapper alone (Openfire 5.1's default) finds nothing on
  // Java 17, which hands Openfire the xmppAddr wrapped in one tag too many (JDK-8277976, fixed in
  // Java 19), so the CN mapper must be on the list.
  const std::string both = san_mapper + "," + cn_mapper;
  if (v && lists(*v, cn_mapper)) return {true, "the CN mapper reads the username our certificates carry as CN", {}};
  return {false,
          std::string(v ? "" : "unset means SAN only on Openfire 5.1+; ") +
              "without " + cn_mapper +
              " nodes cannot log in where Openfire runs on Java 17, which hides the xmppAddr from the SAN mapper; "
              "set it to " + both + " and restart Openfire",
          both};
}

Verdict judge_autoadd(const Value& v) {
  if (!v || !iequals(*v, "true")) return {true, "off: only provisioned users can log in", {}};
  return {false,
          "any certificate from a CA in the client trust store creates its own account, and a deleted node "
          "comes back at its next login; set it to false",
          "false"};
}

Verdict judge_revalidation(const Value& v) {
  if (!v || !iequals(*v, "true")) return {true, "off: certificates are verified before EXTERNAL is offered", {}};
  return {false, "any client certificate is accepted for SASL EXTERNAL without verification; set it to false", "false"};
}

struct Rule {
  const char* key;
  Verdict (*judge)(const Value&);
};

constexpr Rule rules[] = {
    {"xmpp.client.cert.policy", judge_policy},
    {"sasl.mechs", judge_mechs},
    {"provider.clientCertIdentityMap.classList", judge_mappers},
    {"xmpp.auth.autoadd", judge_autoadd},
    {"xmpp.auth.external.client.skip-cert-revalidation", judge_revalidation},
};

Result<Value> read_property(const OpenfireApi& api, const std::string& key) {
  auto answer = api.call("GET", "/system/properties/" + encode_segment(key));
  if (!answer) return answer.error();
  json doc = json::parse(answer->body, nullptr, false);
  // GET answers 404 PropertyNotFoundException for a property that was never set in the
  // database: Openfire then uses its built-in default.
  if (answer->status == 404 && doc.is_object() && doc.contains("exception") &&
      doc["exception"] == "PropertyNotFoundException")
    return Value{};
  if (answer->status != 200 || !doc.is_object() || !doc.contains("value") || !doc["value"].is_string())
    return api.unexpected("reading " + key, *answer);
  return Value{doc["value"].get<std::string>()};
}

// PUT answers 404 for a property that is not set yet; POST creates or overwrites.
Result<void> write_property(const OpenfireApi& api, const std::string& key, const std::string& value) {
  auto answer = api.call("POST", "/system/properties", json{{"key", key}, {"value", value}}.dump());
  if (!answer) return answer.error();
  if (answer->status != 201) return api.unexpected("setting " + key, *answer);
  return {};
}

std::string shown(const Value& v) { return v ? *v : "(unset)"; }

void line(std::ostream& out, const char* mark, const std::string& text) { print_check_line(out, mark, text); }

// sk_X509_free is a macro; a handle needs a function.
void free_stack(STACK_OF(X509) * stack) { sk_X509_free(stack); }

// A word for a POSIX shell: quoted only when it needs to be.
std::string shell_word(const std::string& s) {
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || std::string_view("/._-+:=,@").find(static_cast<char>(c)) != std::string_view::npos;
      }))
    return s;
  std::string quoted = "'";
  for (char c : s) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace

bool check_openfire(const OpenfireApi& api, std::ostream& out) {
  out << "Openfire REST API at " << api.where() << "\n";
  bool all_ok = true;
  auto ready = api.call("GET", "/system/readiness");
  if (ready && ready->status == 200) {
    line(out, "OK", "readiness: Openfire is started and accepts connections");
  } else {
    all_ok = false;
    line(out, "WRONG", "readiness: " + (ready ? api.unexpected("the readiness check", *ready) : ready.error()).detail);
  }

  std::vector<Value> values;
  for (const auto& rule : rules) {
    auto value = read_property(api, rule.key);
    if (!value) {
      line(out, "WRONG", "REST API plugin: " + value.error().detail);
      out << "result: the system properties could not be read\n";
      return false;
    }
    values.push_back(std::move(*value));
  }
  line(out, "OK", "REST API plugin: enabled, and it accepts our credentials");
  for (std::size_t i = 0; i < values.size(); ++i) {
    const Verdict verdict = rules[i].judge(values[i]);
    all_ok = all_ok && verdict.ok;
    line(out, verdict.ok ? "OK" : "WRONG", std::string(rules[i].key) + " = " + shown(values[i]) + ": " + verdict.note);
  }
  line(out, "NOTE",
       "the client trust store cannot be read through the REST API: `evpn-ca openfire setup` prints the "
       "keytool command that imports the root");
  out << (all_ok ? "result: OK\n" : "result: WRONG settings above; `evpn-ca openfire setup` fixes the properties\n");
  return all_ok;
}

Result<void> setup_openfire(const OpenfireApi& api, const OpenfireSetup& setup, std::ostream& out) {
  out << "Openfire REST API at " << api.where() << "\n";
  for (const auto& rule : rules) {
    auto value = read_property(api, rule.key);
    if (!value) return value.error();
    const Verdict verdict = rule.judge(*value);
    if (!verdict.recommended || verdict.recommended == *value) {
      line(out, "kept", std::string(rule.key) + " = " + shown(*value) + ": " + verdict.note);
      continue;
    }
    if (auto r = write_property(api, rule.key, *verdict.recommended); !r) return r;
    line(out, "set", std::string(rule.key) + " = " + *verdict.recommended + " (was " + value->value_or("unset") + ")");
  }

  auto store = read_property(api, "xmpp.socket.ssl.client.truststore");
  if (!store) return store.error();
  auto pass = read_property(api, "xmpp.socket.ssl.client.trustpass");
  if (!pass) return pass.error();
  std::filesystem::path store_path = store->value_or("resources/security/client.truststore");
  if (store_path.is_relative()) store_path = setup.openfire_home / store_path;
  // Never echo a password that was changed from Openfire's default.
  const std::string storepass =
      !*pass || **pass == "changeit" ? "changeit" : "<value of xmpp.socket.ssl.client.trustpass>";

  out << "\nLeft to do on the Openfire host (the REST API cannot do these):\n"
      << "  1. Import the enrollment root into Openfire's client trust store (copy " << setup.ca_cert.string()
      << " there first):\n"
      << "       keytool -importcert -noprompt -trustcacerts -alias evpn-enroll-" << setup.fingerprint.substr(0, 16)
      << " -file " << shell_word(setup.ca_cert.string()) << " -keystore " << shell_word(store_path.string())
      << " -storepass " << shell_word(storepass) << "\n"
      << "     (or in the admin console: TLS Certificates > client trust store > import)\n"
      << "  2. Restart Openfire, which reads the certificate policy and the identity mapping at start-up:\n"
      << "       systemctl restart openfire\n"
      << "Then `evpn-ca openfire check` should report OK.\n";
  return {};
}

Result<std::string> make_pkcs12(const crypto::Key& key, const crypto::Certificate& cert,
                                const crypto::Certificate& root, const std::string& alias,
                                const std::string& password) {
  using X509Stack = crypto::Handle<STACK_OF(X509), free_stack>;
  using Pkcs12 = crypto::Handle<PKCS12, PKCS12_free>;
  X509Stack stack(sk_X509_new_null());
  if (!stack) return crypto::openssl_failure(Errc::internal, "cannot allocate a certificate stack");
  // The stack only borrows the root: PKCS12_create copies what it needs.
  if (sk_X509_push(stack.get(), root.get()) <= 0) return crypto::openssl_failure(Errc::internal, "sk_X509_push");
  // nid 0 and iteration 0 pick OpenSSL 3's defaults (PBES2 AES-256-CBC, PBKDF2, SHA-256 MAC).
  Pkcs12 p12(PKCS12_create(password.c_str(), alias.c_str(), key.get(), cert.get(), stack.get(), 0, 0, 0, 0, 0));
  if (!p12) return crypto::openssl_failure(Errc::internal, "cannot build the PKCS#12 keystore");
  unsigned char* der = nullptr;
  const int size = i2d_PKCS12(p12.get(), &der);
  if (size <= 0) return crypto::openssl_failure(Errc::internal, "cannot encode the PKCS#12 keystore");
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
  OPENSSL_clear_free(der, static_cast<std::size_t>(size));
  return out;
}

std::string keystore_commands(const std::filesystem::path& p12, const std::string& alias, const std::string& password,
                              const std::filesystem::path& openfire_home) {
  const std::string keystore = shell_word((openfire_home / "resources/security/keystore").string());
  std::ostringstream out;
  out << "  keytool -importkeystore -noprompt -srckeystore " << shell_word(p12.string())
      << " -srcstoretype PKCS12 -srcstorepass " << shell_word(password) << " -srcalias " << shell_word(alias)
      << " -destkeystore " << keystore << " -deststorepass changeit -destalias " << shell_word(alias) << "\n"
      << "  keytool -list -keystore " << keystore << " -storepass changeit   "
      << "# delete Openfire's self-signed entries for the same domain: keytool -delete -alias NAME ...\n"
      << "  systemctl restart openfire\n";
  return out.str();
}

}  // namespace evpn::ca::xmpp
