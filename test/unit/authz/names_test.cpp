#include <edgehub/authz/names.hpp>
#include <edgehub/authz/rules.hpp>
#include <gtest/gtest.h>

#include <string>

namespace edgehub::authz {
namespace {

TEST(Names, LabelsAreLowercaseAlphanumericsAndDashes) {
  EXPECT_TRUE(is_dns1123_label("kube-node-lease"));
  EXPECT_TRUE(is_dns1123_label("a"));
  EXPECT_TRUE(is_dns1123_label(std::string(63, 'a')));
  EXPECT_FALSE(is_dns1123_label(std::string(64, 'a')));
  EXPECT_FALSE(is_dns1123_label(""));
  EXPECT_FALSE(is_dns1123_label("-a"));
  EXPECT_FALSE(is_dns1123_label("a-"));
  EXPECT_FALSE(is_dns1123_label("Default"));
  EXPECT_FALSE(is_dns1123_label("a.b"));
}

TEST(Names, SubdomainsAreDottedLabels) {
  EXPECT_TRUE(is_dns1123_subdomain("sample-kpod"));
  EXPECT_TRUE(is_dns1123_subdomain("edge-k1.example.com"));
  EXPECT_TRUE(is_dns1123_subdomain("pod.17a3f0c2b1"));
  EXPECT_TRUE(is_dns1123_subdomain(std::string(253, 'a').replace(63, 1, ".")));
  EXPECT_FALSE(is_dns1123_subdomain(std::string(254, 'a')));
  EXPECT_FALSE(is_dns1123_subdomain(""));
  EXPECT_FALSE(is_dns1123_subdomain("a..b"));
  EXPECT_FALSE(is_dns1123_subdomain(".a"));
  EXPECT_FALSE(is_dns1123_subdomain("a."));
}

TEST(Names, PathInjectionIsNoName) {
  for (const char* name : {"p?x=1", "p/status", "p%2Fstatus", "..", ".", "p#f", "p status",
                           "p\n", "P", "p\xc3\xa9", "p;x", "p:x"}) {
    EXPECT_FALSE(is_dns1123_subdomain(name)) << name;
    EXPECT_FALSE(object_name("default", name)) << name;
    EXPECT_EQ(object_name("default", name).reason, Reason::invalid_name);
    EXPECT_FALSE(object_name(name, "p")) << name;
  }
  EXPECT_TRUE(object_name("default", "p"));
  EXPECT_TRUE(object_name("", "edge-1"));  // cluster-scoped
  EXPECT_TRUE(object_name("default", ""));  // <ns>/podstatus
}

TEST(Names, PrintableKeepsLogsValidAndShort) {
  EXPECT_EQ(printable("a\xff\nb"), "a??b");
  EXPECT_EQ(printable(std::string(100, 'x')).size(), 67u);
}

}  // namespace
}  // namespace edgehub::authz
