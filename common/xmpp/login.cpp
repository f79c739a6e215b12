#include "common/xmpp/login.hpp"

#include "common/crypto/handle.hpp"

#include <strophe.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

namespace evpn::xmpp {
namespace {

using Clock = std::chrono::steady_clock;
using Ctx = crypto::Handle<xmpp_ctx_t, xmpp_ctx_free>;
using Conn = crypto::Handle<xmpp_conn_t, xmpp_conn_release>;

// Time allowed for the clean close after a login that timed out, so teardown stays bounded.
constexpr auto teardown_time = std::chrono::milliseconds(500);

// What one login attempt learns from libstrophe's callbacks and its log stream.
struct Attempt {
  explicit Attempt(const LoginOptions& o) : options(o) {}

  const LoginOptions& options;
  LoginReport report;
  bool tls_started = false;    // the server agreed to STARTTLS
  bool logged_in = false;      // XMPP_CONN_CONNECT arrived
  bool closed = false;         // the connection is gone
  std::string certificate_error;  // OpenSSL's reason for rejecting the server certificate
  std::string sasl_failure;       // the server's <failure/> condition and text, when it sent one
  std::string last_error;         // libstrophe's last error line
  int connect_errno = 0;          // why the TCP connection failed, when it did

  std::string endpoint() const { return options.host + ":" + std::to_string(options.port); }
};

// libstrophe's certificate-failure callback gets no user data; every callback runs inside
// xmpp_run_once on the calling thread, so the attempt in progress is found through this.
thread_local Attempt* current_attempt = nullptr;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string xml_unescape(std::string_view s) {
  static constexpr std::pair<std::string_view, char> entities[] = {
      {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}, {"&amp;", '&'}};
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto* e = std::find_if(std::begin(entities), std::end(entities), [&](const auto& entity) {
      return s.substr(i).starts_with(entity.first);
    });
    if (e != std::end(entities)) {
      out += e->second;
      i += e->first.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// The value of attribute `name` in the first tag of `xml`.
std::string attribute(std::string_view xml, std::string_view name) {
  const std::string key = " " + std::string(name) + "=\"";
  const auto start = xml.find(key);
  if (start == std::string_view::npos || start > xml.find('>')) return {};
  const auto value = start + key.size();
  return xml_unescape(xml.substr(value, xml.find('"', value) - value));
}

// "<condition>: <text>" from a serialised SASL <failure/> stanza (RFC 6120 §6.5).
std::string describe_sasl_failure(std::string_view xml) {
  const auto open_end = xml.find('>');
  if (open_end == std::string_view::npos || xml[open_end - 1] == '/') return "no reason given";
  std::string condition;
  const auto child = xml.find('<', open_end);
  if (child != std::string_view::npos && xml.substr(child + 1, 4) != "text" && xml[child + 1] != '/') {
    const auto name_end = xml.find_first_of(" />", child + 1);
    condition = std::string(xml.substr(child + 1, name_end - child - 1));
  }
  std::string text;
  if (const auto text_tag = xml.find("<text"); text_tag != std::string_view::npos) {
    const auto text_start = xml.find('>', text_tag) + 1;
    const auto text_end = xml.find("</text>", text_start);
    if (text_start != 0 && text_end != std::string_view::npos) {
      text = xml_unescape(xml.substr(text_start, text_end - text_start));
    }
  }
  if (condition.empty()) return text.empty() ? "no reason given" : text;
  return text.empty() ? condition : condition + ": " + text;
}

// libstrophe reports handshake progress only through its log; SASL stanzas arrive before
// user stanza handlers are allowed to run, so the log is also where the server's reason is.
void on_log(void* userdata, xmpp_log_level_t level, const char* area, const char* msg) {
  auto& a = *static_cast<Attempt*>(userdata);
  if (a.options.trace) a.options.trace(std::string("libstrophe ") + area + ": " + msg);
  const std::string_view m(msg);
  if (level == XMPP_LEVEL_ERROR) a.last_error = msg;
  // A refused TCP connection reaches the connection handler with error 0; only the log has errno.
  if (constexpr std::string_view refused = "connection failed, error "; m.starts_with(refused)) {
    a.connect_errno = std::atoi(msg + refused.size());
  } else if (m.starts_with("RECV: <stream:stream")) {
    a.report.connected = true;
    // A stream reopened after STARTTLS means the handshake and the server
    // certificate check passed (the certfail handler aborts otherwise).
    if (a.tls_started) a.report.secured = true;
  } else if (m == "proceeding with TLS") {
    a.tls_started = true;
  } else if (m.starts_with("SENT: <auth ")) {
    a.report.mechanism = attribute(m.substr(6), "mechanism");
  } else if (m.find(XMPP_NS_SASL) != std::string_view::npos) {
    if (m.starts_with("RECV: <success")) a.report.authenticated = true;
    if (m.starts_with("RECV: <failure")) a.sasl_failure = describe_sasl_failure(m.substr(6));
  }
}

// Refuses every server certificate OpenSSL did not verify; records why.
int on_certificate_failure(const xmpp_tlscert_t*, const char* const errormsg) {
  if (current_attempt && current_attempt->certificate_error.empty()) {
    current_attempt->certificate_error = errormsg ? errormsg : "unknown verification error";
  }
  return 0;
}

std::string describe_stream_error(const xmpp_stream_error_t* e) {
  if (e->text) return e->text;
  xmpp_stanza_t* condition = e->stanza ? xmpp_stanza_get_children(e->stanza) : nullptr;
  const char* name = condition ? xmpp_stanza_get_name(condition) : nullptr;
  return name ? name : "unknown stream error";
}

// Why the connection closed before the login completed, from the furthest step reached.
Error why_login_failed(const Attempt& a, int error, const xmpp_stream_error_t* stream_error) {
  const auto& o = a.options;
  if (error == 0) error = a.connect_errno;
  const std::string reason =
      error          ? std::strerror(error)
      : stream_error ? "the server closed the stream: " + describe_stream_error(stream_error)
      : !a.last_error.empty() ? a.last_error
                              : "the connection was closed";
  if (!a.certificate_error.empty()) {
    return fail(Errc::unauthorized, "the XMPP server's certificate did not verify: " +
                                        a.certificate_error +
                                        "; check that " + o.ca_file.string() +
                                        " holds the root that issued it (evpn-agent: --xmpp-ca) and that it names " +
                                        o.jid.substr(o.jid.find('@') + 1));
  }
  if (!a.sasl_failure.empty()) {
    return fail(Errc::unauthorized,
                "the XMPP server refused SASL EXTERNAL login for " + o.jid + ": " + a.sasl_failure);
  }
  if (!a.report.connected) {
    return fail(Errc::unavailable, "cannot reach the XMPP server at " + a.endpoint() + ": " + reason);
  }
  if (a.tls_started && !a.report.secured) {
    return fail(Errc::unauthorized,
                "the TLS handshake with the XMPP server at " + a.endpoint() + " failed: " + reason);
  }
  if (a.report.secured && a.report.mechanism.empty()) {
    return fail(Errc::unauthorized, "the XMPP server at " + a.endpoint() +
                                        " did not offer SASL EXTERNAL: it must ask for client "
                                        "certificates (ejabberd: tls_verify: true)");
  }
  if (a.report.authenticated) {
    // The certificate passed SASL but the server would not open a session for it: the account is
    // locked out (a revoked node) or not allowed. Retrying will not change that.
    return fail(Errc::unauthorized, "the XMPP server accepted the certificate for " + o.jid +
                                        " but refused to open a session (" + reason +
                                        "): the node may have been revoked");
  }
  return fail(Errc::unavailable, "the XMPP server at " + a.endpoint() +
                                     " closed the connection during login: " + reason);
}

// The session must be encrypted and bound to the expected account: with an empty authzid
// the server picks the identity from the certificate, which may not be the one we asked for.
std::optional<Error> check_session(const Attempt& a) {
  const auto& jid = a.report.bound_jid;
  if (!a.report.secured) {
    return fail(Errc::unauthorized, "the XMPP session with " + a.endpoint() + " is not encrypted");
  }
  if (lower(std::string_view(jid).substr(0, jid.find('/'))) != lower(a.options.jid)) {
    return fail(Errc::unauthorized, "the XMPP server bound the session to '" + jid + "', not to " +
                                        a.options.jid + ": the certificate does not name " +
                                        a.options.jid);
  }
  return std::nullopt;
}

void on_connection(xmpp_conn_t* conn, xmpp_conn_event_t event, int error,
                   xmpp_stream_error_t* stream_error, void* userdata) {
  auto& a = *static_cast<Attempt*>(userdata);
  if (event == XMPP_CONN_CONNECT) {
    a.logged_in = true;
    a.report.authenticated = true;
    a.report.secured = xmpp_conn_is_secured(conn) != 0;
    const char* bound = xmpp_conn_get_bound_jid(conn);
    a.report.bound_jid = bound ? bound : "";
    a.report.error = check_session(a);
    xmpp_disconnect(conn);
    return;
  }
  a.closed = true;
  if (!a.logged_in && !a.report.error) a.report.error = why_login_failed(a, error, stream_error);
}

std::optional<Error> check_options(const LoginOptions& o) {
  const auto at = o.jid.find('@');
  if (at == 0 || at == std::string::npos || at + 1 == o.jid.size() ||
      o.jid.find('/') != std::string::npos) {
    return fail(Errc::invalid_request, "'" + o.jid + "' is not a bare JID of the form user@domain");
  }
  if (o.host.empty() || o.port == 0) {
    return fail(Errc::invalid_request, "the XMPP server needs a host and a non-zero port");
  }
  if (o.cert_file.empty() == o.cert_pem.empty() || o.key_file.empty() == o.key_pem.empty()) {
    return fail(Errc::invalid_request, "give the client certificate and its key either as files or as PEM text");
  }
  const std::pair<const char*, const std::filesystem::path*> files[] = {
      {"client certificate", &o.cert_file}, {"private key", &o.key_file}, {"XMPP CA", &o.ca_file}};
  for (const auto& [what, path] : files) {
    if (path->empty() && path != &o.ca_file) continue;
    std::string why;
    std::error_code ec;
    if (::access(path->c_str(), R_OK) != 0) {
      why = std::strerror(errno);
    } else if (!std::filesystem::is_regular_file(*path, ec)) {
      why = "not a regular file";
    }
    if (!why.empty()) {
      return fail(Errc::invalid_request,
                  "cannot read the " + std::string(what) + " file '" + path->string() + "': " + why);
    }
  }
  return std::nullopt;
}

// Sets an environment variable for its lifetime and then puts back what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    ::setenv(name, value, 1);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() { saved_ ? ::setenv(name_, saved_->c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

// PEM text as a file that exists only in memory (memfd), named /proc/self/fd/<n> for libstrophe,
// which reads certificates and keys from paths only. Closed, and so freed, at destruction.
class MemoryFile {
 public:
  static Result<MemoryFile> create(std::string_view text) {
    MemoryFile file(::memfd_create("evpn-login", MFD_CLOEXEC));
    if (file.fd_ < 0) return fail(Errc::internal, std::string("memfd_create: ") + std::strerror(errno));
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(file.fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail(Errc::internal, std::string("writing a memory file: ") + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    return file;
  }
  MemoryFile(MemoryFile&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  MemoryFile& operator=(MemoryFile&&) = delete;
  ~MemoryFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  std::filesystem::path path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  explicit MemoryFile(int fd) : fd_(fd) {}
  int fd_;
};

// The file libstrophe reads: `file` itself, or a memory file holding `pem` (kept in `holder`).
Result<std::filesystem::path> as_file(const std::filesystem::path& file, const std::string& pem,
                                      std::optional<MemoryFile>& holder) {
  if (!file.empty()) return file;
  auto memory = MemoryFile::create(pem);
  if (!memory) return memory.error();
  holder.emplace(std::move(*memory));
  return holder->path();
}

void run_until(xmpp_ctx_t* ctx, const bool& finished, Clock::time_point deadline) {
  while (!finished && Clock::now() < deadline) xmpp_run_once(ctx, 50);
}

void attempt_login(Attempt& a, Clock::time_point deadline) {
  const auto& o = a.options;
  // libstrophe 0.12 calls SSL_CTX_set_default_verify_paths before loading the CA file, for the
  // STARTTLS context and for a probe context, so on its own every CA of the system trust store
  // would vouch for the XMPP server too, and parsing that store took most of the agent's CPU.
  // libstrophe has no hook to replace the defaults, and checking the chain again after the
  // handshake would still pay for parsing the store. OpenSSL reads its default locations from
  // SSL_CERT_FILE and SSL_CERT_DIR at each of those calls, so during the login the default file
  // is the CA file and the default directory is "" (none: no hash directory, no OSSL_STORE URI,
  // no error left queued). setenv is safe only where no other thread runs meanwhile (the agent:
  // only an idle Boost.Asio resolver thread), so a multi-threaded caller turns ca_file_only off
  // and trusts the system store as well. OpenSSL ignores both variables in a setuid or
  // file-capability process (secure_getenv), hence the refusal there.
  if (o.ca_file_only && ::getauxval(AT_SECURE) != 0) {
    a.report.error = fail(Errc::internal,
                          "evpn-agent runs setuid or with file capabilities, so OpenSSL would trust "
                          "the whole system trust store for the XMPP server instead of " +
                              o.ca_file.string() + ": run it as a plain program (e.g. as root)");
    return;
  }
  std::optional<ScopedEnv> default_ca_file, default_ca_dir;
  if (o.ca_file_only) {
    default_ca_file.emplace("SSL_CERT_FILE", o.ca_file.c_str());
    default_ca_dir.emplace("SSL_CERT_DIR", "");
  }
  std::optional<MemoryFile> cert_memory, key_memory;
  auto cert_file = as_file(o.cert_file, o.cert_pem, cert_memory);
  auto key_file = cert_file ? as_file(o.key_file, o.key_pem, key_memory) : cert_file;
  if (!key_file) {
    a.report.error = key_file.error();
    return;
  }
  xmpp_log_t log{on_log, &a};
  Ctx ctx(xmpp_ctx_new(nullptr, &log));
  if (!ctx) {
    a.report.error = fail(Errc::internal, "libstrophe could not create a context");
    return;
  }
  Conn conn(xmpp_conn_new(ctx.get()));
  if (!conn) {
    a.report.error = fail(Errc::internal, "libstrophe could not create a connection");
    return;
  }
  // No stream management: a login check must not leave a resumable session on the server.
  xmpp_conn_set_flags(conn.get(), XMPP_CONN_FLAG_MANDATORY_TLS | XMPP_CONN_FLAG_DISABLE_SM);
  xmpp_conn_set_jid(conn.get(), o.jid.c_str());
  xmpp_conn_set_client_cert(conn.get(), cert_file->c_str(), key_file->c_str());
  xmpp_conn_set_cafile(conn.get(), o.ca_file.c_str());
  xmpp_conn_set_certfail_handler(conn.get(), on_certificate_failure);
  // No password is ever set: libstrophe then has nothing but SASL EXTERNAL to offer, so a
  // server that would accept anything else cannot make this check pass.

  if (xmpp_connect_client(conn.get(), o.host.c_str(), o.port, on_connection, &a) != XMPP_EOK) {
    const std::string why = a.last_error.empty() ? "cannot open a connection" : a.last_error;
    a.report.error =
        fail(Errc::unavailable, "cannot reach the XMPP server at " + a.endpoint() + ": " + why);
    return;
  }
  run_until(ctx.get(), a.closed, deadline);
  if (!a.closed) {
    if (!a.logged_in) {
      a.report.error = fail(Errc::unavailable, "XMPP login to " + a.endpoint() +
                                                   " did not finish within " +
                                                   std::to_string(o.deadline.count()) + " ms");
    }
    xmpp_disconnect(conn.get());
    run_until(ctx.get(), a.closed, Clock::now() + teardown_time);
  }
  // conn is released before ctx (reverse declaration order); releasing a connection that is
  // still open closes its socket and fires on_connection, which reads `a`: still alive here.
}

}  // namespace

LoginReport verify_login(const LoginOptions& options) {
  static std::once_flag initialized;
  std::call_once(initialized, xmpp_initialize);

  const auto start = Clock::now();
  Attempt attempt(options);
  if (auto invalid = check_options(options)) {
    attempt.report.error = std::move(invalid);
  } else {
    current_attempt = &attempt;
    attempt_login(attempt, start + options.deadline);
    current_attempt = nullptr;
  }
  attempt.report.elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (!options.trace) return attempt.report;
  const std::string took = std::to_string(attempt.report.elapsed.count()) + " ms";
  if (attempt.report.error) {
    options.trace("XMPP login as " + options.jid + " at " + attempt.endpoint() + " failed after " + took + ": " +
                  attempt.report.error->detail);
  } else {
    options.trace("XMPP login as " + options.jid + " at " + attempt.endpoint() + " succeeded with SASL " +
                  attempt.report.mechanism + " in " + took + ", bound to " + attempt.report.bound_jid);
  }
  return attempt.report;
}

}  // namespace evpn::xmpp
