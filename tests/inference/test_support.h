// Helpers shared by the inference tests: where the shared model files live and how to read them.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace exo::inference::test {

inline std::filesystem::path models_dir() {
  return std::filesystem::path(EXO_SHARED_DIR) / "models";
}
inline std::filesystem::path model_path(const std::string& name) {
  return models_dir() / name;
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::vector<std::uint8_t> read_binary_file(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  return {text.begin(), text.end()};
}

}  // namespace exo::inference::test

// Skips the current test when a shared data file is absent (e.g. a checkout without ../shared).
#define EXO_SKIP_IF_MISSING(path)                                                                           \
  do {                                                                                                      \
    if (!std::filesystem::exists(path)) {                                                                   \
      GTEST_SKIP() << "shared test data not found: " << (path).string() << " (../shared/models is absent)"; \
    }                                                                                                       \
  } while (false)
