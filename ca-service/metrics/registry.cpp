#include "ca-service/metrics/registry.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <stdexcept>

namespace evpn::ca::metrics {

void Counter::raise_to(std::uint64_t total) noexcept {
  auto seen = value_.load(std::memory_order_relaxed);
  while (seen < total && !value_.compare_exchange_weak(seen, total, std::memory_order_relaxed)) {
  }
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) ||
      std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end())
    throw std::logic_error("histogram bounds must be strictly ascending");
}

void Histogram::observe(double v) noexcept {
  // Bucket i counts bounds_[i-1] < v <= bounds_[i]; "le" is inclusive.
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

template <class Metric>
Metric& Family<Metric>::with(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size())
    throw std::logic_error(name_ + " takes " + std::to_string(label_names_.size()) + " label values");
  std::lock_guard lock(mutex_);
  auto& child = children_[values];
  if (!child) {
    if constexpr (std::is_same_v<Metric, Histogram>) child = std::make_unique<Histogram>(bounds_);
    else child = std::make_unique<Metric>();
  }
  return *child;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

namespace {

template <class F>
F& add(std::vector<std::unique_ptr<F>>& families, std::unique_ptr<F> family) {
  families.push_back(std::move(family));
  return *families.back();
}

std::string escape(std::string_view value, bool help) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && !help) out += "\\\"";
    else out += c;
  }
  return out;
}

// "{a="x",b="y"}", with `extra` (already formatted, e.g. le="0.5") last; "" for no labels.
std::string labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   const std::string& extra = "") {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i)
    out += (out.empty() ? "" : ",") + names[i] + "=\"" + escape(values[i], false) + "\"";
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? out : "{" + out + "}";
}

std::string number(double v) {
  if (v == std::numeric_limits<double>::infinity()) return "+Inf";
  return fmt::format("{}", v);
}

template <class Metric>
void header(std::string& out, const Family<Metric>& f, const char* type) {
  out += "# HELP " + f.name() + " " + escape(f.help(), true) + "\n# TYPE " + f.name() + " " + type + "\n";
}

}  // namespace

Family<Counter>& Registry::counter(std::string name, std::string help, std::vector<std::string> labels) {
  order_.push_back({'c', counters_.size()});
  auto& f = add(counters_, std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(labels)));
  // A family without labels has one series from the start, so that a rate over it begins at 0.
  if (f.label_names().empty()) f.with({});
  return f;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help, std::vector<std::string> labels) {
  order_.push_back({'g', gauges_.size()});
  auto& f = add(gauges_, std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(labels)));
  if (f.label_names().empty()) f.with({});
  return f;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help, std::vector<std::string> labels,
                                       std::vector<double> bounds) {
  order_.push_back({'h', histograms_.size()});
  auto& f = add(histograms_, std::make_unique<Family<Histogram>>(std::move(name), std::move(help), std::move(labels),
                                                                  std::move(bounds)));
  if (f.label_names().empty()) f.with({});
  return f;
}

std::string Registry::expose() const {
  std::string out;
  for (const Entry& e : order_) {
    if (e.kind == 'c') {
      const auto& f = *counters_[e.index];
      header(out, f, "counter");
      f.each([&](const auto& values, const Counter& c) {
        out += f.name() + labels(f.label_names(), values) + " " + std::to_string(c.value()) + "\n";
      });
    } else if (e.kind == 'g') {
      const auto& f = *gauges_[e.index];
      header(out, f, "gauge");
      f.each([&](const auto& values, const Gauge& g) {
        out += f.name() + labels(f.label_names(), values) + " " + number(g.value()) + "\n";
      });
    } else {
      const auto& f = *histograms_[e.index];
      header(out, f, "histogram");
      f.each([&](const auto& values, const Histogram& h) {
        const auto s = h.snapshot();
        for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
          const double le = i < h.bounds().size() ? h.bounds()[i] : std::numeric_limits<double>::infinity();
          out += f.name() + "_bucket" + labels(f.label_names(), values, "le=\"" + number(le) + "\"") + " " +
                 std::to_string(s.cumulative[i]) + "\n";
        }
        out += f.name() + "_sum" + labels(f.label_names(), values) + " " + number(s.sum) + "\n";
        out += f.name() + "_count" + labels(f.label_names(), values) + " " + std::to_string(s.cumulative.back()) + "\n";
      });
    }
  }
  return out;
}

}  // namespace evpn::ca::metrics
