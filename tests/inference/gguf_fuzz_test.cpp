// Robustness of the GGUF parser against truncated and corrupted images of a real model file:
// every attempt must either parse (with all tensor data inside the image) or throw GgufError.
// Run under AddressSanitizer to also prove the absence of out-of-bounds reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <span>
#include <utility>

#include "inference/gguf_file.h"
#include "test_support.h"

namespace exo::inference {
namespace {

enum class Outcome { PARSED, REJECTED };

// Parses `bytes`; fails the test on any exception other than GgufError or on a parsed file whose
// tensors are not inside the image.
Outcome try_parse(std::span<const std::uint8_t> bytes, const std::string& label) {
  try {
    const GgufFile file = GgufFile::from_view(bytes, label);
    for (const auto& tensor : file.tensors()) {
      EXPECT_LE(file.data_offset() + tensor.offset + tensor.byte_size, bytes.size())
          << label << " " << tensor.name;
      EXPECT_EQ(tensor.data.size(), tensor.byte_size) << label;
      EXPECT_GE(tensor.data.data(), bytes.data()) << label;
      EXPECT_LE(tensor.data.data() + tensor.data.size(), bytes.data() + bytes.size()) << label;
    }
    return Outcome::PARSED;
  } catch (const GgufError&) {
    return Outcome::REJECTED;
  } catch (const std::exception& error) {
    ADD_FAILURE() << label << ": unexpected exception type: " << error.what();
    return Outcome::REJECTED;
  }
}

class GgufFuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto path = test::model_path("small-llama3.gguf");
    EXO_SKIP_IF_MISSING(path);
    original_ = test::read_binary_file(path);
    const GgufFile file = GgufFile::from_bytes(original_, "original");
    data_offset_ = file.data_offset();
    ASSERT_GT(data_offset_, 1000u);
  }
  std::vector<std::uint8_t> original_;
  std::uint64_t data_offset_ = 0;
};

TEST_F(GgufFuzz, EveryTruncationOfTheHeaderIsRejected) {
  // Every prefix shorter than the header region lacks part of the metadata or tensor descriptions.
  // All offsets in the first 512 bytes, then every 11th byte up to the end of the header.
  int attempts = 0;
  for (std::size_t size = 0; size < data_offset_; size += size < 512 ? 1 : 11) {
    std::vector<std::uint8_t> prefix(original_.begin(),
                                     original_.begin() + static_cast<std::ptrdiff_t>(size));
    EXPECT_EQ(try_parse(std::move(prefix), "prefix " + std::to_string(size)), Outcome::REJECTED)
        << "a " << size << "-byte prefix was accepted";
    ++attempts;
  }
  EXPECT_GT(attempts, 1500);
}

TEST_F(GgufFuzz, TruncationInsideTensorDataIsRejected) {
  std::mt19937_64 rng(1234);
  std::uniform_int_distribution<std::size_t> cut(data_offset_, original_.size() - 1);
  for (int i = 0; i < 40; ++i) {
    const std::size_t size = cut(rng);
    std::vector<std::uint8_t> prefix(original_.begin(),
                                     original_.begin() + static_cast<std::ptrdiff_t>(size));
    EXPECT_EQ(try_parse(std::move(prefix), "prefix " + std::to_string(size)), Outcome::REJECTED) << size;
  }
  EXPECT_EQ(try_parse(original_, "complete"), Outcome::PARSED);
}

TEST_F(GgufFuzz, RandomCorruptionNeverCrashes) {
  // Overwrite 1-4 random header bytes with random values (or with values that are typical trouble
  // makers: 0xFF runs giving huge lengths, 0x00 giving empty counts). Only the header is corrupted:
  // the tensor payload is opaque to the parser.
  const std::size_t header_end = data_offset_;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::size_t> position(0, header_end - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> count(1, 4);
  const auto start = std::chrono::steady_clock::now();
  int parsed = 0;
  int rejected = 0;
  // The image is corrupted in place and restored after each trial (no per-trial copy of the file).
  std::vector<std::uint8_t> image = original_;
  for (int trial = 0; trial < 1500; ++trial) {
    std::vector<std::pair<std::size_t, std::uint8_t>> saved;
    const int changes = count(rng);
    for (int c = 0; c < changes; ++c) {
      const std::size_t at = position(rng);
      saved.emplace_back(at, image[at]);
      const int kind = byte(rng) % 4;
      image[at] = kind == 0 ? 0xFF : kind == 1 ? 0x00 : static_cast<std::uint8_t>(byte(rng));
    }
    if (try_parse(image, "trial " + std::to_string(trial)) == Outcome::PARSED) {
      ++parsed;
    } else {
      ++rejected;
    }
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) image[it->first] = it->second;
  }
  EXPECT_EQ(image, original_);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // Both outcomes must occur: corrupting string contents is harmless, corrupting lengths is not.
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count(), 30);
}

}  // namespace
}  // namespace exo::inference
