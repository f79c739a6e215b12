#pragma once
// The operator's side of Openfire: the system properties that certificate login depends on
// (`evpn-ca openfire check|setup`), and the keystore material and keytool commands for the
// steps the REST API cannot do.

#include <filesystem>
#include <ostream>
#include <string>

#include "ca-service/xmpp/openfire.hpp"
#include "common/crypto/certificate.hpp"
#include "common/crypto/key.hpp"

namespace evpn::ca::xmpp {

// Prints one OK / WRONG line (with the fix) per item to `out`: the REST API's readiness, the
// plugin's availability with our credentials, xmpp.client.cert.policy, sasl.mechs, the client
// certificate identity mappers, xmpp.auth.autoadd and skip-cert-revalidation.
// Returns true when everything is OK.
bool check_openfire(const OpenfireApi& api, std::ostream& out);

struct OpenfireSetup {
  std::filesystem::path ca_cert;  // the enrollment root, for the trust-store import
  std::string fingerprint;        // its SHA-256 fingerprint (names the trust-store alias)
  std::filesystem::path openfire_home = "/usr/share/openfire";
};

// Sets the properties `check_openfire` looks at to the recommended values through the
// system-properties endpoint, leaving acceptable values alone, then prints what it did and the
// steps left to the operator: the keytool import into the client trust store and the restart.
Result<void> setup_openfire(const OpenfireApi& api, const OpenfireSetup& setup, std::ostream& out);

// A PKCS#12 keystore (DER) holding `key` and `cert` with its issuer `root` under `alias`,
// encrypted with `password` (OpenSSL 3 defaults: AES-256-CBC, PBKDF2, SHA-256 MAC; Java 17 reads it).
Result<std::string> make_pkcs12(const crypto::Key& key, const crypto::Certificate& cert,
                                const crypto::Certificate& root, const std::string& alias, const std::string& password);

// The keytool commands that load a PKCS#12 written by `make_pkcs12` into Openfire's keystore.
std::string keystore_commands(const std::filesystem::path& p12, const std::string& alias, const std::string& password,
                              const std::filesystem::path& openfire_home = "/usr/share/openfire");

}  // namespace evpn::ca::xmpp
