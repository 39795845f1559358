#include "sluice/delivery/subscription_registry.hpp"

#include <gtest/gtest.h>

namespace sluice::delivery {
namespace {

subscription sub(std::string queue, std::string name, std::string url = "http://t/a") {
  subscription s;
  s.queue = std::move(queue);
  s.name = std::move(name);
  s.url = std::move(url);
  return s;
}

struct recorder {
  std::vector<std::string> seen;
  explicit recorder(subscription_registry& r) {
    r.on_change(
        [this](const std::string& q, const std::string& n) { seen.push_back(q + "/" + n); });
  }
};

TEST(subscription_registry, finds_and_lists_sorted_by_queue_and_name) {
  subscription_registry r;
  EXPECT_FALSE(r.loaded());
  r.replace_all({sub("b", "x"), sub("a", "z"), sub("a", "y"), sub("ab", "w")});
  EXPECT_TRUE(r.loaded());
  ASSERT_NE(r.find("a", "y"), nullptr);
  EXPECT_EQ(r.find("a", "x"), nullptr);
  std::vector<std::string> names;
  for (const auto& s : r.all())
    names.push_back(s->queue + "/" + s->name);
  EXPECT_EQ(names, (std::vector<std::string>{"a/y", "a/z", "ab/w", "b/x"}));
  const auto of_a = r.of_queue("a");
  ASSERT_EQ(of_a.size(), 2u);
  EXPECT_EQ(of_a[0]->name, "y");
  EXPECT_EQ(of_a[1]->name, "z");
  EXPECT_TRUE(r.of_queue("c").empty());
}

TEST(subscription_registry, listeners_run_only_for_real_changes) {
  subscription_registry r;
  recorder rec(r);
  r.replace_all({sub("q", "a"), sub("q", "b")});
  EXPECT_EQ(rec.seen, (std::vector<std::string>{"q/a", "q/b"}));
  const auto v = r.version();

  rec.seen.clear();
  r.replace_all({sub("q", "a"), sub("q", "b")});  // the same rows again
  r.put(sub("q", "a"));
  EXPECT_TRUE(rec.seen.empty());
  EXPECT_EQ(r.version(), v);

  r.put(sub("q", "a", "http://t/changed"));
  EXPECT_EQ(rec.seen, (std::vector<std::string>{"q/a"}));
  EXPECT_EQ(r.find("q", "a")->url, "http://t/changed");

  rec.seen.clear();
  auto paused = sub("q", "b");
  paused.paused = true;
  paused.paused_reason = "gone: 410";
  r.put(paused);
  EXPECT_EQ(rec.seen, (std::vector<std::string>{"q/b"}));

  rec.seen.clear();
  r.replace_all({sub("q", "a", "http://t/changed"), sub("q", "c")});  // b removed, c added
  EXPECT_EQ(rec.seen, (std::vector<std::string>{"q/c", "q/b"}));
  EXPECT_EQ(r.find("q", "b"), nullptr);

  rec.seen.clear();
  EXPECT_TRUE(r.remove("q", "c"));
  EXPECT_FALSE(r.remove("q", "c"));
  EXPECT_EQ(rec.seen, (std::vector<std::string>{"q/c"}));
}

TEST(subscription_registry, a_snapshot_outlives_its_replacement) {
  subscription_registry r;
  r.put(sub("q", "a", "http://t/old"));
  const auto before = r.find("q", "a");
  r.put(sub("q", "a", "http://t/new"));
  EXPECT_EQ(before->url, "http://t/old");
  EXPECT_EQ(r.find("q", "a")->url, "http://t/new");
}

TEST(subscription_registry, listeners_see_the_final_state_of_a_reload) {
  subscription_registry r;
  std::vector<std::size_t> sizes;
  r.on_change([&](const std::string&, const std::string&) { sizes.push_back(r.all().size()); });
  r.replace_all({sub("q", "a"), sub("q", "b")});
  EXPECT_EQ(sizes, (std::vector<std::size_t>{2, 2}));
}

}  // namespace
}  // namespace sluice::delivery
