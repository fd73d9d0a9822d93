// RepackedWeights: copies of a model's matrices in the layout the best kernels read fastest, shared
// by every ModelWeights loaded from one file (today: Q4_0, Q8_0, Q4_K, Q5_K and Q6_K matrices of whole
// 8-row groups become their X8 layouts when a SIMD kernel variant runs; see matmul.h).
//
// Contract
// - matrix(w) returns the repacked view of w, creating it on first use, or w itself when no faster
//   layout exists for it. Repacked views of the same source are the same bytes, so layer ranges
//   that overlap (an engine keeps several) share them.
// - With `release_source` (only for a read-only file mapping: GgufFile::is_file_mapping), the
//   source pages that lie wholly inside the matrix are released from this process after copying
//   (madvise(MADV_DONTNEED); a later read faults them in again from the file), so resident memory
//   stays about the size of the weights. Never for memory the process owns, which it would zero.
//   A later fault on a neighbouring tensor of a mapping with 2 MiB pages maps the whole 2 MiB page
//   around it again, released parts included: release_sources() releases them once more (the engine
//   calls it after reading a shard in).
// - Copies live in HugePageBuffers (2 MiB pages where the kernel grants them: fewer TLB misses while
//   the kernels stream them).
// - Packing runs on the pool given to set_pool() (the pool's rules apply: nobody else may run work on
//   it meanwhile; the engine packs on its compute thread, which owns the pool), else on the caller.
// - Thread-safe (one mutex). Views stay valid for the object's life: it must outlive every
//   ModelWeights loaded with it. A copy is kept until destruction, even when no layer range uses
//   it any more (as the file's pages would stay mapped).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "inference/huge_page_buffer.h"
#include "inference/matmul.h"

namespace exo::inference {

class RepackedWeights {
 public:
  explicit RepackedWeights(KernelVariant variant = best_variant()) noexcept : variant_(variant) {}
  RepackedWeights(const RepackedWeights&) = delete;
  RepackedWeights& operator=(const RepackedWeights&) = delete;

  WeightMatrix matrix(const WeightMatrix& w, bool release_source);
  void set_pool(ComputePool* pool) noexcept { pool_ = pool; }
  // Releases again the source pages of every copy made with release_source.
  void release_sources() const noexcept;
  // Bytes held in repacked copies.
  std::uint64_t bytes() const;

 private:
  KernelVariant variant_;
  ComputePool* pool_ = nullptr;
  mutable std::mutex mutex_;
  struct Copy {
    HugePageBuffer bytes;
    WeightMatrix view;      // the packed matrix, pointing into `bytes` (moving a buffer keeps its address)
    bool released = false;  // the source's pages were released (release_source)
  };
  std::map<const std::uint8_t*, Copy> copies_;  // by source address
};

}  // namespace exo::inference
