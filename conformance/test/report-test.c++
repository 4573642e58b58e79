#include <gtest/gtest.h>
#include <shoal/conformance/report.h>

namespace shoal::conformance {
namespace {

TEST(Report, TerminalTextEscapesControlAndBidiCharacters) {
  EXPECT_EQ(forTerminal("plain ascii"), "plain ascii");
  EXPECT_EQ(forTerminal("a\x1b[2Jb"), "a\\x1b[2Jb");
  EXPECT_EQ(forTerminal("evil\xe2\x80\xaetxt"), "evil\\xe2\\x80\\xaetxt");
  EXPECT_EQ(forTerminal("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(forTerminal("bad \xff"), "bad \\xff");
}

}  // namespace
}  // namespace shoal::conformance
