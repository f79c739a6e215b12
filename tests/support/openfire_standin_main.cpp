// openfire-standin: the Openfire REST API stand-in as a program, for integration tests that run
// the real evpn-ca. Serves on 127.0.0.1:PORT until SIGTERM or SIGINT; logs one line per request.

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "tests/support/openfire_standin.hpp"

int main(int argc, char** argv) {
  evpn::test::OpenfireStandin::Options options;
  options.print_requests = true;
  CLI::App app{"openfire-standin: a stand-in for Openfire's REST API plugin, for tests"};
  app.add_option("--port", options.port, "TCP port on 127.0.0.1")->required();
  app.add_option("--secret", options.secret, "plugin.restapi.secret")->required();
  app.add_option("--domain", options.domain, "xmpp.domain")->capture_default_str();
  app.add_flag("--disabled", options.disabled, "plugin.restapi.enabled=false: authenticated calls get 403");
  CLI11_PARSE(app, argc, argv);

  // Blocked before the server thread starts, so that only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  try {
    evpn::test::OpenfireStandin standin(options);
    std::cout << "openfire-standin: listening on " << standin.url() << (options.disabled ? " (plugin disabled)" : "")
              << std::endl;
    int received = 0;
    sigwait(&signals, &received);
  } catch (const std::exception& e) {
    std::cerr << "openfire-standin: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
