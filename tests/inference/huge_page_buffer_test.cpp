// HugePageBuffer: zero-filled, aligned to 2 MiB, exactly the requested size, writable, and moved
// without copying.
#include "inference/huge_page_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace exo::inference {
namespace {

TEST(HugePageBuffer, IsZeroFilledAlignedAndWritable) {
  for (std::size_t size : {std::size_t{1}, std::size_t{4097}, HugePageBuffer::huge_page_bytes + 12345}) {
    HugePageBuffer buffer(size);
    ASSERT_NE(buffer.data(), nullptr);
    EXPECT_EQ(buffer.size(), size);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.data()) % HugePageBuffer::huge_page_bytes, 0U);
    EXPECT_TRUE(std::all_of(buffer.data(), buffer.data() + size, [](std::uint8_t b) { return b == 0; }));
    std::fill(buffer.data(), buffer.data() + size, std::uint8_t{0xA5});  // every byte is writable
    EXPECT_EQ(buffer.data()[size - 1], 0xA5);
    EXPECT_EQ(buffer.bytes().size(), size);
  }
}

TEST(HugePageBuffer, EmptyHasNoMemory) {
  HugePageBuffer empty(0);
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_EQ(empty.size(), 0U);
  HugePageBuffer defaulted;
  EXPECT_EQ(defaulted.data(), nullptr);
}

TEST(HugePageBuffer, MovesKeepTheAddressAndEmptyTheSource) {
  HugePageBuffer first(100);
  first.data()[99] = 7;
  std::uint8_t* const address = first.data();
  HugePageBuffer second(std::move(first));
  EXPECT_EQ(second.data(), address);
  EXPECT_EQ(second.data()[99], 7);
  EXPECT_EQ(first.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(first.size(), 0U);       // NOLINT(bugprone-use-after-move)
  HugePageBuffer third(10);
  third = std::move(second);
  EXPECT_EQ(third.data(), address);
  EXPECT_EQ(third.size(), 100U);
}

}  // namespace
}  // namespace exo::inference
