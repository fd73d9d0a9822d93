// Raw Unicode data tables, generated once by tools/gen_unicode_tables.py and committed as source.
//
// Contract: immutable constant data, safe to read from any thread. Use the functions of unicode.h
// rather than these arrays directly.
#pragma once

#include <cstddef>
#include <cstdint>

namespace exo::inference::unicode_data {

// Sorted runs: (first code point << 3) | category (see UnicodeCategory). The first entry starts at 0.
extern const std::uint32_t category_runs[];
extern const std::size_t category_run_count;
// Version of the Unicode Character Database the table was generated from.
extern const char* const unicode_version;

}  // namespace exo::inference::unicode_data
