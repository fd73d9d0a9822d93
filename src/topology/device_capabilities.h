// DeviceCapabilities: what a node tells its peers about its hardware (legacy exo's
// device_capabilities.py), plus detection on a Linux host.
//
// Contract: plain value types, no synchronisation. memory_mb is MiB (2^20 bytes), >= 0 and fits the
// int32 of the wire format; flops are TFLOPS, finite and >= 0. JSON parsing of peer-supplied
// capabilities returns Result (see topology/result.h) and enforces those ranges. Detection never
// throws for a missing or odd /proc or /sys file: unknown parts keep their "unknown" values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "topology/result.h"

namespace exo::topology {

struct DeviceFlops {
  double fp32 = 0.0;  // TFLOPS
  double fp16 = 0.0;
  double int8 = 0.0;

  bool operator==(const DeviceFlops&) const = default;
};

struct DeviceCapabilities {
  std::string model;
  std::string chip;
  std::int32_t memory_mb = 0;  // serialised as "memory"
  DeviceFlops flops;

  bool operator==(const DeviceCapabilities&) const = default;
};

// Upper bound accepted for any FLOPS figure from a peer (1 EFLOPS); legacy tables top out near 330.
inline constexpr double kMaxPlausibleTflops = 1e6;

// ("Unknown Model", "Unknown Chip", 0, 0/0/0), legacy UNKNOWN_DEVICE_CAPABILITIES.
DeviceCapabilities unknown_device_capabilities();

// {"model": str, "chip": str, "memory": int, "flops": {"fp32": float, "fp16": float, "int8": float}}
nlohmann::json device_capabilities_to_json(const DeviceCapabilities& capabilities);
// Strict inverse: all keys required, extra keys ignored; strings <= kMaxJsonStringBytes;
// memory an integer in [0, 2^31-1] (an integral float such as 16384.0 is accepted, as pydantic does);
// flops finite numbers in [0, kMaxPlausibleTflops].
Result<DeviceCapabilities> device_capabilities_from_json(const nlohmann::json& json);

// ---- Linux detection -------------------------------------------------------------------------------

enum class SimdLevel { SCALAR, SSE, AVX, AVX2_FMA, AVX512, NEON };

// The parts of /proc/cpuinfo (and cpufreq) that the FLOPS estimate uses.
struct CpuInfo {
  std::string model_name;  // "" when the file names no model
  int logical_cpus = 0;    // "processor" entries
  int physical_cores = 0;  // distinct (physical id, core id) pairs; logical_cpus when absent
  double max_mhz = 0.0;    // 0 when unknown
  SimdLevel simd = SimdLevel::SCALAR;
  bool has_native_fp16 = false;  // avx512_fp16 (x86) or fphp/asimdhp (ARM)
  bool has_int8_dot = false;     // avx512_vnni/avx_vnni (x86) or asimddp (ARM)
};

// "MemTotal: N kB" -> N / 1024 MiB (what psutil's total // 2**20 gives); nullopt if absent/garbled.
std::optional<std::int64_t> parse_meminfo_total_mb(std::string_view meminfo_text);

// Parses /proc/cpuinfo text (x86 or ARM layout). The model comes from "model name", else
// "Hardware", else "Model"; SIMD level and features from "flags" (x86) or "Features" (ARM);
// max_mhz from the largest "cpu MHz" (callers may override it with cpufreq's maximum).
CpuInfo parse_cpuinfo(std::string_view cpuinfo_text);

// Peak-throughput estimate, documented in docs/wire-formats.md:
//   fp32 TFLOPS = physical_cores * max_mhz * 1e6 * flops_per_cycle(simd) / 1e12, with
//   flops_per_cycle = SCALAR 2, SSE 8, AVX 16, AVX2_FMA 32, AVX512 64, NEON 16;
//   fp16 = 2 * fp32 with native fp16 arithmetic, else fp32;
//   int8 = 4 * fp32 with an int8 dot-product instruction, else 2 * fp32.
// All zero when the core count or clock is unknown. FLOPS never influence partitioning.
DeviceFlops estimate_cpu_flops(const CpuInfo& cpu);

// model = "Linux Box (<cpu model>)", chip = "<cpu model>" (shape of legacy's GPU branch);
// "Unknown Chip" when the CPU model is unknown. memory is clamped to the int32 range.
DeviceCapabilities linux_device_capabilities(const CpuInfo& cpu, std::int64_t memory_mb);

// Reads /proc/meminfo (sysinfo() as fallback), /proc/cpuinfo and
// /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq. System RAM is reported, not GPU memory.
DeviceCapabilities detect_device_capabilities();

}  // namespace exo::topology
