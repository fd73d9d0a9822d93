// StreamingDetokenizer: turns a stream of token ids into text chunks that never split a UTF-8
// character.
//
// Contract: one instance per stream; not thread-safe (use from one thread at a time); it keeps a
// reference to the Tokenizer, which must outlive it. push() returns the text that became complete
// with this token: bytes that could still be the start of a multi-byte character are held back until
// the next push() or finish(). Bytes that can never become valid UTF-8 are passed through as they
// are (not held back). Invariant: the concatenation of all push() results followed by finish()
// equals tokenizer.decode(all ids, options), byte for byte.
#pragma once

#include <string>

#include "inference/tokenizer.h"

namespace exo::inference {

class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer, DecodeOptions options = {})
      : tokenizer_(&tokenizer), options_(options) {}

  // Adds one token; returns the newly completed text (possibly empty).
  std::string push(TokenId id);
  // Ends the stream: returns whatever was held back (possibly an incomplete sequence) and resets.
  std::string finish();
  // Forgets held-back bytes and starts a new stream.
  void reset();

  // Bytes currently held back (0..3).
  std::size_t pending_bytes() const noexcept { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  DecodeOptions options_;
  Tokenizer::DecodeState state_;
  std::string pending_;
};

}  // namespace exo::inference
