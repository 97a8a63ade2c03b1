// parseTunnelAuthority: the HBONE :authority is a literal IP:port, nothing else.
#include <gtest/gtest.h>

#include <string>

#include "proxy/hbone/tunnel_authority.h"

namespace nodemesh::proxy::hbone {
namespace {

TEST(HboneAuthority, AcceptsIpv4AndBracketedIpv6) {
  auto a = parseTunnelAuthority("10.1.2.3:8080");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a->ip.isV4());
  EXPECT_EQ(a->ip.toString(), "10.1.2.3");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->toString(), "10.1.2.3:8080");

  auto b = parseTunnelAuthority("[fd00::1]:15008");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_FALSE(b->ip.isV4());
  EXPECT_EQ(b->port, 15008);
  EXPECT_EQ(b->toString(), "[fd00::1]:15008");

  EXPECT_TRUE(parseTunnelAuthority("[2001:DB8:0:0:0:0:0:1]:1"));
  EXPECT_TRUE(parseTunnelAuthority("127.0.0.1:65535"));
  EXPECT_TRUE(parseTunnelAuthority("[::1]:80"));
}

TEST(HboneAuthority, RejectsEverythingElseWithAReason) {
  struct Case {
    std::string in;
    std::string why;
  };
  const Case cases[] = {
      {"", "empty"},
      {"example.com:80", "not a literal IP"},
      {"10.0.0.1", "missing port"},
      {"10.0.0.1:", "empty port"},
      {"10.0.0.1:0", "port 0"},
      {"10.0.0.1:080", "leading zero"},
      {"10.0.0.1:65536", "above 65535"},
      {"10.0.0.1:123456", "not a decimal"},
      {"10.0.0.1:+80", "not a decimal"},
      {"10.0.0.1:8a", "not a decimal"},
      {"010.0.0.1:80", "dotted-quad"},
      {"10.0.1:80", "dotted-quad"},
      {"10.0.0.256:80", "dotted-quad"},
      {"fd00::1:80", "brackets"},
      {"[fd00::1]", "missing port"},
      {"[fd00::1]80", "missing port"},
      {"[fd00::1:80", "without ']'"},
      {"[]:80", "empty IPv6"},
      {"[fe80::1%eth0]:80", "zone"},
      {"[10.0.0.1]:80", "not an IPv6"},
      {"[::ffff:10.0.0.1]:80", "IPv4-mapped"},
      {"0.0.0.0:80", "unspecified"},
      {"[::]:80", "unspecified"},
      {"255.255.255.255:80", "broadcast"},
      {"224.0.0.1:80", "multicast"},
      {"[ff02::1]:80", "multicast"},
      {"user@10.0.0.1:80", "not a literal IP"},
      {" 10.0.0.1:80", "not a literal IP"},
      {std::string("10.0.0.1\0:80", 12), "not a literal IP"},
      {"10.0.0.1:80/", "not a decimal"},
      {std::string(200, '1'), "longer"},
  };
  for (const auto& c : cases) {
    auto r = parseTunnelAuthority(c.in);
    ASSERT_FALSE(r) << "accepted: " << c.in;
    EXPECT_NE(r.error().message.find(c.why), std::string::npos) << c.in << " -> " << r.error().message;
  }
}

TEST(HboneAuthority, ErrorQuotesOnlyPrintableBoundedInput) {
  auto r = parseTunnelAuthority(std::string("\x01\xff", 2) + std::string(100, 'x'));
  ASSERT_FALSE(r);
  EXPECT_LT(r.error().message.size(), 160u);
  EXPECT_EQ(r.error().message.find('\x01'), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::proxy::hbone
