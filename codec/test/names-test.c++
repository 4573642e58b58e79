// Names and codes that logs, events and peers rely on: every CodecError, wire ErrorCode, frame kind
// and PathError has a distinct name (and a value from a newer peer still gets one), each CodecError
// maps to the wire code a peer answers with, and which kinds are requests and carry an id.
#include <shoal/codec/error.h>

#include <capnp/schema.h>
#include <gtest/gtest.h>
#include <kj/vector.h>
#include <shoal/codec/frames.h>
#include <shoal/codec/path.h>
#include <shoal/codec/validate.h>

#include "samples.h"

namespace shoal::codec {
namespace {

using Which = wire::Frame::Which;

constexpr CodecError kLastCodecError = CodecError::badRange;
constexpr PathError kLastPathError = PathError::separator;

// Fails the test for an empty name, a name used twice, or the fallback for unknown values.
void expectDistinct(kj::ArrayPtr<const kj::StringPtr> names, kj::StringPtr fallback) {
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_NE(names[i], "") << i;
    EXPECT_NE(names[i], fallback) << i;
    for (size_t j = 0; j < i; ++j)
      EXPECT_NE(names[i], names[j]) << i << " and " << j;
  }
}

TEST(CodecErrorNames, EveryValueHasADistinctName) {
  kj::Vector<kj::StringPtr> names;
  for (uint8_t e = 0; e <= uint8_t(kLastCodecError); ++e)
    names.add(name(CodecError(e)));
  ASSERT_EQ(names.size(), 11u);
  expectDistinct(names, "unknown");
  EXPECT_EQ(names[0], "truncated");
  EXPECT_EQ(name(CodecError::frameTooLarge), "frameTooLarge");
  EXPECT_EQ(name(CodecError::badRange), "badRange");
  // KJ_STRINGIFY, as kj::str() and KJ_LOG use it.
  EXPECT_EQ(kj::str(CodecError::badPath, "/", CodecError::badDigest), "badPath/badDigest");
  // A value no enumerator names (memory corruption, a newer build) is still printable.
  EXPECT_EQ(name(CodecError(uint8_t(kLastCodecError) + 1)), "unknown");
  EXPECT_EQ(name(CodecError(0xFF)), "unknown");
}

TEST(CodecErrorNames, EachErrorMapsToTheWireCodeOfItsAnswer) {
  for (uint8_t e = 0; e <= uint8_t(kLastCodecError); ++e) {
    auto error = CodecError(e);
    auto expected = error == CodecError::frameTooLarge ? wire::ErrorCode::TOO_LARGE
                    : error == CodecError::badRange    ? wire::ErrorCode::RANGE
                                                       : wire::ErrorCode::PROTOCOL;
    EXPECT_EQ(toWireCode(error), expected) << name(error).cStr();
  }
}

TEST(CodecErrorNames, FailCarriesTheErrorAndMessageButNoRequestId) {
  auto f = fail(CodecError::badText, kj::str("text is not valid UTF-8"));
  EXPECT_EQ(f.error, CodecError::badText);
  EXPECT_EQ(f.message, "text is not valid UTF-8");
  EXPECT_EQ(f.requestId, nullptr);  // connection-level unless a validator says otherwise
}

TEST(WireErrorCodeNames, EachIsTheSchemaEnumerantName) {
  // The schema is the source of truth: a code added there without a name here fails this test.
  auto enumerants = capnp::Schema::from<wire::ErrorCode>().getEnumerants();
  ASSERT_EQ(enumerants.size(), 12u);
  kj::Vector<kj::StringPtr> names;
  for (auto e : enumerants) {
    auto code = wire::ErrorCode(e.getOrdinal());
    EXPECT_EQ(name(code), e.getProto().getName()) << e.getOrdinal();
    names.add(name(code));
  }
  expectDistinct(names, "unknown");
  EXPECT_EQ(name(wire::ErrorCode::NOT_FOUND), "notFound");
  EXPECT_EQ(name(wire::ErrorCode::SHUTTING_DOWN), "shuttingDown");
  // A code from a newer protocol version still gets a name in our logs.
  EXPECT_EQ(name(wire::ErrorCode(enumerants.size())), "unknown");
  EXPECT_EQ(name(wire::ErrorCode(0xFFFF)), "unknown");
}

TEST(FrameKindNames, EachIsTheSchemaFieldNameCapitalised) {
  auto fields = capnp::Schema::from<wire::Frame>().getUnionFields();
  ASSERT_EQ(fields.size(), samples::allKinds().size());
  kj::Vector<kj::StringPtr> names;
  for (auto field : fields) {
    auto kind = Which(field.getProto().getDiscriminantValue());
    auto schemaName = field.getProto().getName();
    auto expected = kj::str(char(schemaName[0] - 'a' + 'A'), schemaName.slice(1));
    EXPECT_EQ(name(kind), expected);
    names.add(name(kind));
  }
  expectDistinct(names, "Unknown");
  EXPECT_EQ(name(Which(fields.size())), "Unknown");  // a kind from a newer version
}

TEST(FrameKinds, OnlyTheThreeGetsAreRequests) {
  kj::Vector<kj::StringPtr> requests;
  for (auto kind : samples::allKinds()) {
    if (isRequest(kind)) requests.add(name(kind));
  }
  EXPECT_EQ(kj::strArray(requests, ","), "GetLibrary,GetManifest,GetChunk");
}

TEST(FrameKinds, RequestIdOfEveryKind) {
  // The samples' ids; 0 for kinds that carry none.
  auto expected = [](Which kind) -> uint64_t {
    switch (kind) {
      case Which::ERROR:
      case Which::CANCEL: return 42;
      case Which::GET_LIBRARY:
      case Which::LIBRARY_SNAPSHOT:
      case Which::LIBRARY_DELTA: return 1;
      case Which::GET_MANIFEST:
      case Which::MANIFEST: return 12;
      case Which::GET_CHUNK:
      case Which::CHUNK: return 13;
      default: return 0;
    }
  };
  for (auto kind : samples::allKinds()) {
    auto frame = samples::make(kind);
    EXPECT_EQ(requestIdOf(frame->getRoot<wire::Frame>()), expected(kind)) << name(kind).cStr();
  }
}

TEST(PathErrorNames, EveryValueHasADistinctName) {
  kj::Vector<kj::StringPtr> names;
  for (uint8_t e = 0; e <= uint8_t(kLastPathError); ++e)
    names.add(name(PathError(e)));
  ASSERT_EQ(names.size(), 13u);
  expectDistinct(names, "unknown");
  EXPECT_EQ(kj::str(PathError::dotDotComponent), "dotDotComponent");
  EXPECT_EQ(name(PathError(uint8_t(kLastPathError) + 1)), "unknown");
}

}  // namespace
}  // namespace shoal::codec
