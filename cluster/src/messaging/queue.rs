//! A peer's outbound queue: messages waiting for the writer, bounded by count and by bytes.
//!
//! Pure bookkeeping (the caller passes `now` and holds the lock). When the queue is full, expired
//! messages at its front are pruned before the new message is refused, as Cassandra's outbound
//! connections do, so a queue clogged by a dead peer still makes room once its contents expire.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::frame::{FRAME_HEADER_BYTES, FRAME_PREFIX_BYTES};
use super::{MessageId, MessageKind, Verb};

/// One message waiting to be written.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// Frame kind.
    pub kind: MessageKind,
    /// Verb (for responses, the request's verb).
    pub verb: Verb,
    /// Message id (0 for one-way messages).
    pub id: MessageId,
    /// After this instant the message is dropped instead of sent.
    pub expires_at: Instant,
    /// Opaque payload.
    pub payload: Bytes,
}

impl OutboundMessage {
    /// Bytes this message takes on the wire, which is what the byte bound counts.
    pub fn size_bytes(&self) -> usize {
        FRAME_PREFIX_BYTES + FRAME_HEADER_BYTES + self.payload.len()
    }

    /// Whether the message's expiry has passed at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// A FIFO of [`OutboundMessage`]s with a message cap and a byte cap.
#[derive(Debug)]
pub struct OutboundQueue {
    messages: VecDeque<OutboundMessage>,
    size_bytes: usize,
    capacity_messages: usize,
    capacity_bytes: usize,
}

impl OutboundQueue {
    /// An empty queue with the given caps.
    pub fn new(capacity_messages: usize, capacity_bytes: usize) -> Self {
        OutboundQueue { messages: VecDeque::new(), size_bytes: 0, capacity_messages, capacity_bytes }
    }

    /// Number of queued messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Wire bytes of the queued messages.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    fn fits(&self, message: &OutboundMessage) -> bool {
        self.messages.len() < self.capacity_messages
            && self.size_bytes.saturating_add(message.size_bytes()) <= self.capacity_bytes
    }

    /// Appends `message`, or gives it back if the queue is full even after pruning expired
    /// messages from its front into `expired`.
    pub fn push(
        &mut self,
        message: OutboundMessage,
        now: Instant,
        expired: &mut Vec<OutboundMessage>,
    ) -> Result<(), OutboundMessage> {
        if !self.fits(&message) {
            while self.messages.front().is_some_and(|m| m.is_expired(now)) {
                if let Some(m) = self.pop_front() {
                    expired.push(m);
                }
            }
            if !self.fits(&message) {
                return Err(message);
            }
        }
        self.size_bytes += message.size_bytes();
        self.messages.push_back(message);
        Ok(())
    }

    fn pop_front(&mut self) -> Option<OutboundMessage> {
        let m = self.messages.pop_front()?;
        self.size_bytes -= m.size_bytes();
        Some(m)
    }

    /// Moves up to `max_messages` messages from the front into `out`, oldest first.
    pub fn pop_batch(&mut self, max_messages: usize, out: &mut Vec<OutboundMessage>) {
        for _ in 0..max_messages {
            match self.pop_front() {
                Some(m) => out.push(m),
                None => break,
            }
        }
    }

    /// Moves every expired message (anywhere in the queue) into `expired`.
    pub fn prune_expired(&mut self, now: Instant, expired: &mut Vec<OutboundMessage>) {
        if !self.messages.iter().any(|m| m.is_expired(now)) {
            return;
        }
        let mut kept = VecDeque::with_capacity(self.messages.len());
        for m in self.messages.drain(..) {
            if m.is_expired(now) {
                self.size_bytes -= m.size_bytes();
                expired.push(m);
            } else {
                kept.push_back(m);
            }
        }
        self.messages = kept;
    }

    /// Empties the queue, returning what it held.
    pub fn clear(&mut self) -> Vec<OutboundMessage> {
        self.size_bytes = 0;
        self.messages.drain(..).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use std::time::Duration;

    use super::*;

    fn message(id: u64, expires_at: Instant, payload_bytes: usize) -> OutboundMessage {
        OutboundMessage {
            kind: MessageKind::OneWay,
            verb: Verb(1),
            id: MessageId(id),
            expires_at,
            payload: Bytes::from(vec![0u8; payload_bytes]),
        }
    }

    #[test]
    fn message_cap_refuses_the_excess() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut q = OutboundQueue::new(2, 1 << 20);
        let mut expired = Vec::new();
        assert!(q.push(message(1, later, 0), now, &mut expired).is_ok());
        assert!(q.push(message(2, later, 0), now, &mut expired).is_ok());
        let refused = q.push(message(3, later, 0), now, &mut expired).unwrap_err();
        assert_eq!(refused.id, MessageId(3));
        assert_eq!(q.len(), 2);
        assert!(expired.is_empty());
    }

    #[test]
    fn byte_cap_counts_wire_bytes() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut q = OutboundQueue::new(100, 2 * (23 + 10));
        let mut expired = Vec::new();
        assert!(q.push(message(1, later, 10), now, &mut expired).is_ok());
        assert!(q.push(message(2, later, 10), now, &mut expired).is_ok());
        assert!(q.push(message(3, later, 0), now, &mut expired).is_err());
        assert_eq!(q.size_bytes(), 66);
        let mut out = Vec::new();
        q.pop_batch(1, &mut out);
        assert_eq!(q.size_bytes(), 33);
        assert!(q.push(message(3, later, 0), now, &mut expired).is_ok());
    }

    #[test]
    fn full_queue_makes_room_by_pruning_expired_front() {
        let now = Instant::now();
        let mut q = OutboundQueue::new(2, 1 << 20);
        let mut expired = Vec::new();
        q.push(message(1, now + Duration::from_millis(1), 0), now, &mut expired).unwrap();
        q.push(message(2, now + Duration::from_secs(10), 0), now, &mut expired).unwrap();
        let later = now + Duration::from_millis(5);
        q.push(message(3, now + Duration::from_secs(10), 0), later, &mut expired).unwrap();
        assert_eq!(expired.iter().map(|m| m.id).collect::<Vec<_>>(), vec![MessageId(1)]);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn prune_expired_keeps_order_and_bytes() {
        let now = Instant::now();
        let mut q = OutboundQueue::new(10, 1 << 20);
        let mut expired = Vec::new();
        for id in 0..6 {
            let ttl = if id % 2 == 0 { Duration::ZERO } else { Duration::from_secs(1) };
            q.push(message(id, now + ttl, id as usize), now, &mut expired).unwrap();
        }
        q.prune_expired(now, &mut expired);
        assert_eq!(expired.len(), 3);
        let mut out = Vec::new();
        q.pop_batch(10, &mut out);
        assert_eq!(out.iter().map(|m| m.id.0).collect::<Vec<_>>(), vec![1, 3, 5]);
        assert_eq!(q.size_bytes(), 0);
        assert!(q.is_empty());
    }
}
