#include "agent/check_report.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace evpn::agent {

namespace {

using Json = nlohmann::json;

// "OK", "WARNING", ...: the status as the Nagios convention prints it.
std::string upper(CheckStatus status) {
  std::string s = to_string(status);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

// A Prometheus label value: backslash, double quote and newline escaped.
std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

}  // namespace

std::string format_text(const HealthReport& report) {
  std::string summary = "EVPN " + upper(report.status()) + " - ";
  if (report.jid.empty()) {
    summary += report.checks.empty() ? std::string("nothing checked") : report.checks.front().message;
  } else {
    summary += report.jid;
    if (report.expiry)
      summary += report.expiry->left.count() > 0 ? ", " + describe_duration(report.expiry->left) + " left" : ", expired";
    if (report.login)
      summary += report.login->ok ? ", login " + std::to_string(report.login->elapsed.count()) + " ms" : ", login failed";
    std::string problems;
    for (const auto& c : report.checks)
      if (c.status == CheckStatus::warning || c.status == CheckStatus::critical)
        problems += (problems.empty() ? "; problems: " : ", ") + c.name;
    summary += problems;
  }
  std::string out = summary + "\n";
  for (const auto& c : report.checks) {
    char columns[64];
    std::snprintf(columns, sizeof columns, "%-9s%-12s ", upper(c.status).c_str(), c.name.c_str());
    out += columns + c.message + "\n";
  }
  return out;
}

Json to_json(const HealthReport& report) {
  Json checks = Json::array();
  for (const auto& c : report.checks) {
    Json entry = c.data;
    entry["name"] = c.name;
    entry["status"] = to_string(c.status);
    entry["message"] = c.message;
    checks.push_back(std::move(entry));
  }
  return {{"status", to_string(report.status())},
          {"username", report.username},
          {"jid", report.jid},
          {"checks", std::move(checks)}};
}

std::string format_metrics(const HealthReport& report) {
  const std::string labels = "{username=\"" + label_value(report.username) + "\"}";
  std::string out;
  const auto gauge = [&](const std::string& name, const std::string& help, const std::string& value) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + labels + " " + value + "\n";
  };
  if (report.expiry)
    gauge("evpn_agent_certificate_expiry_timestamp_seconds",
          "When the node certificate expires (notAfter), in seconds since the Unix epoch.",
          std::to_string(to_unix(report.expiry->not_after)));
  if (report.login) {
    gauge("evpn_agent_login_ok", "1 when the last SASL EXTERNAL login check succeeded, else 0.",
          report.login->ok ? "1" : "0");
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", static_cast<double>(report.login->elapsed.count()) / 1000.0);
    gauge("evpn_agent_login_seconds", "How long the last XMPP login check took, in seconds.", seconds);
  }
  gauge("evpn_agent_check_status", "Result of evpn-agent check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        std::to_string(static_cast<int>(report.status())));
  return out;
}

}  // namespace evpn::agent
