// Dequantization of real tensors: small-q8_0 / small-q4_0 / small-q4_k_m were produced from
// small-f16 by an external quantizer, so every tensor must dequantize to (nearly) the F16 weights.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "inference/gguf_file.h"
#include "inference/quants.h"
#include "test_support.h"

namespace exo::inference {
namespace {

struct ErrorStats {
  double max_abs = 0;
  double relative_rms = 0;
};

ErrorStats compare(const std::vector<float>& reference, const std::vector<float>& actual) {
  ErrorStats stats;
  double error_energy = 0;
  double signal_energy = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double diff = static_cast<double>(actual[i]) - reference[i];
    stats.max_abs = std::max(stats.max_abs, std::fabs(diff));
    error_energy += diff * diff;
    signal_energy += static_cast<double>(reference[i]) * reference[i];
  }
  stats.relative_rms = std::sqrt(error_energy / signal_energy);
  return stats;
}

// Largest |x| of each 32-value block, for per-block error bounds.
std::vector<float> block_magnitudes(const std::vector<float>& x, std::size_t block) {
  std::vector<float> out(x.size() / block, 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) out[i / block] = std::max(out[i / block], std::fabs(x[i]));
  return out;
}

struct QuantizedModelCase {
  std::string file;
  double max_relative_rms;  // over each quantized tensor
};

void PrintTo(const QuantizedModelCase& c, std::ostream* os) {
  *os << c.file;
}

class QuantizedModelTensors : public ::testing::TestWithParam<QuantizedModelCase> {};

TEST_P(QuantizedModelTensors, EveryTensorDequantizesCloseToTheF16Weights) {
  const auto reference_path = test::model_path("small-f16.gguf");
  const auto quantized_path = test::model_path(GetParam().file);
  EXO_SKIP_IF_MISSING(reference_path);
  EXO_SKIP_IF_MISSING(quantized_path);
  const GgufFile reference = GgufFile::open(reference_path.string());
  const GgufFile quantized = GgufFile::open(quantized_path.string());
  ASSERT_EQ(reference.tensors().size(), quantized.tensors().size());

  int quantized_tensors = 0;
  for (const GgufTensor& original : reference.tensors()) {
    const GgufTensor& tensor = quantized.tensor(original.name);  // stored in another order: look up by name
    ASSERT_EQ(tensor.shape, original.shape) << original.name;
    const std::vector<float> expected = dequantize_tensor(original);
    const std::vector<float> actual = dequantize_tensor(tensor);
    if (tensor.type() == TensorType::F32) {
      EXPECT_EQ(actual, expected) << original.name << ": unquantized tensors must be identical";
      continue;
    }
    ++quantized_tensors;
    const ErrorStats stats = compare(expected, actual);
    EXPECT_LE(stats.relative_rms, GetParam().max_relative_rms)
        << original.name << " (" << tensor.type_info->name << ")";
    // The symmetric 32-value formats have a hard bound: one grid step (largest |x| / 8 for Q4_0,
    // half a step of largest |x| / 127 for Q8_0) plus f16 rounding of the scale.
    if (tensor.type() == TensorType::Q8_0 || tensor.type() == TensorType::Q4_0) {
      const auto magnitudes = block_magnitudes(expected, 32);
      const float steps = tensor.type() == TensorType::Q8_0 ? 254.0f : 8.0f;
      for (std::size_t i = 0; i < expected.size(); ++i) {
        const float bound = magnitudes[i / 32] / steps + magnitudes[i / 32] / 1024.0f;
        ASSERT_LE(std::fabs(actual[i] - expected[i]), bound) << original.name << " value " << i;
      }
    }
  }
  EXPECT_EQ(quantized_tensors, 30);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, QuantizedModelTensors,
                         ::testing::Values(QuantizedModelCase{"small-q8_0.gguf", 0.006},
                                           QuantizedModelCase{"small-q4_0.gguf", 0.12},
                                           QuantizedModelCase{"small-q4_k_m.gguf", 0.10}),
                         [](const ::testing::TestParamInfo<QuantizedModelCase>& param_info) {
                           std::string name =
                               param_info.param.file.substr(6, param_info.param.file.size() - 11);
                           return name;
                         });

// Re-quantizing the F16 weights with our quantizer: for the round-to-nearest formats the result must
// be byte-identical to the file (same format, same rounding rule); for the k-quants, whose external
// quantizer searches for better scales, our simpler quantizer must stay within 1.3x of its error.
TEST(QuantizedModelTensors, OwnQuantizerReproducesOrApproachesTheExternalOne) {
  const auto reference_path = test::model_path("small-f16.gguf");
  EXO_SKIP_IF_MISSING(reference_path);
  const GgufFile reference = GgufFile::open(reference_path.string());
  for (const char* name : {"small-q8_0.gguf", "small-q4_0.gguf", "small-q4_k_m.gguf"}) {
    const auto path = test::model_path(name);
    EXO_SKIP_IF_MISSING(path);
    const GgufFile quantized = GgufFile::open(path.string());
    for (const GgufTensor& tensor : quantized.tensors()) {
      if (tensor.type() == TensorType::F32) continue;
      const std::vector<float> weights = dequantize_tensor(reference.tensor(tensor.name));
      std::vector<std::uint8_t> ours(tensor.byte_size);
      quantize_row(tensor.type(), weights, ours);
      if (tensor.type() == TensorType::Q8_0 || tensor.type() == TensorType::Q4_0) {
        EXPECT_TRUE(std::equal(ours.begin(), ours.end(), tensor.data.begin()))
            << name << " " << tensor.name << ": re-quantized bytes differ";
        continue;
      }
      std::vector<float> ours_decoded(weights.size());
      dequantize_row(tensor.type(), ours, ours_decoded);
      const double ours_error = compare(weights, ours_decoded).relative_rms;
      const double theirs_error = compare(weights, dequantize_tensor(tensor)).relative_rms;
      EXPECT_LE(ours_error, theirs_error * 1.3)
          << name << " " << tensor.name << " (" << tensor.type_info->name << ")";
    }
  }
}

}  // namespace
}  // namespace exo::inference
