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
// multiple=true acks every tag the broker still counts as outstanding up to the one named, so
// the window must know every outstanding tag of the channel (the channel reports each delivery
// of an acknowledging consumer, and those of a consumer it no longer knows), and a run is only
// sent that way when no tag in it is still being worked on. The window keeps only what is
// outstanding: a tag settled another way (nack, reject, an individual ack) leaves it at once, so
// a tag it does not hold is not outstanding and a multiple ack over it is harmless, and the
// window is never larger than what the broker has handed out and not yet seen settled. Acks
// behind an unsettled tag are not held back for it: they leave one by one at the same flush,
// because a held ack still counts against the prefetch.
class ack_window {
 public:
  struct ack_frame {
    std::uint64_t delivery_tag = 0;
    bool multiple = false;
    friend bool operator==(const ack_frame&, const ack_frame&) = default;
  };

  // A delivery the application must settle. Tags only grow on a channel; one that does not
  // ends coalescing on this channel (every later ack is refused, for a direct send).
  void delivered(std::uint64_t delivery_tag);
  // Records an ack to send at the next take(). False when the tag is not tracked (unknown, or
  // settled already) or coalescing ended: send it directly, as before, and let the broker judge
  // it.
  bool ack(std::uint64_t delivery_tag);
  // The tag was settled by a frame sent directly (nack, reject, explicit ack).
  void settled(std::uint64_t delivery_tag);
  // Every tag up to this one was settled by a frame sent directly with multiple=true. Recorded
  // acks must have been taken first: they are dropped with the rest.
  void settled_through(std::uint64_t delivery_tag);
  // The frames that send every recorded ack, in order; the window keeps the unsettled tags.
  std::vector<ack_frame> take();
  // The channel is gone: its tags mean nothing any more.
  void clear();

  bool has_acks() const { return acks_ > 0; }
  std::size_t tracked() const { return entries_.size(); }

 private:
  enum class state : std::uint8_t { open, ack_recorded };
  struct entry {
    std::uint64_t tag;
    state s;
  };
  std::deque<entry>::iterator find(std::uint64_t delivery_tag);

  std::deque<entry> entries_;
  std::size_t acks_ = 0;
  bool coalescing_ = true;
};

}  // namespace sluice::amqp
