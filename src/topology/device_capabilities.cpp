#include "topology/device_capabilities.h"

#include <sys/sysinfo.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "topology/json_fields.h"

namespace exo::topology {
namespace {

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// Calls visit(key, value) for every "key : value" line.
template <typename Visitor>
void for_each_key_value_line(std::string_view text, Visitor&& visit) {
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    visit(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
}

std::set<std::string, std::less<>> split_words(std::string_view text) {
  std::set<std::string, std::less<>> words;
  std::size_t position = 0;
  while (position < text.size()) {
    const auto start = text.find_first_not_of(" \t", position);
    if (start == std::string_view::npos) break;
    auto end = text.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = text.size();
    words.emplace(text.substr(start, end - start));
    position = end;
  }
  return words;
}

std::optional<double> parse_double(std::string_view text) {
  double value = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end == text.data()) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end == text.data()) return std::nullopt;
  return value;
}

std::string read_small_file(const char* path) {
  std::ifstream file(path);
  if (!file) return {};
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

double flops_per_cycle(SimdLevel simd) {
  switch (simd) {
    case SimdLevel::SCALAR:
      return 2.0;
    case SimdLevel::SSE:
      return 8.0;
    case SimdLevel::AVX:
      return 16.0;
    case SimdLevel::AVX2_FMA:
      return 32.0;
    case SimdLevel::AVX512:
      return 64.0;
    case SimdLevel::NEON:
      return 16.0;
  }
  return 2.0;
}

}  // namespace

DeviceCapabilities unknown_device_capabilities() {
  return DeviceCapabilities{"Unknown Model", "Unknown Chip", 0, DeviceFlops{}};
}

nlohmann::json device_capabilities_to_json(const DeviceCapabilities& capabilities) {
  nlohmann::json flops = nlohmann::json::object();
  flops["fp32"] = capabilities.flops.fp32;
  flops["fp16"] = capabilities.flops.fp16;
  flops["int8"] = capabilities.flops.int8;
  nlohmann::json json = nlohmann::json::object();
  json["model"] = capabilities.model;
  json["chip"] = capabilities.chip;
  json["memory"] = capabilities.memory_mb;
  json["flops"] = std::move(flops);
  return json;
}

Result<DeviceCapabilities> device_capabilities_from_json(const nlohmann::json& json) {
  if (!json.is_object()) return Error{"device_capabilities: expected a JSON object"};
  DeviceCapabilities capabilities;
  std::string error;
  std::int64_t memory = 0;
  if (!read_string_field(json, "model", kMaxJsonStringBytes, capabilities.model, error) ||
      !read_string_field(json, "chip", kMaxJsonStringBytes, capabilities.chip, error) ||
      !read_integer_field(json, "memory", 0, std::numeric_limits<std::int32_t>::max(), memory, error,
                          /*allow_integral_float=*/true)) {
    return Error{"device_capabilities: " + error};
  }
  capabilities.memory_mb = static_cast<std::int32_t>(memory);
  const auto flops = json.find("flops");
  if (flops == json.end()) return Error{"device_capabilities: flops: missing"};
  if (!flops->is_object()) return Error{"device_capabilities: flops: expected a JSON object"};
  if (!read_number_field(*flops, "fp32", 0.0, kMaxPlausibleTflops, capabilities.flops.fp32, error) ||
      !read_number_field(*flops, "fp16", 0.0, kMaxPlausibleTflops, capabilities.flops.fp16, error) ||
      !read_number_field(*flops, "int8", 0.0, kMaxPlausibleTflops, capabilities.flops.int8, error)) {
    return Error{"device_capabilities: flops." + error};
  }
  return capabilities;
}

std::optional<std::int64_t> parse_meminfo_total_mb(std::string_view meminfo_text) {
  std::optional<std::int64_t> total_mb;
  for_each_key_value_line(meminfo_text, [&](std::string_view key, std::string_view value) {
    if (key != "MemTotal" || total_mb) return;
    const auto space = value.find(' ');
    const std::string_view number = value.substr(0, space);
    const std::string_view unit = space == std::string_view::npos ? "" : trim(value.substr(space));
    const auto kib = parse_int(number);
    if (!kib || *kib < 0 || unit != "kB") return;
    total_mb = *kib / 1024;
  });
  return total_mb;
}

CpuInfo parse_cpuinfo(std::string_view cpuinfo_text) {
  CpuInfo cpu;
  std::string hardware;
  std::string board_model;
  std::string flags;
  std::set<std::pair<std::string, std::string>> cores;
  std::string physical_id;
  bool flags_seen = false;
  for_each_key_value_line(cpuinfo_text, [&](std::string_view key, std::string_view value) {
    if (key == "processor") {
      ++cpu.logical_cpus;
      physical_id.clear();
    } else if (key == "model name" && cpu.model_name.empty()) {
      cpu.model_name = value;
    } else if (key == "Hardware" && hardware.empty()) {
      hardware = value;
    } else if (key == "Model" && board_model.empty()) {
      board_model = value;
    } else if ((key == "flags" || key == "Features") && !flags_seen) {
      flags = value;
      flags_seen = true;
    } else if (key == "cpu MHz") {
      if (const auto mhz = parse_double(value); mhz && *mhz > cpu.max_mhz) cpu.max_mhz = *mhz;
    } else if (key == "physical id") {
      physical_id = value;
    } else if (key == "core id") {
      cores.emplace(physical_id, std::string(value));
    }
  });
  if (cpu.model_name.empty()) cpu.model_name = !hardware.empty() ? hardware : board_model;
  cpu.physical_cores = cores.empty() ? cpu.logical_cpus : static_cast<int>(cores.size());

  const auto words = split_words(flags);
  const auto has = [&](std::string_view word) { return words.find(word) != words.end(); };
  if (has("avx512f")) {
    cpu.simd = SimdLevel::AVX512;
  } else if (has("avx2") && has("fma")) {
    cpu.simd = SimdLevel::AVX2_FMA;
  } else if (has("avx")) {
    cpu.simd = SimdLevel::AVX;
  } else if (has("sse2") || has("sse")) {
    cpu.simd = SimdLevel::SSE;
  } else if (has("asimd") || has("neon")) {
    cpu.simd = SimdLevel::NEON;
  }
  cpu.has_native_fp16 = has("avx512_fp16") || has("fphp") || has("asimdhp");
  cpu.has_int8_dot = has("avx512_vnni") || has("avx_vnni") || has("asimddp");
  return cpu;
}

DeviceFlops estimate_cpu_flops(const CpuInfo& cpu) {
  if (cpu.physical_cores <= 0 || !(cpu.max_mhz > 0.0)) return DeviceFlops{};
  const double fp32 = cpu.physical_cores * cpu.max_mhz * 1e6 * flops_per_cycle(cpu.simd) / 1e12;
  return DeviceFlops{fp32, cpu.has_native_fp16 ? 2.0 * fp32 : fp32,
                     cpu.has_int8_dot ? 4.0 * fp32 : 2.0 * fp32};
}

DeviceCapabilities linux_device_capabilities(const CpuInfo& cpu, std::int64_t memory_mb) {
  DeviceCapabilities capabilities;
  capabilities.chip = cpu.model_name.empty() ? std::string("Unknown Chip") : cpu.model_name;
  capabilities.model = "Linux Box (" + capabilities.chip + ")";
  capabilities.memory_mb = static_cast<std::int32_t>(
      std::clamp<std::int64_t>(memory_mb, 0, std::numeric_limits<std::int32_t>::max()));
  capabilities.flops = estimate_cpu_flops(cpu);
  return capabilities;
}

DeviceCapabilities detect_device_capabilities() {
  std::optional<std::int64_t> memory_mb = parse_meminfo_total_mb(read_small_file("/proc/meminfo"));
  if (!memory_mb) {
    struct sysinfo info {};
    if (sysinfo(&info) == 0) {
      memory_mb =
          static_cast<std::int64_t>(info.totalram) * static_cast<std::int64_t>(info.mem_unit) / (1 << 20);
    }
  }
  CpuInfo cpu = parse_cpuinfo(read_small_file("/proc/cpuinfo"));
  const std::string max_khz = read_small_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
  if (const auto khz = parse_int(trim(max_khz)); khz && *khz > 0)
    cpu.max_mhz = static_cast<double>(*khz) / 1000.0;
  return linux_device_capabilities(cpu, memory_mb.value_or(0));
}

}  // namespace exo::topology
