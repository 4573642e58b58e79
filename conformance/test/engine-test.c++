// The engine against itself: harness TLS client and server over loopback, the scripted source,
// placeholders, requirement parsing.
#include <gtest/gtest.h>
#include <shoal/conformance/case.h>
#include <shoal/conformance/requirements.h>

namespace shoal::conformance {
namespace {

TEST(Requirements, EveryMustIdOfTheSpecIsParsed) {
  size_t musts = 0;
  for (auto& r : requirements())
    if (r.level == Level::must) ++musts;
  EXPECT_GE(requirements().size(), 140u);
  EXPECT_GE(musts, 130u);
  auto& hs3 = KJ_ASSERT_NONNULL(findRequirement("HS-3"));
  EXPECT_TRUE(hs3.text.startsWith("A responder whose first received frame is not Hello MUST"))
      << hs3.text.cStr();
  EXPECT_TRUE(KJ_ASSERT_NONNULL(findRequirement("LIV-1")).level == Level::should);
}

TEST(Placeholders, ExpandNamesAndConditionals) {
  Placeholders p;
  p.set("port", "4711");
  p.flag("plaintext", true);
  p.flag("initiator", false);
  p.set("harness", "127.0.0.1:9");
  auto r = p.expand(
      "serve --listen 127.0.0.1:{port} {if:plaintext:--plaintext} {if:initiator:--peer {harness}}");
  ASSERT_TRUE(r.is<kj::String>());
  EXPECT_EQ(r.get<kj::String>(), "serve --listen 127.0.0.1:4711 --plaintext ");
  EXPECT_TRUE(p.expand("{nope}").is<Placeholders::Problem>());
  EXPECT_TRUE(p.expand("{port").is<Placeholders::Problem>());
}

}  // namespace
}  // namespace shoal::conformance
