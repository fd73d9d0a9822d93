#include "topology/device_capabilities.h"

#include "topology/json_fields.h"

#include <gtest/gtest.h>

namespace exo::topology {
namespace {

TEST(DeviceCapabilities, UnknownValues) {
  EXPECT_EQ(unknown_device_capabilities(),
            (DeviceCapabilities{"Unknown Model", "Unknown Chip", 0, {0.0, 0.0, 0.0}}));
}

TEST(DeviceCapabilities, JsonShapeAndRoundTrip) {
  const DeviceCapabilities m3{"MacBook Pro", "Apple M3 Max", 16384, {14.2, 28.4, 56.8}};
  const auto json = device_capabilities_to_json(m3);
  EXPECT_EQ(json, nlohmann::json::parse(R"({"model": "MacBook Pro", "chip": "Apple M3 Max", "memory": 16384,
                                            "flops": {"fp32": 14.2, "fp16": 28.4, "int8": 56.8}})"));
  auto parsed = device_capabilities_from_json(json);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, m3);
}

TEST(DeviceCapabilities, JsonAcceptsIntegerFlopsAndIntegralFloatMemory) {
  // Legacy manual-discovery files write flops as integers; pydantic coerces 16384.0 to an int.
  auto parsed = device_capabilities_from_json(nlohmann::json::parse(
      R"({"model": "Unknown Model", "chip": "Unknown Chip", "memory": 16384.0,
          "flops": {"fp32": 0, "fp16": 0, "int8": 0}, "extra": true})"));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->memory_mb, 16384);
  EXPECT_EQ(parsed->flops, (DeviceFlops{0.0, 0.0, 0.0}));
}

TEST(DeviceCapabilities, JsonRejectsBadValues) {
  const char* bad_inputs[] = {
      R"("text")",
      R"({"chip": "c", "memory": 1, "flops": {"fp32": 0, "fp16": 0, "int8": 0}})",
      R"({"model": "m", "chip": "c", "memory": -1, "flops": {"fp32": 0, "fp16": 0, "int8": 0}})",
      R"({"model": "m", "chip": "c", "memory": 2147483648, "flops": {"fp32": 0, "fp16": 0, "int8": 0}})",
      R"({"model": "m", "chip": "c", "memory": 1.5, "flops": {"fp32": 0, "fp16": 0, "int8": 0}})",
      R"({"model": "m", "chip": "c", "memory": "1", "flops": {"fp32": 0, "fp16": 0, "int8": 0}})",
      R"({"model": "m", "chip": "c", "memory": 1})",
      R"({"model": "m", "chip": "c", "memory": 1, "flops": [0, 0, 0]})",
      R"({"model": "m", "chip": "c", "memory": 1, "flops": {"fp32": -1, "fp16": 0, "int8": 0}})",
      R"({"model": "m", "chip": "c", "memory": 1, "flops": {"fp32": 1e300, "fp16": 0, "int8": 0}})",
      R"({"model": "m", "chip": "c", "memory": 1, "flops": {"fp32": 0, "fp16": 0}})",
      R"({"model": null, "chip": "c", "memory": 1, "flops": {"fp32": 0, "fp16": 0, "int8": 0}})",
  };
  for (const char* input : bad_inputs) {
    EXPECT_FALSE(device_capabilities_from_json(nlohmann::json::parse(input)).ok()) << input;
  }
  nlohmann::json long_model = device_capabilities_to_json(unknown_device_capabilities());
  long_model["model"] = std::string(kMaxJsonStringBytes + 1, 'm');
  EXPECT_FALSE(device_capabilities_from_json(long_model).ok());
}

TEST(Meminfo, TotalInMebibytesRoundedDown) {
  EXPECT_EQ(parse_meminfo_total_mb("MemTotal:       16318412 kB\nMemFree:         1234 kB\n"),
            15935);  // 16318412 / 1024 = 15935.95
  EXPECT_EQ(parse_meminfo_total_mb("MemFree: 1 kB\nMemTotal: 2048 kB\n"), 2);
  EXPECT_EQ(parse_meminfo_total_mb("MemFree: 1 kB\n"), std::nullopt);
  EXPECT_EQ(parse_meminfo_total_mb("MemTotal: lots kB\n"), std::nullopt);
  EXPECT_EQ(parse_meminfo_total_mb("MemTotal: 2048 MB\n"), std::nullopt);
  EXPECT_EQ(parse_meminfo_total_mb(""), std::nullopt);
}

constexpr const char* kX86Cpuinfo =
    "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\n"
    "cpu MHz\t\t: 3192.000\nphysical id\t: 0\ncore id\t\t: 0\n"
    "flags\t\t: fpu sse sse2 avx fma avx2\n\n"
    "processor\t: 1\nmodel name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\ncpu MHz\t\t: 3200.000\n"
    "physical id\t: 0\ncore id\t\t: 0\nflags\t\t: fpu sse sse2 avx fma avx2\n\n"
    "processor\t: 2\nmodel name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz\ncpu MHz\t\t: 3100.000\n"
    "physical id\t: 0\ncore id\t\t: 1\nflags\t\t: fpu sse sse2 avx fma avx2\n";

TEST(Cpuinfo, X86Layout) {
  const CpuInfo cpu = parse_cpuinfo(kX86Cpuinfo);
  EXPECT_EQ(cpu.model_name, "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz");
  EXPECT_EQ(cpu.logical_cpus, 3);
  EXPECT_EQ(cpu.physical_cores, 2);  // (0,0) and (0,1)
  EXPECT_DOUBLE_EQ(cpu.max_mhz, 3200.0);
  EXPECT_EQ(cpu.simd, SimdLevel::AVX2_FMA);
  EXPECT_FALSE(cpu.has_native_fp16);
  EXPECT_FALSE(cpu.has_int8_dot);
}

TEST(Cpuinfo, ArmLayoutWithoutModelName) {
  const CpuInfo cpu = parse_cpuinfo(
      "processor : 0\nBogoMIPS : 108.00\nFeatures : fp asimd evtstrm crc32 cpuid asimdhp asimddp\n\n"
      "processor : 1\nFeatures : fp asimd\n\nHardware : BCM2835\nModel : Raspberry Pi 4 Model B Rev 1.4\n");
  EXPECT_EQ(cpu.model_name, "BCM2835");
  EXPECT_EQ(cpu.logical_cpus, 2);
  EXPECT_EQ(cpu.physical_cores, 2);  // no core ids: logical count
  EXPECT_EQ(cpu.max_mhz, 0.0);
  EXPECT_EQ(cpu.simd, SimdLevel::NEON);
  EXPECT_TRUE(cpu.has_native_fp16);
  EXPECT_TRUE(cpu.has_int8_dot);
  EXPECT_EQ(parse_cpuinfo("Model : Raspberry Pi 4\n").model_name, "Raspberry Pi 4");
}

TEST(Cpuinfo, SimdLevels) {
  EXPECT_EQ(parse_cpuinfo("flags : sse sse2 avx avx2 fma avx512f avx512_vnni\n").simd, SimdLevel::AVX512);
  EXPECT_TRUE(parse_cpuinfo("flags : avx512f avx512_vnni\n").has_int8_dot);
  EXPECT_EQ(parse_cpuinfo("flags : sse sse2 avx avx2\n").simd, SimdLevel::AVX);  // AVX2 without FMA
  EXPECT_EQ(parse_cpuinfo("flags : sse sse2\n").simd, SimdLevel::SSE);
  EXPECT_EQ(parse_cpuinfo("flags : fpu\n").simd, SimdLevel::SCALAR);
  EXPECT_EQ(parse_cpuinfo("").simd, SimdLevel::SCALAR);
}

TEST(CpuFlops, HandComputedEstimates) {
  CpuInfo cpu;
  cpu.physical_cores = 6;
  cpu.max_mhz = 4600.0;
  cpu.simd = SimdLevel::AVX2_FMA;
  // 6 cores * 4.6e9 Hz * 32 FLOP/cycle = 883.2e9 FLOPS = 0.8832 TFLOPS.
  DeviceFlops flops = estimate_cpu_flops(cpu);
  EXPECT_DOUBLE_EQ(flops.fp32, 0.8832);
  EXPECT_DOUBLE_EQ(flops.fp16, 0.8832);
  EXPECT_DOUBLE_EQ(flops.int8, 1.7664);

  cpu.physical_cores = 4;
  cpu.max_mhz = 1800.0;
  cpu.simd = SimdLevel::NEON;
  cpu.has_native_fp16 = true;
  cpu.has_int8_dot = true;
  // 4 * 1.8e9 * 16 = 115.2e9 = 0.1152 TFLOPS.
  flops = estimate_cpu_flops(cpu);
  EXPECT_DOUBLE_EQ(flops.fp32, 0.1152);
  EXPECT_DOUBLE_EQ(flops.fp16, 0.2304);
  EXPECT_DOUBLE_EQ(flops.int8, 0.4608);

  cpu.max_mhz = 0.0;
  EXPECT_EQ(estimate_cpu_flops(cpu), DeviceFlops{});
}

TEST(LinuxCapabilities, ModelAndChipStrings) {
  CpuInfo cpu;
  cpu.model_name = "AMD Ryzen 9 7950X";
  const auto caps = linux_device_capabilities(cpu, 65536);
  EXPECT_EQ(caps.model, "Linux Box (AMD Ryzen 9 7950X)");
  EXPECT_EQ(caps.chip, "AMD Ryzen 9 7950X");
  EXPECT_EQ(caps.memory_mb, 65536);
  EXPECT_EQ(linux_device_capabilities(CpuInfo{}, 1).chip, "Unknown Chip");
  EXPECT_EQ(linux_device_capabilities(CpuInfo{}, std::int64_t{1} << 40).memory_mb, 2147483647);
}

TEST(DetectDeviceCapabilities, ReportsThisHostsMemory) {
  const auto caps = detect_device_capabilities();
  EXPECT_GT(caps.memory_mb, 0);
  EXPECT_FALSE(caps.chip.empty());
  EXPECT_TRUE(caps.model.starts_with("Linux Box ("));
  EXPECT_TRUE(device_capabilities_from_json(device_capabilities_to_json(caps)).ok());
}

}  // namespace
}  // namespace exo::topology
