// The engine against itself: harness TLS client and server over loopback, the scripted source,
// placeholders, requirement parsing.
#include <gtest/gtest.h>
#include <shoal/conformance/case.h>
#include <shoal/conformance/requirements.h>
#include <shoal/conformance/target.h>
#include <stdlib.h>

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

// The flake this stops: two targets launched on one reserved port (another harness reserved it
// too); ours fails to bind and exits with status 1 mid-case, while the other one answers the
// readiness probe. Only the target's own control socket can tell them apart.
TEST(WaitReady, AnAddressAnsweredByAnotherProcessIsNotOurTargetBeingReady) {
  auto io = kj::setupAsyncIo();
  auto other = io.provider->getNetwork().parseAddress("127.0.0.1:0").wait(io.waitScope)->listen();
  auto address = kj::str("127.0.0.1:", other->getPort());
  char dir[] = "/tmp/shoal-conform-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  auto target = Process::spawn("sleep 600", kj::str(dir, "/target.log"));  // never listens
  // Without a control socket an answer at the address is all there is to go by.
  EXPECT_TRUE(waitReady(io, *target, address, nullptr) == nullptr);
  // With one, the target must say it listens there; this one never does, so it is never ready.
  auto control = kj::str(dir, "/control.sock");
  auto problem = waitReady(io, *target, address, control.asPtr(), 200 * kj::MILLISECONDS);
  EXPECT_TRUE(problem != nullptr);
  target->kill();
  unlink(kj::str(dir, "/target.log").cStr());
  rmdir(dir);
}

}  // namespace
}  // namespace shoal::conformance
