// Greedy pairwise merging of adjacent text pieces, the core of both BPE variants (internal).
//
// Contract: stateless function template, thread-safe. The text is first cut into UTF-8 characters
// (a byte that does not start a complete sequence is a piece of its own). Then, repeatedly, the
// adjacent pair with the smallest priority key is merged, ties going to the leftmost pair;
// `priority(left, right)` returns std::nullopt for pairs that may not merge. Returns the final pieces
// in order, as views into `text`; they concatenate to `text`.
#pragma once

#include <cstddef>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

#include "inference/unicode.h"

namespace exo::inference {

template <typename Priority>
std::vector<std::string_view> merge_pieces(std::string_view text, Priority priority) {
  struct Piece {
    std::size_t start;
    std::size_t length;  // 0 once merged into its left neighbour
    int prev;
    int next;
  };
  struct Candidate {
    double key;
    int left;
    int right;
    std::size_t length;  // combined length when queued; a mismatch later means the pair is stale
  };
  struct Later {
    bool operator()(const Candidate& a, const Candidate& b) const {
      return a.key > b.key || (a.key == b.key && a.left > b.left);
    }
  };

  std::vector<Piece> pieces;
  for (std::size_t offset = 0; offset < text.size();) {
    const std::size_t announced = utf8_sequence_length(static_cast<unsigned char>(text[offset]));
    std::size_t length = announced == 0 ? 1 : announced;
    if (length > text.size() - offset) length = 1;
    const int index = static_cast<int>(pieces.size());
    pieces.push_back({offset, length, index - 1, index + 1});
    offset += length;
  }
  if (!pieces.empty()) pieces.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, Later> queue;
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Piece& a = pieces[static_cast<std::size_t>(left)];
    const Piece& b = pieces[static_cast<std::size_t>(right)];
    const std::optional<double> key =
        priority(text.substr(a.start, a.length), text.substr(b.start, b.length));
    if (key) queue.push({*key, left, right, a.length + b.length});
  };
  for (std::size_t i = 1; i < pieces.size(); ++i) consider(static_cast<int>(i - 1), static_cast<int>(i));

  while (!queue.empty()) {
    const Candidate candidate = queue.top();
    queue.pop();
    Piece& left = pieces[static_cast<std::size_t>(candidate.left)];
    Piece& right = pieces[static_cast<std::size_t>(candidate.right)];
    // Pieces keep their start; a merged-away piece has length 0 and a grown one a longer length, so
    // comparing lengths detects every stale candidate.
    if (left.length == 0 || right.length == 0 || left.length + right.length != candidate.length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) pieces[static_cast<std::size_t>(right.next)].prev = candidate.left;
    consider(left.prev, candidate.left);
    consider(candidate.left, left.next);
  }

  std::vector<std::string_view> result;
  for (int i = pieces.empty() ? -1 : 0; i >= 0; i = pieces[static_cast<std::size_t>(i)].next) {
    result.push_back(
        text.substr(pieces[static_cast<std::size_t>(i)].start, pieces[static_cast<std::size_t>(i)].length));
  }
  return result;
}

}  // namespace exo::inference
