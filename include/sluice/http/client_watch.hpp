#pragma once

#include <functional>
#include <utility>

namespace sluice::http {

// Whether the client of a request is still there. The server watches the connection while the
// handler of a route added with route_options::watch_client runs and calls close() when the
// peer closed or reset it; a handler that waits for something slow (a proxied reply) listens
// and gives up instead of working for nobody. Loop-thread only.
class client_watch {
 public:
  bool closed() const { return closed_; }
  // `listener` runs once when the client goes away, or at once when it already has; it
  // replaces an earlier listener, and an empty function removes it.
  void on_close(std::function<void()> listener) {
    listener_ = std::move(listener);
    if (closed_ && listener_)
      std::exchange(listener_, {})();
  }
  void close() {
    if (closed_)
      return;
    closed_ = true;
    if (listener_)
      std::exchange(listener_, {})();
  }

 private:
  bool closed_ = false;
  std::function<void()> listener_;
};

}  // namespace sluice::http
