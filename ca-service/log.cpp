#include "ca-service/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <string>

namespace evpn {

void init_logging(std::string_view program, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt(std::string(program));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %n %l: %v");
  auto lvl = spdlog::level::from_str(std::string(level));
  logger->set_level(lvl == spdlog::level::off && level != "off" ? spdlog::level::info : lvl);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace evpn
