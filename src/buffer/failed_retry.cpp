#include "sluice/buffer/failed_retry.hpp"

#include <string>

#include "sluice/buffer/failed_store.hpp"
#include "sluice/buffer/log_layout.hpp"

#include <spdlog/spdlog.h>

namespace sluice::buffer::detail {
namespace {

namespace fs = std::filesystem;

bool matches(const retry_filter& filter, const failed_message& f) {
  return (!filter.queue || f.msg.queue == *filter.queue) &&
         (!filter.reason_substring || f.reason.find(*filter.reason_substring) != std::string::npos);
}

}  // namespace

retry_plan plan_retry(const fs::path& dir, const retry_filter& filter) {
  retry_plan plan;
  const bool filtered = filter.queue || filter.reason_substring;
  const auto files = layout::list_files(dir / layout::failed_dir, layout::failed_suffix, plan.ec);
  for (const auto& [id, path] : files) {
    if (!filtered && plan.messages.size() >= filter.max_records)
      break;
    failed_file f = read_failed_file(id, path);
    std::vector<bool> take(f.records.size(), false);
    std::size_t took = 0;
    for (std::size_t i = 0; i < f.records.size(); ++i) {
      if (!matches(filter, f.records[i]))
        continue;
      if (plan.messages.size() + took < filter.max_records) {
        take[i] = true;
        ++took;
      } else {
        ++plan.remaining;
      }
    }
    // Unfiltered, a damaged file with nothing readable left is moved to quarantine/.
    if (took == 0 && !(f.error && !filtered))
      continue;
    retry_plan::file_change change;
    change.id = id;
    change.path = path;
    change.damaged = static_cast<bool>(f.error);
    if (change.damaged) {
      const std::uint64_t counted = summarize_failed_file(id, path).records;
      change.unreadable = counted > f.records.size() ? counted - f.records.size() : 0;
    }
    std::error_code size_ec;
    change.old_bytes = fs::file_size(path, size_ec);
    for (std::size_t i = 0; i < f.records.size(); ++i) {
      if (take[i])
        plan.messages.push_back(std::move(f.records[i].msg));
      else
        change.keep.push_back(std::move(f.records[i]));
    }
    plan.changes.push_back(std::move(change));
  }
  return plan;
}

std::uint64_t apply_retry(const fs::path& dir, const retry_plan& plan) {
  std::uint64_t freed = 0;
  for (const auto& c : plan.changes) {
    std::error_code ec;
    if (c.damaged) {
      // The readable records are handled; keep the file for an operator.
      ec = layout::quarantine_file(dir, c.path);
    }
    if (!ec && !c.keep.empty()) {
      ec = rewrite_failed_file(dir, c.id, c.keep, c.keep.front().failed_ms);
    } else if (!ec && !c.damaged) {
      fs::remove(c.path, ec);
      if (!ec)
        ec = layout::sync_directory(dir / layout::failed_dir);
    }
    if (ec) {
      spdlog::error(
          "buffer: cannot remove retried records from failed file={} error={} (they may be "
          "retried again; PostgreSQL keeps one copy)",
          c.path.string(), ec.message());
      continue;
    }
    std::error_code size_ec;
    const std::uint64_t now =
        c.keep.empty() ? 0 : fs::file_size(dir / layout::failed_dir / c.path.filename(), size_ec);
    freed += c.old_bytes > now ? c.old_bytes - now : 0;
  }
  return freed;
}

}  // namespace sluice::buffer::detail
