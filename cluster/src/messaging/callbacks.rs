//! The table of outstanding requests: who a request went to, when it times out, whom to call.
//!
//! Pure bookkeeping: the caller passes `now`, holds the lock, and invokes the callbacks this
//! table hands back only after releasing it. A callback leaves the table exactly once, by one
//! of [`CallbackTable::complete`], [`CallbackTable::expire`], [`CallbackTable::cancel`] or
//! [`CallbackTable::close`], so it is called exactly once. The table is bounded; a closed table
//! (after shutdown) accepts nothing.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::request::ResponseCallback;
use super::MessageId;
use crate::endpoint::Endpoint;

/// Why a callback could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// The table holds `capacity` callbacks already.
    Full,
    /// The table was closed by shutdown.
    Closed,
}

struct Pending {
    to: Endpoint,
    deadline: Instant,
    callback: ResponseCallback,
}

/// Outstanding requests keyed by [`MessageId`], with their deadlines in order.
pub struct CallbackTable {
    entries: HashMap<MessageId, Pending>,
    deadlines: BTreeSet<(Instant, MessageId)>,
    capacity: usize,
    closed: bool,
}

impl std::fmt::Debug for CallbackTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackTable")
            .field("outstanding", &self.entries.len())
            .field("capacity", &self.capacity)
            .field("closed", &self.closed)
            .finish()
    }
}

impl CallbackTable {
    /// An empty table holding at most `capacity` callbacks.
    pub fn new(capacity: usize) -> Self {
        CallbackTable { entries: HashMap::new(), deadlines: BTreeSet::new(), capacity, closed: false }
    }

    /// Number of outstanding requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no request is outstanding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The earliest deadline, if any request is outstanding.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// Registers the callback of request `id` sent to `to`. On error the callback is handed
    /// back, uncalled. On success, returns whether `deadline` is now the earliest (so a timer
    /// sleeping until a later deadline must be woken).
    pub fn register(
        &mut self,
        id: MessageId,
        to: Endpoint,
        deadline: Instant,
        callback: ResponseCallback,
    ) -> Result<bool, (RegisterError, ResponseCallback)> {
        if self.closed {
            return Err((RegisterError::Closed, callback));
        }
        if self.entries.len() >= self.capacity || self.entries.contains_key(&id) {
            return Err((RegisterError::Full, callback));
        }
        let earliest = self.next_deadline().is_none_or(|d| deadline < d);
        self.deadlines.insert((deadline, id));
        self.entries.insert(id, Pending { to, deadline, callback });
        Ok(earliest)
    }

    /// Removes the callback of request `id` if it was sent to `from`; a response from any other
    /// node (or for an unknown id: late, or never ours) leaves the table as it is.
    pub fn complete(&mut self, id: MessageId, from: Endpoint) -> Option<ResponseCallback> {
        if self.entries.get(&id)?.to != from {
            return None;
        }
        self.remove(id).map(|(_, callback)| callback)
    }

    /// Removes the callback of request `id` whatever its peer (the request was never sent).
    pub fn cancel(&mut self, id: MessageId) -> Option<ResponseCallback> {
        self.remove(id).map(|(_, callback)| callback)
    }

    /// Removes and returns every callback whose deadline is at or before `now`, with its peer.
    pub fn expire(&mut self, now: Instant) -> Vec<(Endpoint, ResponseCallback)> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            match self.remove(id) {
                Some(expired) => out.push(expired),
                None => {
                    self.deadlines.pop_first();
                }
            }
        }
        out
    }

    /// Closes the table and returns every outstanding callback.
    pub fn close(&mut self) -> Vec<ResponseCallback> {
        self.closed = true;
        self.deadlines.clear();
        self.entries.drain().map(|(_, p)| p.callback).collect()
    }

    fn remove(&mut self, id: MessageId) -> Option<(Endpoint, ResponseCallback)> {
        let pending = self.entries.remove(&id)?;
        self.deadlines.remove(&(pending.deadline, id));
        Some((pending.to, pending.callback))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::messaging::RequestError;

    fn ep(port: u16) -> Endpoint {
        Endpoint(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn counting(calls: &Arc<AtomicUsize>) -> ResponseCallback {
        let calls = calls.clone();
        Box::new(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn complete_only_from_the_peer_asked() {
        let calls = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let mut t = CallbackTable::new(10);
        assert!(t.register(MessageId(1), ep(1), now, counting(&calls)).is_ok());
        assert!(t.complete(MessageId(1), ep(2)).is_none());
        assert!(t.complete(MessageId(2), ep(1)).is_none());
        t.complete(MessageId(1), ep(1)).unwrap()(Err(RequestError::Timeout));
        assert!(t.complete(MessageId(1), ep(1)).is_none(), "late response finds nothing");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(t.is_empty() && t.next_deadline().is_none());
    }

    #[test]
    fn expire_takes_due_callbacks_in_deadline_order() {
        let calls = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let mut t = CallbackTable::new(10);
        for (id, ms) in [(1, 30), (2, 10), (3, 20)] {
            let deadline = now + Duration::from_millis(ms);
            assert!(t.register(MessageId(id), ep(id as u16), deadline, counting(&calls)).is_ok());
        }
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        let due = t.expire(now + Duration::from_millis(20));
        assert_eq!(due.iter().map(|(e, _)| *e).collect::<Vec<_>>(), vec![ep(2), ep(3)]);
        assert_eq!(t.len(), 1);
        assert!(t.complete(MessageId(2), ep(2)).is_none(), "expired callback is gone");
    }

    #[test]
    fn bounded_and_closed_tables_refuse() {
        let calls = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let mut t = CallbackTable::new(1);
        assert_eq!(t.register(MessageId(1), ep(1), now, counting(&calls)).ok(), Some(true));
        assert!(matches!(
            t.register(MessageId(2), ep(1), now, counting(&calls)),
            Err((RegisterError::Full, _))
        ));
        assert_eq!(t.close().len(), 1);
        assert!(matches!(
            t.register(MessageId(3), ep(1), now, counting(&calls)),
            Err((RegisterError::Closed, _))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the table never calls callbacks itself");
    }

    #[test]
    fn register_reports_a_new_earliest_deadline() {
        let calls = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let mut t = CallbackTable::new(10);
        let at = |ms| now + Duration::from_millis(ms);
        assert_eq!(t.register(MessageId(1), ep(1), at(50), counting(&calls)).ok(), Some(true));
        assert_eq!(t.register(MessageId(2), ep(1), at(60), counting(&calls)).ok(), Some(false));
        assert_eq!(t.register(MessageId(3), ep(1), at(40), counting(&calls)).ok(), Some(true));
        assert!(t.cancel(MessageId(3)).is_some());
        assert_eq!(t.next_deadline(), Some(at(50)));
    }
}
