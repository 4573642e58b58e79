// Announce datagrams: what we send always fits and validates; what we receive gets every check a
// frame gets, with 1200 bytes as the limit ([DSC-4], [DSC-6], [DSC-7]).
#include <shoal/peer/discovery/announce.h>

#include <capnp/message.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/function.h>
#include <kj/io.h>
#include <shoal/codec/frame.h>
#include <shoal/codec/frames.h>

namespace shoal::peer::discovery {
namespace {

PeerId idOf(uint8_t b) {
  PeerId id;
  for (auto& x : id.bytes)
    x = b;
  return id;
}

Announce sample() {
  Announce a;
  a.peerId = idOf(7);
  a.instanceId = 0x1234;
  a.port = 4747;
  a.name = kj::str("alpha");
  a.summary.epoch = 9;
  a.summary.rev = 3;
  a.summary.digest = idOf(5);
  return a;
}

DropReason reasonOf(kj::OneOf<Announce, Dropped>& result) {
  KJ_IF_MAYBE (d, result.tryGet<Dropped>()) {
    return d->reason;
  }
  ADD_FAILURE() << "expected a drop";
  return DropReason::foreign;
}

TEST(Announce, RoundTripsEveryField) {
  auto bytes = encodeAnnounce(sample());
  auto decoded = decodeAnnounce(bytes);
  ASSERT_TRUE(decoded.is<Announce>());
  auto& a = decoded.get<Announce>();
  EXPECT_EQ(a.peerId, idOf(7));
  EXPECT_EQ(a.instanceId, 0x1234u);
  EXPECT_EQ(a.port, 4747);
  EXPECT_EQ(a.name, "alpha");
  EXPECT_EQ(a.versionMin, 1);
  EXPECT_EQ(a.versionMax, 1);
  EXPECT_EQ(a.summary, sample().summary);
}

TEST(Announce, LongestNameStillFitsOneDatagram) {
  auto a = sample();
  // 4-byte characters, far over the name limit: cut on a character boundary to 256 bytes.
  kj::Vector<char> huge;
  for (int i = 0; i < 5000; ++i)
    huge.addAll(kj::StringPtr("\xF0\x9F\x90\x9F"));
  huge.add('\0');
  a.name = kj::heapString(huge.begin(), huge.size() - 1);
  auto bytes = encodeAnnounce(a);
  EXPECT_LE(bytes.size(), kMaxDatagramBytes);
  auto decoded = decodeAnnounce(bytes);
  ASSERT_TRUE(decoded.is<Announce>());
  EXPECT_LE(decoded.get<Announce>().name.size(), 256u);
  EXPECT_EQ(decoded.get<Announce>().name.size() % 4, 0u);
}

TEST(Announce, ReadsTheCodecsGoldenVector) {
  auto path = kj::str(SHOAL_SOURCE_DIR, "/codec/test/vectors/announce.bin");
  int fd = open(path.cStr(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path.cStr();
  kj::FdInputStream in((kj::AutoCloseFd(fd)));
  auto bytes = in.readAllBytes();
  auto decoded = decodeAnnounce(bytes);
  ASSERT_TRUE(decoded.is<Announce>());
  EXPECT_EQ(decoded.get<Announce>().name, "alpha");
  EXPECT_EQ(decoded.get<Announce>().port, 4747);
}

TEST(Announce, OverTheDatagramLimitIsDroppedBeforeDecoding) {
  // A valid frame, but a long one: only someone else's encoder can make it.
  auto frame = codec::newFrame();
  auto a = codec::rootOf(*frame).initAnnounce();
  a.setPeerId(idOf(7).asBytes());
  a.setInstanceId(1);
  a.setPort(1);
  a.initName(1500);
  auto bytes = codec::encodeFrame(*frame);
  auto decoded = decodeAnnounce(bytes);
  EXPECT_EQ(reasonOf(decoded), DropReason::tooLarge);
}

TEST(Announce, InvalidFramesAreDropped) {
  auto good = encodeAnnounce(sample());
  // Truncated, trailing bytes, a segment count that wraps, and noise.
  auto truncated = decodeAnnounce(good.slice(0, good.size() - 8));
  EXPECT_EQ(reasonOf(truncated), DropReason::invalid);
  auto longer = kj::heapArray<kj::byte>(good.size() + 8);
  memcpy(longer.begin(), good.begin(), good.size());
  memset(longer.begin() + good.size(), 0, 8);
  auto trailing = decodeAnnounce(longer);
  EXPECT_EQ(reasonOf(trailing), DropReason::invalid);
  kj::byte wraps[16] = {0xFF, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0};
  auto wrapped = decodeAnnounce(wraps);
  EXPECT_EQ(reasonOf(wrapped), DropReason::invalid);
  auto empty = decodeAnnounce(nullptr);
  EXPECT_EQ(reasonOf(empty), DropReason::invalid);
}

TEST(Announce, FieldRulesOfTableOneApply) {
  auto check = [](kj::StringPtr what, kj::Function<void(wire::Announce::Builder)> spoil) {
    auto frame = codec::newFrame();
    auto a = codec::rootOf(*frame).initAnnounce();
    a.setPeerId(idOf(7).asBytes());
    a.setInstanceId(1);
    a.setPort(4747);
    a.setName("ok");
    a.setVersionMin(1);
    a.setVersionMax(1);
    auto s = a.initSummary();
    s.setEpoch(1);
    s.setDigest(idOf(1).asBytes());
    spoil(a);
    auto bytes = codec::encodeFrame(*frame);
    auto decoded = decodeAnnounce(bytes);
    EXPECT_EQ(reasonOf(decoded), DropReason::invalid) << what.cStr();
  };
  check("short peer id", [](auto a) { a.setPeerId(kj::arrayPtr(idOf(7).bytes, 31)); });
  check("zero instance", [](auto a) { a.setInstanceId(0); });
  check("zero port", [](auto a) { a.setPort(0); });
  check("control character in the name", [](auto a) { a.setName("a\x1b[2Jb"); });
  check("versions in the wrong order", [](auto a) {
    a.setVersionMin(2);
    a.setVersionMax(1);
  });
}

TEST(Announce, OtherFrameKindsAreDropped) {
  auto ping = codec::pingFrame(5);
  auto bytes = codec::encodeFrame(*ping);
  auto decoded = decodeAnnounce(bytes);
  EXPECT_EQ(reasonOf(decoded), DropReason::notAnnounce);
}

}  // namespace
}  // namespace shoal::peer::discovery
