// TextAssembler: turns the bytes of generated tokens into the text a client may see.
//
// Contract: holds back bytes that end inside a UTF-8 sequence and any tail that could be the start
// of a stop sequence; cuts the text at the first stop sequence and reports that it was hit. feed()
// returns only text not returned before. Plain value type; not thread-safe (one per request).
#pragma once

#include <string>
#include <vector>

namespace exo::node {

class TextAssembler {
 public:
  explicit TextAssembler(std::vector<std::string> stop_sequences);

  struct Output {
    std::string text;      // new visible text (possibly empty)
    bool stopped = false;  // a stop sequence was hit: the generation should end
  };
  // Adds the bytes of the next token(s).
  Output feed(const std::string& bytes);
  // The generation ended without a stop sequence: the text held back (bytes of an unfinished UTF-8
  // sequence are dropped: they are not text).
  std::string flush();
  bool stopped() const noexcept { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // bytes that may end inside a UTF-8 sequence
  std::string text_;     // complete UTF-8 text generated so far
  std::size_t shown_ = 0;
  bool stopped_ = false;
};

}  // namespace exo::node
