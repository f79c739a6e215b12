#pragma once
// The forms of a HealthReport: text for a person or Nagios, JSON, and Prometheus metrics.

#include "agent/check.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace evpn::agent {

// The human form: a Nagios-style summary line ("EVPN OK - node1@evpn.test, 29 days left,
// login 120 ms"), then one line per check.
std::string format_text(const HealthReport& report);

// {"status", "username", "jid", "checks": [{"name", "status", "message", ...data}]}.
nlohmann::json to_json(const HealthReport& report);

// Prometheus text format for node_exporter's textfile collector: certificate expiry timestamp,
// login ok and seconds (when known) and the overall status, each labelled with the username.
std::string format_metrics(const HealthReport& report);

}  // namespace evpn::agent
