// The error vocabulary of the GGUF model-file layer.
//
// Contract: every problem found while opening or reading a GGUF file (I/O failure, truncation,
// corruption, hostile sizes, missing or mistyped metadata, unknown tensor) is reported as a GgufError
// (a std::runtime_error) whose what() names the problem and, where it applies, the byte offset, the
// metadata key or the tensor concerned. Nothing in this layer prints, aborts or reads out of bounds.
#pragma once

#include <stdexcept>
#include <string>

namespace exo::inference {

class GgufError : public std::runtime_error {
 public:
  explicit GgufError(const std::string& message) : std::runtime_error(message) {}
};

// A metadata key is absent, or its value has a type (or a value) the caller cannot use.
class GgufMetadataError : public GgufError {
 public:
  using GgufError::GgufError;
};

}  // namespace exo::inference
