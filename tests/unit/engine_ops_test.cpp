// Pure pieces of the proxy engine: op records, addresses, counters, features.
#include <gtest/gtest.h>

#include "proxy/engine/counters.h"
#include "proxy/engine/op.h"
#include "proxy/engine/options.h"

namespace nodemesh::proxy {
namespace {

TEST(EngineOp, RoundTripsKindSlotAndGeneration) {
  uint64_t ud = encodeOp(OpKind::kSendClient, 123456, 0x1abcdef);
  OpRef op = decodeOp(ud);
  EXPECT_EQ(op.kind, OpKind::kSendClient);
  EXPECT_EQ(op.slot, 123456u);
  EXPECT_EQ(op.gen, 0xabcdefu);  // 24 bits kept
  EXPECT_NE(encodeOp(OpKind::kRecvClient, 1, 1), encodeOp(OpKind::kRecvClient, 1, 2));
  EXPECT_NE(encodeOp(OpKind::kRecvClient, 1, 1), encodeOp(OpKind::kRecvUpstream, 1, 1));
}

TEST(EngineOp, DirectionsMapToOps) {
  EXPECT_EQ(recvOp(kToUpstream), OpKind::kRecvClient);
  EXPECT_EQ(sendOp(kToUpstream), OpKind::kSendUpstream);
  EXPECT_EQ(recvOp(kToClient), OpKind::kRecvUpstream);
  EXPECT_EQ(sendOp(kToClient), OpKind::kSendClient);
}

TEST(EngineAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = SocketAddress::parse("127.0.0.1", 15001);
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->toString(), "127.0.0.1:15001");
  EXPECT_EQ(v4->withPort(80).port(), 80);
  auto v6 = SocketAddress::parse("[::1]", 15001);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->toString(), "[::1]:15001");
  auto bad = SocketAddress::parse("not-an-ip", 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not-an-ip"), std::string::npos);
}

TEST(EngineCounters, SnapshotSumsAndVisitsEveryField) {
  WorkerCounters c;
  WorkerCounters::add(c.accepted, 3);
  WorkerCounters::add(c.active, 2);
  WorkerCounters::sub(c.active);
  WorkerStats s = c.snapshot();
  s += c.snapshot();
  EXPECT_EQ(s.accepted, 6u);
  EXPECT_EQ(s.active, 2u);
  int fields = 0;
  s.forEach([&](const char* name, const char* help, uint64_t) {
    EXPECT_NE(std::string(name), "");
    EXPECT_NE(std::string(help), "");
    ++fields;
  });
  EXPECT_GE(fields, 10);
}

TEST(EngineFeaturesTest, NamesWhatIsMissing) {
  EngineFeatures f;
  EXPECT_TRUE(f.missing().empty());
  f.defer_taskrun = false;
  f.multishot_recv = false;
  EXPECT_EQ(f.missing(), (std::vector<std::string>{"IORING_SETUP_DEFER_TASKRUN", "multishot recv"}));
}

}  // namespace
}  // namespace nodemesh::proxy
