#include "inference/repacked_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace exo::inference {

namespace {

// Releases the pages wholly inside [data, data + size) (best effort: a refusal changes nothing but
// memory use).
void release_pages(const std::uint8_t* data, std::uint64_t size) noexcept {
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (page_size <= 0 || size == 0) return;
  const auto page = static_cast<std::uintptr_t>(page_size);
  const auto first = (reinterpret_cast<std::uintptr_t>(data) + page - 1) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + size) / page * page;
  // NOLINTNEXTLINE(performance-no-int-to-ptr): madvise takes the page-aligned address.
  if (end > first) static_cast<void>(::madvise(reinterpret_cast<void*>(first), end - first, MADV_DONTNEED));
}

}  // namespace

WeightMatrix RepackedWeights::matrix(const WeightMatrix& w, bool release_source) {
  // The X8 kernels pay off with the SIMD variants; the portable path reads the row layout faster.
  if (!uses_x8_layouts(variant_) || !can_pack_x8(w)) return w;
  const std::lock_guard lock(mutex_);
  if (const auto it = copies_.find(w.data); it != copies_.end()) return it->second.view;
  const std::uint64_t size = static_cast<std::uint64_t>(w.rows) * w.row_bytes;
  HugePageBuffer bytes(size);
  const WeightMatrix packed = pack_x8(w, bytes.bytes(), pool_);
  copies_.emplace(w.data, Copy{std::move(bytes), packed, release_source});
  if (release_source) release_pages(w.data, size);
  return packed;
}

void RepackedWeights::release_sources() const noexcept {
  const std::lock_guard lock(mutex_);
  for (const auto& [source, copy] : copies_) {
    if (copy.released) release_pages(source, copy.bytes.size());
  }
}

std::uint64_t RepackedWeights::bytes() const {
  const std::lock_guard lock(mutex_);
  std::uint64_t total = 0;
  for (const auto& [source, copy] : copies_) total += copy.bytes.size();
  return total;
}

}  // namespace exo::inference
