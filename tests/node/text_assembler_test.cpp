#include "node/text_assembler.h"

#include <gtest/gtest.h>

namespace exo::node {
namespace {

TEST(TextAssemblerTest, PassesPlainTextThrough) {
  TextAssembler t({});
  EXPECT_EQ(t.feed("Hello").text, "Hello");
  EXPECT_EQ(t.feed(", world").text, ", world");
  EXPECT_EQ(t.flush(), "");
}

TEST(TextAssemblerTest, NeverSplitsAUtf8Character) {
  TextAssembler t({});
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(t.feed(euro.substr(0, 1)).text, "");
  EXPECT_EQ(t.feed(euro.substr(1, 1)).text, "");
  EXPECT_EQ(t.feed(euro.substr(2, 1)).text, euro);
}

TEST(TextAssemblerTest, DropsAnUnfinishedCharacterAtTheEnd) {
  TextAssembler t({});
  EXPECT_EQ(t.feed("ok\xF0\x9F").text, "ok");
  EXPECT_EQ(t.flush(), "");
}

TEST(TextAssemblerTest, CutsAtTheStopSequenceAcrossPieces) {
  TextAssembler t({"STOP"});
  EXPECT_EQ(t.feed("abc S").text, "abc ");  // "S" might start STOP: held back
  auto out = t.feed("TOP and more");
  EXPECT_EQ(out.text, "");
  EXPECT_TRUE(out.stopped);
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(t.flush(), "");
}

TEST(TextAssemblerTest, ReleasesAHeldPrefixThatWasNotAStop) {
  TextAssembler t({"STOP"});
  EXPECT_EQ(t.feed("ST").text, "");
  EXPECT_EQ(t.feed("ay").text, "STay");
  EXPECT_EQ(t.feed("ST").text, "");
  EXPECT_EQ(t.flush(), "ST");
}

TEST(TextAssemblerTest, TheEarliestOfSeveralStopsWins) {
  TextAssembler t({"world", "lo"});
  auto out = t.feed("hello world");
  EXPECT_EQ(out.text, "hel");
  EXPECT_TRUE(out.stopped);
}

TEST(TextAssemblerTest, EmptyStopSequencesAreIgnored) {
  TextAssembler t({""});
  auto out = t.feed("text");
  EXPECT_EQ(out.text, "text");
  EXPECT_FALSE(out.stopped);
}

}  // namespace
}  // namespace exo::node
