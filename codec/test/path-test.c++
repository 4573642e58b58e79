// Path rules: a table of accepted and rejected paths (docs/bad-inputs.md #9, 10), item ids, and
// UTF-8.
#include <shoal/codec/path.h>

#include <gtest/gtest.h>
#include <kj/vector.h>
#include <shoal/codec/text.h>

namespace shoal::codec {
namespace {

struct PathCase {
  kj::StringPtr label;
  kj::String path;
  kj::Maybe<PathError> expected;
};

kj::String repeat(char c, size_t n) {
  auto s = kj::heapString(n);
  for (auto& ch : s)
    ch = c;
  return s;
}

kj::String bytes(std::initializer_list<int> values) {
  auto s = kj::heapString(values.size());
  size_t i = 0;
  for (int v : values)
    s[i++] = char(v);
  return s;
}

kj::Array<PathCase> pathTable() {
  kj::Vector<PathCase> t;
  auto ok = [&](kj::StringPtr label, kj::String p) {
    t.add(PathCase{label, kj::mv(p), nullptr});
  };
  auto no = [&](kj::StringPtr label, kj::String p, PathError e) {
    t.add(PathCase{label, kj::mv(p), e});
  };
  ok("plain", kj::str("a"));
  ok("nested", kj::str("a/b/c.txt"));
  ok("spaces", kj::str("Game Data/level 1.pak"));
  ok("dots inside", kj::str("a.b/c..d/...e"));
  ok("dot prefix", kj::str(".config/x"));
  ok("triple dot", kj::str("..."));
  ok("utf-8", kj::str("données/日本語/ñ.bin"));
  ok("emoji", kj::str("saves/🐟.dat"));
  ok("component at limit", repeat('x', 255));
  ok("colon and star", kj::str("a:b/c*d?"));
  ok("at path limit", kj::str(repeat('a', 200), "/", repeat('b', 200)));
  no("empty", kj::str(""), PathError::empty);
  no("parent", kj::str("../x"), PathError::dotDotComponent);
  no("parent inside", kj::str("a/../../b"), PathError::dotDotComponent);
  no("parent at end", kj::str("a/.."), PathError::dotDotComponent);
  no("only parent", kj::str(".."), PathError::dotDotComponent);
  no("dot", kj::str("."), PathError::dotComponent);
  no("dot inside", kj::str("a/./b"), PathError::dotComponent);
  no("absolute", kj::str("/etc/passwd"), PathError::absolute);
  no("root", kj::str("/"), PathError::absolute);
  no("double slash", kj::str("a//b"), PathError::emptyComponent);
  no("trailing slash", kj::str("a/b/"), PathError::emptyComponent);
  no("backslash", kj::str("a\\b"), PathError::backslash);
  no("windows parent", kj::str("..\\..\\x"), PathError::backslash);
  no("drive letter", kj::str("C:\\x"), PathError::backslash);
  no("nul", bytes({'a', 0, 'b'}), PathError::nul);
  no("newline", kj::str("a\nb"), PathError::controlChar);
  no("escape", kj::str("a\x1b[31m"), PathError::controlChar);
  no("del", kj::str("a\x7f"), PathError::controlChar);
  no("c1 control", bytes({'a', 0xC2, 0x85}), PathError::controlChar);
  no("overlong component", repeat('x', 256), PathError::componentTooLong);
  no("overlong path",
     kj::str(repeat('a', 200), "/", repeat('b', 200), "/", repeat('c', 200), "/", repeat('d', 200),
             "/", repeat('e', 200), "/", repeat('f', 200), "/", repeat('g', 200), "/",
             repeat('h', 200), "/", repeat('i', 200), "/", repeat('j', 200), "/", repeat('k', 200),
             "/", repeat('l', 200), "/", repeat('m', 200), "/", repeat('n', 200), "/",
             repeat('o', 200), "/", repeat('p', 200), "/", repeat('q', 200), "/", repeat('r', 200),
             "/", repeat('s', 200), "/", repeat('t', 200), "/", repeat('u', 200)),
     PathError::tooLong);
  no("too deep",
     kj::str(repeat('a', 1),
             [] {
               kj::Vector<char> v;
               for (int i = 0; i < 64; ++i)
                 v.addAll(kj::StringPtr("/a"));
               v.add('\0');
               return kj::String(v.releaseAsArray());
             }()),
     PathError::tooDeep);
  no("invalid utf-8", bytes({'a', 0xFF, 'b'}), PathError::badUtf8);
  no("overlong utf-8 slash", bytes({'a', 0xC0, 0xAF, 'b'}), PathError::badUtf8);
  no("overlong utf-8 dot", bytes({0xC0, 0xAE, 0xC0, 0xAE, '/', 'x'}), PathError::badUtf8);
  no("utf-16 surrogate", bytes({0xED, 0xA0, 0x80}), PathError::badUtf8);
  no("above U+10FFFF", bytes({0xF4, 0x90, 0x80, 0x80}), PathError::badUtf8);
  no("cut sequence", bytes({'a', 0xE6, 0x97}), PathError::badUtf8);
  no("lone continuation", bytes({0x80}), PathError::badUtf8);
  return t.releaseAsArray();
}

TEST(Path, Table) {
  Limits limits;
  auto table = pathTable();
  ASSERT_GE(table.size(), 30u);
  for (auto& c : table) {
    auto got = checkPath(c.path, limits);
    KJ_IF_MAYBE (want, c.expected) {
      KJ_IF_MAYBE (g, got) {
        EXPECT_EQ(*g, *want) << c.label.cStr() << ": got " << name(*g).cStr();
      } else {
        ADD_FAILURE() << c.label.cStr() << ": accepted, want " << name(*want).cStr();
      }
    } else {
      KJ_IF_MAYBE (g, got) {
        ADD_FAILURE() << c.label.cStr() << ": rejected " << name(*g).cStr();
      }
    }
  }
}

TEST(Path, LimitsAreConfigurable) {
  Limits limits;
  limits.maxComponentBytes = 4;
  limits.maxPathBytes = 9;
  limits.maxPathDepth = 2;
  EXPECT_EQ(checkPath(kj::StringPtr("abcd/efgh"), limits), nullptr);
  EXPECT_EQ(checkPath(kj::StringPtr("abcde"), limits), PathError::componentTooLong);
  EXPECT_EQ(checkPath(kj::StringPtr("abcd/efghi"), limits), PathError::tooLong);
  EXPECT_EQ(checkPath(kj::StringPtr("a/b/c"), limits), PathError::tooDeep);
}

TEST(ItemId, IsOneComponent) {
  Limits limits;
  EXPECT_EQ(checkComponent(kj::StringPtr("Half-Life 2"), limits), nullptr);
  EXPECT_EQ(checkComponent(kj::StringPtr("..."), limits), nullptr);
  EXPECT_EQ(checkComponent(kj::StringPtr(""), limits), PathError::empty);
  EXPECT_EQ(checkComponent(kj::StringPtr("a/b"), limits), PathError::separator);
  EXPECT_EQ(checkComponent(kj::StringPtr("/"), limits), PathError::separator);
  EXPECT_EQ(checkComponent(kj::StringPtr(".."), limits), PathError::dotDotComponent);
  EXPECT_EQ(checkComponent(kj::StringPtr("."), limits), PathError::dotComponent);
  EXPECT_EQ(checkComponent(kj::StringPtr("a\\.."), limits), PathError::backslash);
  EXPECT_EQ(checkComponent(repeat('z', 256), limits), PathError::componentTooLong);
}

TEST(Text, Rules) {
  EXPECT_EQ(checkText(kj::StringPtr("hello\nworld"), 100, TextRule::message), nullptr);
  EXPECT_NE(checkText(kj::StringPtr("hello\nworld"), 100, TextRule::name), nullptr);
  EXPECT_NE(checkText(bytes({'a', 0}), 100, TextRule::message), nullptr);
  EXPECT_NE(checkText(kj::StringPtr("abcdef"), 5, TextRule::message), nullptr);
  EXPECT_EQ(checkText(kj::StringPtr("abcde"), 5, TextRule::message), nullptr);
  EXPECT_NE(checkText(bytes({0xFE}), 5, TextRule::message), nullptr);
  EXPECT_TRUE(isValidUtf8(kj::StringPtr("\xF0\x9F\x90\x9F")));       // U+1F41F
  EXPECT_TRUE(isValidUtf8(kj::StringPtr("\xF4\x8F\xBF\xBF")));       // U+10FFFF
  EXPECT_TRUE(isValidUtf8(kj::StringPtr("\xEE\x80\x80")));           // U+E000, just past surrogates
  EXPECT_FALSE(isValidUtf8(kj::StringPtr("\xE0\x80\x80")));          // overlong U+0000
  EXPECT_FALSE(isValidUtf8(kj::StringPtr("\xF0\x80\x80\x80")));      // overlong
  EXPECT_FALSE(isValidUtf8(kj::StringPtr("\xF8\x88\x80\x80\x80")));  // 5-byte form
}

}  // namespace
}  // namespace shoal::codec
