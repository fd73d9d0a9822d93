// HugePageBuffer: zero-filled anonymous memory that starts on a 2 MiB boundary and is advised for
// transparent huge pages, for large read-mostly data that kernels stream (repacked weights, the
// bandwidth probe's buffer).
//
// Why: streaming a matrix through 4 KiB pages costs a TLB miss every 4 KiB, which on a virtual
// machine (nested page tables) is a long walk; 2 MiB pages read about 12 % faster here (see
// docs/native-engine.md, "Huge pages").
//
// Contract
// - The mapping is exactly size() bytes rounded up to whole 4 KiB pages, so no memory beyond the
//   request is ever resident; the whole 2 MiB pieces of it may become huge pages, the tail stays in
//   small pages. The advice is best effort: where the kernel refuses or has THP disabled the buffer
//   is ordinary memory, and nothing else changes.
// - Move-only RAII owner; data() keeps its address across moves. Not synchronized: share it
//   read-only, or guard writes, as for a std::vector.
// - Construction throws std::bad_alloc when the memory cannot be mapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace exo::inference {

class HugePageBuffer {
 public:
  HugePageBuffer() noexcept = default;
  explicit HugePageBuffer(std::size_t size);
  ~HugePageBuffer();
  HugePageBuffer(HugePageBuffer&& other) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& other) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;

  std::uint8_t* data() noexcept { return data_; }
  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::span<std::uint8_t> bytes() noexcept { return {data_, size_}; }

  static constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

 private:
  void release() noexcept;

  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;
};

}  // namespace exo::inference
