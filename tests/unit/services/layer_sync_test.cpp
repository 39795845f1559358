#include "sluice/services/layer_sync.hpp"

#include <gtest/gtest.h>

namespace sluice::services {
namespace {

service named(std::string name, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  service s;
  s.name = std::move(name);
  s.default_flavour = "std";
  s.flavours = {{"std", ""}};
  s.timeout = timeout;
  s.source = service_source::api;
  return s;
}

TEST(layer_sync, tells_listeners_only_about_what_differs) {
  service_registry r;
  std::vector<std::string> told;
  r.on_change([&](const std::string& name) { told.push_back(name); });
  EXPECT_EQ(sync_layer(r, service_source::api, {named("a"), named("b"), named("c")}), 3u);
  EXPECT_EQ(told, (std::vector<std::string>{"a", "b", "c"}));

  told.clear();
  EXPECT_EQ(sync_layer(r, service_source::api, {named("a"), named("b"), named("c")}), 0u);
  EXPECT_TRUE(told.empty()) << "a full reload of the same rows changes nothing";

  EXPECT_EQ(sync_layer(r, service_source::api,
                       {named("a"), named("b", std::chrono::seconds(5)), named("d")}),
            3u);
  EXPECT_EQ(told, (std::vector<std::string>{"b", "d", "c"}));
  EXPECT_EQ(r.find("b")->timeout, std::chrono::seconds(5));
  EXPECT_FALSE(r.find("c"));
}

TEST(layer_sync, removes_entries_hidden_by_a_higher_layer_and_leaves_other_layers) {
  service_registry r;
  auto file = named("a", std::chrono::seconds(1));
  file.source = service_source::file;
  r.put(file);
  auto env = named("e");
  env.source = service_source::env;
  r.put(env);
  sync_layer(r, service_source::api, {named("a"), named("e")});
  ASSERT_TRUE(r.find_in(service_source::api, "a"));
  EXPECT_EQ(r.find("a")->source, service_source::file);
  EXPECT_EQ(r.find("e")->source, service_source::api);

  sync_layer(r, service_source::api, {});
  EXPECT_FALSE(r.find_in(service_source::api, "a"));
  EXPECT_FALSE(r.find_in(service_source::api, "e"));
  EXPECT_EQ(r.find("a")->source, service_source::file);
  EXPECT_EQ(r.find("e")->source, service_source::env);
}

TEST(layer_sync, put_if_changed_skips_an_equal_definition) {
  service_registry r;
  int told = 0;
  r.on_change([&](const std::string&) { ++told; });
  EXPECT_TRUE(put_if_changed(r, named("a")));
  EXPECT_FALSE(put_if_changed(r, named("a")));
  EXPECT_TRUE(put_if_changed(r, named("a", std::chrono::seconds(2))));
  EXPECT_EQ(told, 2);
}

}  // namespace
}  // namespace sluice::services
