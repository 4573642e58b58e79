// Plaintext transport: bytes pass unchanged, nothing is authenticated, end() is a clean EOF.
#include <gtest/gtest.h>
#include <kj/async-io.h>
#include <shoal/peer/transport/transport.h>

namespace shoal::peer {
namespace {

TEST(Plaintext, PassesBytesBothWaysAndAuthenticatesNobody) {
  auto io = kj::setupAsyncIo();
  auto pipe = kj::newTwoWayPipe();
  auto a = plaintextTransport(kj::mv(pipe.ends[0]));
  auto& rawEnd = *pipe.ends[1];  // the other side sees exactly what a writes
  auto b = plaintextTransport(kj::mv(pipe.ends[1]));
  EXPECT_EQ(a->peerId(), nullptr);
  EXPECT_EQ(b->peerId(), nullptr);

  kj::byte sent[256];
  for (size_t i = 0; i < sizeof(sent); ++i)
    sent[i] = kj::byte(i);
  auto writing = a->stream().write(sent, sizeof(sent));
  kj::byte got[256] = {};
  EXPECT_EQ(rawEnd.tryRead(got, sizeof(got), sizeof(got)).wait(io.waitScope), sizeof(got));
  writing.wait(io.waitScope);
  EXPECT_EQ(kj::arrayPtr(got, sizeof(got)), kj::arrayPtr(sent, sizeof(sent)));

  auto reply = b->stream().write("ok", 2);
  char text[2];
  EXPECT_EQ(a->stream().tryRead(text, 2, 2).wait(io.waitScope), 2u);
  reply.wait(io.waitScope);
  EXPECT_EQ(kj::heapString(text, 2), "ok");

  a->end().wait(io.waitScope);
  a->end().wait(io.waitScope);  // idempotent
  EXPECT_EQ(b->stream().tryRead(text, 1, 1).wait(io.waitScope), 0u);
}

}  // namespace
}  // namespace shoal::peer
