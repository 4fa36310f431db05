// energy_test: RAPL counters read from a powercap tree (written here: this machine has none),
// wrap-around, a missing or unreadable tree, NVML absent, and the busy-time ledger
#include <doctest/doctest.h>

#include "../support.h"
#include "nas/worker/energy.h"

#include <filesystem>
#include <fstream>

using namespace nas;

namespace {

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text << "\n";
}

// A meter whose readings the test sets.
struct FakeMeter : worker::EnergyMeter {
  double* value;
  explicit FakeMeter(double* v) : value(v) {}
  std::optional<double> joules() override { return *value; }
  std::string name() const override { return "fake"; }
};

} // namespace

TEST_CASE("RAPL: package domains are summed, sub-domains ignored, wrap-around handled") {
  test::TempDir dir;
  const std::string root = dir.path;
  write(root + "/intel-rapl:0/name", "package-0");
  write(root + "/intel-rapl:0/energy_uj", "1000000");
  write(root + "/intel-rapl:0/max_energy_range_uj", "5000000");
  write(root + "/intel-rapl:0:0/name", "core");          // a sub-domain: part of package-0 already
  write(root + "/intel-rapl:0:0/energy_uj", "999999999");
  write(root + "/intel-rapl:1/name", "package-1");
  write(root + "/intel-rapl:1/energy_uj", "0");
  write(root + "/intel-rapl:1/max_energy_range_uj", "5000000");
  std::string why;
  auto m = worker::open_rapl(why, root);
  REQUIRE(m);
  CHECK(m->name() == "rapl:package-0+package-1");
  CHECK(*m->joules() == doctest::Approx(0));
  write(root + "/intel-rapl:0/energy_uj", "3000000");     // +2 J
  write(root + "/intel-rapl:1/energy_uj", "500000");      // +0.5 J
  CHECK(*m->joules() == doctest::Approx(2.5));
  write(root + "/intel-rapl:0/energy_uj", "1000000");     // wrapped: +2 J to the 5 J range, +1 J after
  CHECK(*m->joules() == doctest::Approx(5.5));
}

TEST_CASE("RAPL: a wrap-around without a known range never makes the total go down") {
  test::TempDir dir;
  write(dir.path + "/intel-rapl:0/name", "package-0");
  write(dir.path + "/intel-rapl:0/energy_uj", "4000000");   // no max_energy_range_uj
  std::string why;
  auto m = worker::open_rapl(why, dir.path);
  REQUIRE(m);
  write(dir.path + "/intel-rapl:0/energy_uj", "5000000");   // +1 J
  CHECK(*m->joules() == doctest::Approx(1));
  write(dir.path + "/intel-rapl:0/energy_uj", "1000");      // wrapped: that interval is skipped
  CHECK(*m->joules() == doctest::Approx(1));
  write(dir.path + "/intel-rapl:0/energy_uj", "2001000");   // +2 J
  CHECK(*m->joules() == doctest::Approx(3));
}

TEST_CASE("RAPL: a missing tree or one without packages says why") {
  test::TempDir dir;
  std::string why;
  CHECK(!worker::open_rapl(why, dir.file("none")));
  CHECK(why.find("does not exist") != std::string::npos);
  write(dir.path + "/intel-rapl:0/name", "package-0");    // no energy_uj: as if unreadable
  CHECK(!worker::open_rapl(why, dir.path));
  CHECK(why.find("not readable") != std::string::npos);
}

TEST_CASE("NVML: an unknown bus id or a missing library is reported, never fatal") {
  std::string why;
  auto m = worker::open_nvml("00000000:ff:1f.7", why);
  CHECK(!m);
  CHECK(!why.empty());
}

TEST_CASE("the ledger shares the device's energy by busy time") {
  double reading = 100;
  worker::EnergyLedger ledger(std::make_unique<FakeMeter>(&reading), "", 2);
  CHECK(ledger.known());
  ledger.add_busy(0, 3);
  ledger.add_busy(1, 1);
  reading = 140;                       // 40 J while slot 0 was busy 3 s and slot 1 1 s
  ledger.tick();
  CHECK(ledger.slot_joules(0) == doctest::Approx(30));
  CHECK(ledger.slot_joules(1) == doctest::Approx(10));
  reading = 150;                       // 10 J while nobody was busy: the device total only
  ledger.tick();
  CHECK(ledger.slot_joules(0) == doctest::Approx(30));
  CHECK(*ledger.total_joules() == doctest::Approx(50));
  ledger.add_busy(1, 2);
  reading = 170;
  ledger.tick();
  CHECK(ledger.slot_joules(1) == doctest::Approx(30));
  CHECK(ledger.slot_busy(1) == doctest::Approx(3));

  worker::EnergyLedger unknown(nullptr, "no RAPL counters", 1);
  CHECK(!unknown.known());
  CHECK(unknown.note() == "no RAPL counters");
  CHECK(!unknown.total_joules());
}
