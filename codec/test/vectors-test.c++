// Golden vectors: each committed frame is what our encoder produces today, decodes with our codec
// to the committed text, and decodes with the stock `capnp decode` tool to the same text.
#include <capnp/pretty-print.h>
#include <gtest/gtest.h>
#include <kj/filesystem.h>
#include <shoal/codec/frame.h>
#include <stdio.h>

#include "samples.h"

namespace shoal::codec {
namespace {

kj::Own<const kj::ReadableDirectory> vectorsDir() {
  static auto fs = kj::newDiskFilesystem();
  return fs->getRoot().openSubdir(kj::Path::parse(&SHOAL_VECTORS_DIR[1]));
}

// stdout of `command`, or a test failure.
kj::String run(kj::StringPtr command) {
  FILE* pipe = popen(command.cStr(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command.cStr();
    return kj::str();
  }
  kj::Vector<char> out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    out.addAll(buffer, buffer + n);
  EXPECT_EQ(pclose(pipe), 0) << command.cStr();
  out.add('\0');
  return kj::String(out.releaseAsArray());
}

TEST(GoldenVectors, EveryKindHasAVector) {
  auto dir = vectorsDir();
  for (auto kind : samples::allKinds()) {
    auto stem = samples::fileStem(kind);
    EXPECT_TRUE(dir->exists(kj::Path(kj::str(stem, ".bin")))) << stem.cStr();
    EXPECT_TRUE(dir->exists(kj::Path(kj::str(stem, ".txt")))) << stem.cStr();
  }
}

TEST(GoldenVectors, EncoderStillProducesTheCommittedBytes) {
  auto dir = vectorsDir();
  for (auto kind : samples::allKinds()) {
    auto stem = samples::fileStem(kind);
    auto committed = dir->openFile(kj::Path(kj::str(stem, ".bin")))->readAllBytes();
    EXPECT_EQ(encodeFrame(*samples::make(kind)), committed) << stem.cStr();
  }
}

TEST(GoldenVectors, OurCodecAndCapnpDecodeAgree) {
  auto dir = vectorsDir();
  for (auto kind : samples::allKinds()) {
    auto stem = samples::fileStem(kind);
    auto bin = kj::str(SHOAL_VECTORS_DIR, "/", stem, ".bin");
    auto text = dir->openFile(kj::Path(kj::str(stem, ".txt")))->readAllText();

    auto decoded = decodeFrame(dir->openFile(kj::Path(kj::str(stem, ".bin")))->readAllBytes());
    ASSERT_TRUE(decoded.is<InboundFrame>()) << stem.cStr();
    auto& frame = decoded.get<InboundFrame>();
    EXPECT_EQ(frame.kind(), kind);
    EXPECT_STREQ(kj::str(capnp::prettyPrint(frame.root()), "\n").cStr(), text.cStr())
        << stem.cStr();

    auto tool = run(kj::str(SHOAL_CAPNP_TOOL, " decode ", SHOAL_SCHEMA, " Frame < '", bin, "'"));
    EXPECT_STREQ(tool.cStr(), text.cStr()) << stem.cStr() << " differs from capnp decode";
  }
}

}  // namespace
}  // namespace shoal::codec
