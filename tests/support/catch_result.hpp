#pragma once
// Lets Catch2 print an evpn::Result in a failed check: "ok", or the error code and detail.

#include "common/result.hpp"

#include <catch2/catch.hpp>

#include <string>

template <class T>
struct Catch::StringMaker<evpn::Result<T>> {
  static std::string convert(const evpn::Result<T>& r) {
    return r ? "ok" : std::string(evpn::to_string(r.error().code)) + ": " + r.error().detail;
  }
};
