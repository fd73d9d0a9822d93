#include "inference/huge_page_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>
#include <utility>

namespace exo::inference {

namespace {

std::size_t page_bytes() noexcept {
  const long size = ::sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::size_t>(size) : std::size_t{4096};
}

std::uintptr_t round_up(std::uintptr_t value, std::uintptr_t multiple) noexcept {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

HugePageBuffer::HugePageBuffer(std::size_t size) : size_(size) {
  if (size == 0) return;
  const std::size_t length = round_up(size, page_bytes());
  // Over-map by one huge page, then unmap the unaligned head and the slack after the buffer.
  const std::size_t reserve = length + huge_page_bytes;
  void* raw = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = round_up(start, huge_page_bytes);
  const std::uintptr_t end = start + reserve;
  // NOLINTBEGIN(performance-no-int-to-ptr): munmap and madvise take page-aligned addresses.
  if (aligned > start) ::munmap(raw, aligned - start);
  if (end > aligned + length) ::munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  data_ = reinterpret_cast<std::uint8_t*>(aligned);
  // NOLINTEND(performance-no-int-to-ptr)
  mapped_ = length;
  static_cast<void>(::madvise(data_, mapped_, MADV_HUGEPAGE));  // advice only: see the contract
}

HugePageBuffer::~HugePageBuffer() {
  release();
}

HugePageBuffer::HugePageBuffer(HugePageBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, 0)) {}

HugePageBuffer& HugePageBuffer::operator=(HugePageBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

void HugePageBuffer::release() noexcept {
  if (data_ != nullptr) ::munmap(data_, mapped_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = 0;
}

}  // namespace exo::inference
