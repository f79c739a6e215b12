#pragma once
// Catch2 helpers for evpn::Result: printing one in a failed check ("ok", or the error code and
// detail), and taking the value or the error of one that must hold it.

#include "common/result.hpp"

#include <catch2/catch.hpp>

#include <string>

template <class T>
struct Catch::StringMaker<evpn::Result<T>> {
  static std::string convert(const evpn::Result<T>& r) {
    return r ? "ok" : std::string(evpn::to_string(r.error().code)) + ": " + r.error().detail;
  }
};

namespace evpn::test {

// The value of a Result that must hold one; fails the test with the error detail otherwise.
template <class T>
T ok(Result<T> result) {
  INFO((result ? std::string() : result.error().detail));
  REQUIRE(result.has_value());
  return std::move(*result);
}

inline void ok(const Result<void>& result) {
  INFO((result ? std::string() : result.error().detail));
  REQUIRE(result.has_value());
}

// The error of a Result that must hold one.
template <class T>
Error error_of(const Result<T>& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error();
}

}  // namespace evpn::test
