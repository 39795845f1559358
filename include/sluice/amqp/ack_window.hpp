#pragma once

#include <cstdint>
#include <deque>
#include <vector>

namespace sluice::amqp {

// The acknowledgeable deliveries of one channel, in delivery-tag order, so that acks can leave
// as one basic.ack with multiple=true per run of settled tags instead of one frame each. A
// quorum queue turns every ack frame into a Raft command; at thousands of deliveries a second
// that was RabbitMQ's largest cost per delivered message.
//
// multiple=true acks every outstanding tag up to the one named, so a run is only sent that way
// when no tag in it is still being worked on. Tags already settled another way (nack, reject,
// an individual ack) are no longer outstanding on the broker, so a multiple ack over them is
// harmless. Acks behind an unsettled tag are not held back for it: they leave one by one at
// the same flush, because a held ack still counts against the prefetch.
class ack_window {
 public:
  struct ack_frame {
    std::uint64_t delivery_tag = 0;
    bool multiple = false;
    friend bool operator==(const ack_frame&, const ack_frame&) = default;
  };

  // A delivery the application must settle. Tags only grow on a channel.
  void delivered(std::uint64_t delivery_tag);
  // Records an ack to send at the next take(). False when the tag is not tracked (unknown, or
  // settled already): send it directly, as before, and let the broker judge it.
  bool ack(std::uint64_t delivery_tag);
  // The tag was settled by a frame sent directly (nack, reject, explicit ack).
  void settled(std::uint64_t delivery_tag);
  // The frames that send every recorded ack, in order; the window keeps only unsettled tags
  // and settled ones behind them.
  std::vector<ack_frame> take();
  // The channel is gone: its tags mean nothing any more.
  void clear();

  bool has_acks() const { return acks_ > 0; }
  std::size_t tracked() const { return entries_.size(); }

 private:
  enum class state : std::uint8_t { open, ack_recorded, settled };
  struct entry {
    std::uint64_t tag;
    state s;
  };
  entry* find(std::uint64_t delivery_tag);

  std::deque<entry> entries_;
  std::size_t acks_ = 0;
};

}  // namespace sluice::amqp
