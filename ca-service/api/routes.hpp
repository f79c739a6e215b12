#pragma once
// Request -> response for every endpoint. Never sees a socket, so tests call it directly.

#include "ca-service/api/errors.hpp"
#include "ca-service/api/server.hpp"
#include "ca-service/authority/authority.hpp"

namespace evpn::ca::api {

class Routes {
 public:
  explicit Routes(authority::Authority& authority);

  // Answers the request and writes its one log line (method, path, status, ms, username, serial).
  Response handle(const Request& request, const RequestContext& context);

 private:
  authority::Authority& authority_;
};

}  // namespace evpn::ca::api
