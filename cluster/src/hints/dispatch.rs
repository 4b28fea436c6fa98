//! Delivering hints: the dispatcher thread, one page at a time, throttled.
//!
//! The thread sleeps until woken (a host came up) or `hints_dispatch_interval`; it syncs the
//! store every `hints_flush_period`. For each host with hints that [`HintTarget`] says is up,
//! it reads the oldest file page by page (at most [`PAGE_HINTS`] hints or [`PAGE_BYTES`]),
//! sends each page and waits for the acknowledgement. A failed page stops that host until the
//! next round, which resumes at the failed page. A finished file is deleted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sibyl_engine::Mutation;
use uuid::Uuid;

use super::file::{FileError, HintsReader};
use super::HintsService;
use crate::endpoint::Endpoint;

/// Most hints in one delivery message.
pub const PAGE_HINTS: usize = 128;
/// Most payload bytes in one delivery message (a single larger hint goes alone).
pub const PAGE_BYTES: usize = 512 << 10;

/// Where hints go: the cluster as the dispatcher needs it (the service implements it with the
/// coordinator's view and internode messaging; tests with a plain value).
pub trait HintTarget: Send + Sync {
    /// The endpoint of `host` and whether it is up, if it is still a member.
    fn endpoint_of(&self, host: Uuid) -> Option<(Endpoint, bool)>;
    /// Nodes in the ring (the throttle is shared by the others).
    fn ring_size(&self) -> usize;
    /// Sends a page of hints to `to` and waits for its acknowledgement.
    fn deliver(&self, to: Endpoint, page: &[Mutation], timeout: Duration) -> Result<(), String>;
}

/// A token bucket over bytes (Cassandra's hint throttle): `take` says how long to wait before
/// sending `bytes` so the average stays at the rate. At most one second of burst accumulates.
#[derive(Debug, Clone)]
pub struct Throttle {
    bytes_per_sec: u64,
    available: f64,
    last: Option<Instant>,
}

impl Throttle {
    /// A throttle at `bytes_per_sec` (0: unlimited).
    #[must_use]
    pub fn new(bytes_per_sec: u64) -> Throttle {
        Throttle { bytes_per_sec, available: 0.0, last: None }
    }

    /// Takes `bytes` at `now`; returns how long the caller must wait first.
    pub fn take(&mut self, bytes: usize, now: Instant) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let rate = self.bytes_per_sec as f64;
        let elapsed = self.last.map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        self.available = (self.available + elapsed * rate).min(rate);
        self.available -= bytes as f64;
        if self.available >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.available / rate)
        }
    }
}

/// How the delivery of one file ended.
#[derive(Debug, PartialEq, Eq)]
enum FileOutcome {
    /// Every hint was delivered (or expired): delete the file.
    Done,
    /// A page failed, or the dispatcher is stopping: keep the file, resume at `offset`.
    Stopped { offset: u64 },
    /// The file is damaged; what preceded the damage was delivered: discard it.
    Corrupt,
}

/// The dispatcher thread's loop.
pub(super) fn run(service: &HintsService, target: &dyn HintTarget) {
    let config = service.config();
    let tick = config.flush_period.min(config.dispatch_interval).max(Duration::from_millis(10));
    let mut last_flush = Instant::now();
    let mut last_dispatch: Option<Instant> = None;
    let mut resume: HashMap<PathBuf, u64> = HashMap::new();
    loop {
        let woken = {
            let before = Instant::now();
            if !service.wait(tick) {
                break;
            }
            before.elapsed() < tick
        };
        if last_flush.elapsed() >= config.flush_period {
            if let Err(e) = service.store().sync() {
                tracing::error!(error = %e, "cannot sync hints to disk");
            }
            last_flush = Instant::now();
        }
        let due = woken || last_dispatch.is_none_or(|t| t.elapsed() >= config.dispatch_interval);
        if !due || service.is_paused() {
            continue;
        }
        last_dispatch = Some(Instant::now());
        for host in service.store().hosts() {
            let Some((ep, true)) = target.endpoint_of(host) else { continue };
            deliver_host(service, target, host, ep, &mut resume);
            if service.stopping() || service.is_paused() {
                break;
            }
        }
    }
}

/// Delivers the files of one host, oldest first, until done or a page fails.
fn deliver_host(
    service: &HintsService,
    target: &dyn HintTarget,
    host: Uuid,
    ep: Endpoint,
    resume: &mut HashMap<PathBuf, u64>,
) {
    let others = target.ring_size().saturating_sub(1).max(1) as u64;
    let mut throttle = Throttle::new(service.config().throttle_bytes_per_sec / others);
    let started = Instant::now();
    let before = service.store().stats().delivered;
    loop {
        let path = match service.store().next_file(host) {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(%host, error = %e, "cannot close a hints file for delivery");
                return;
            }
        };
        let from = resume.get(&path).copied().unwrap_or(0);
        match deliver_file(service, target, host, ep, &path, from, &mut throttle) {
            FileOutcome::Done | FileOutcome::Corrupt => {
                resume.remove(&path);
                if let Err(e) = service.store().remove(host, &path) {
                    tracing::error!(file = %path.display(), error = %e, "cannot delete a delivered hints file");
                    return;
                }
            }
            FileOutcome::Stopped { offset } => {
                resume.insert(path, offset);
                return;
            }
        }
    }
    let delivered = service.store().stats().delivered - before;
    if delivered > 0 {
        tracing::info!(%host, endpoint = %ep, hints = delivered, elapsed_ms = started.elapsed().as_millis() as u64, "finished hinted handoff to {ep}");
    }
}

fn deliver_file(
    service: &HintsService,
    target: &dyn HintTarget,
    host: Uuid,
    ep: Endpoint,
    path: &Path,
    from: u64,
    throttle: &mut Throttle,
) -> FileOutcome {
    let counters = service.store().counters();
    let corrupt = |e: &FileError| {
        counters.corrupt_files.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, "discarding the rest of a damaged hints file; the hints after the damage are lost (run repair for {ep})");
        FileOutcome::Corrupt
    };
    let mut reader = match HintsReader::open(path) {
        Ok(r) => r,
        Err(e @ FileError::Corrupt { .. }) => return corrupt(&e),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a hints file; will retry");
            return FileOutcome::Stopped { offset: from };
        }
    };
    if let Err(e) = reader.seek_to(from) {
        return corrupt(&e);
    }
    loop {
        if service.stopping() || service.is_paused() || !service.store().is_queued(host, path) {
            return FileOutcome::Stopped { offset: reader.offset() };
        }
        let page_start = reader.offset();
        let now_ms = service.now_ms();
        let mut page: Vec<Mutation> = Vec::new();
        let mut bytes = 0usize;
        let mut damaged = None;
        while page.len() < PAGE_HINTS && bytes < PAGE_BYTES {
            match reader.next_hint() {
                Ok(Some(h)) if h.is_live(now_ms) => {
                    bytes += h.mutation.update.rows.iter().map(sibyl_engine::Row::size_bytes).sum::<usize>()
                        + h.mutation.update.key.len();
                    page.push(h.mutation);
                }
                Ok(Some(_)) => {
                    counters.expired.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) => break,
                Err(e) => {
                    damaged = Some(e);
                    break;
                }
            }
        }
        if !page.is_empty() {
            let wait = throttle.take(bytes, Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            match target.deliver(ep, &page, service.config().delivery_timeout) {
                Ok(()) => {
                    counters.delivered.fetch_add(page.len() as u64, Ordering::Relaxed);
                }
                Err(reason) => {
                    counters.failed.fetch_add(page.len() as u64, Ordering::Relaxed);
                    tracing::info!(%host, endpoint = %ep, %reason, "hint delivery failed; will retry when the node is up");
                    return FileOutcome::Stopped { offset: page_start };
                }
            }
        }
        if let Some(e) = damaged {
            return corrupt(&e);
        }
        if page.is_empty() && reader.offset() == page_start {
            return FileOutcome::Done;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use std::sync::Arc;

    use bytes::Bytes;
    use parking_lot::Mutex;
    use sibyl_engine::{Cell, ColumnId, ManualClock, PartitionUpdate, Row, TableId};

    use super::*;
    use crate::hints::HintsConfig;

    #[test]
    fn the_throttle_keeps_the_average_rate() {
        let mut t = Throttle::new(1000);
        let t0 = Instant::now();
        assert_eq!(t.take(500, t0), Duration::from_millis(500));
        // Half a second later the debt is paid.
        assert_eq!(t.take(0, t0 + Duration::from_millis(500)), Duration::ZERO);
        // A long idle period accumulates at most one second.
        assert_eq!(t.take(1500, t0 + Duration::from_secs(100)), Duration::from_millis(500));
        assert_eq!(Throttle::new(0).take(1 << 30, t0), Duration::ZERO);
    }

    struct FakeTarget {
        ep: Endpoint,
        up: bool,
        fail_after: Mutex<Option<usize>>,
        got: Mutex<Vec<Mutation>>,
    }

    impl HintTarget for FakeTarget {
        fn endpoint_of(&self, _: Uuid) -> Option<(Endpoint, bool)> {
            Some((self.ep, self.up))
        }
        fn ring_size(&self) -> usize {
            2
        }
        fn deliver(&self, _: Endpoint, page: &[Mutation], _: Duration) -> Result<(), String> {
            let mut left = self.fail_after.lock();
            if let Some(n) = left.as_mut() {
                if *n == 0 {
                    return Err("injected".into());
                }
                *n -= 1;
            }
            self.got.lock().extend_from_slice(page);
            Ok(())
        }
    }

    fn mutation(i: u32) -> Mutation {
        let mut row = Row::new(sibyl_engine::clustering::empty_key());
        row.cells.push(Cell::live(ColumnId(1), 1, Bytes::from(vec![0u8; 100])));
        Mutation {
            table: TableId(Uuid::from_u128(1)),
            update: PartitionUpdate::new(Bytes::copy_from_slice(&i.to_be_bytes())).with_row(row),
        }
    }

    fn service(dir: &Path, clock: Arc<ManualClock>) -> Arc<HintsService> {
        let mut c = HintsConfig::new(dir.to_path_buf());
        c.throttle_bytes_per_sec = 0;
        HintsService::open(c, clock).unwrap()
    }

    #[test]
    fn a_failed_page_resumes_where_it_stopped_and_files_are_deleted_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
        let s = service(dir.path(), Arc::clone(&clock));
        let host = Uuid::from_u128(5);
        let all: Vec<Mutation> = (0..300).map(mutation).collect();
        assert!(s.write(host, &all, |_| 3600));
        let target = FakeTarget {
            ep: Endpoint("127.0.0.1:7000".parse().unwrap()),
            up: true,
            fail_after: Mutex::new(Some(1)),
            got: Mutex::new(Vec::new()),
        };
        let mut resume = HashMap::new();
        deliver_host(&s, &target, host, target.ep, &mut resume);
        assert_eq!(target.got.lock().len(), PAGE_HINTS, "one page, then the failure");
        assert_eq!(s.store().stats().failed, PAGE_HINTS as u64);
        assert_eq!(s.store().pending().len(), 1);
        *target.fail_after.lock() = None;
        deliver_host(&s, &target, host, target.ep, &mut resume);
        assert_eq!(*target.got.lock(), all, "every hint once, in order");
        assert!(s.store().pending().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(s.store().stats().delivered, 300);
    }

    #[test]
    fn hints_older_than_gc_grace_are_dropped_at_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
        let s = service(dir.path(), Arc::clone(&clock));
        let host = Uuid::from_u128(5);
        assert!(s.write(host, &[mutation(1)], |_| 60));
        clock.advance_seconds(30);
        assert!(s.write(host, &[mutation(2)], |_| 60));
        clock.advance_seconds(31);
        let target = FakeTarget {
            ep: Endpoint("127.0.0.1:7000".parse().unwrap()),
            up: true,
            fail_after: Mutex::new(None),
            got: Mutex::new(Vec::new()),
        };
        deliver_host(&s, &target, host, target.ep, &mut HashMap::new());
        assert_eq!(*target.got.lock(), vec![mutation(2)]);
        assert_eq!(s.store().stats().expired, 1);
        assert!(s.store().pending().is_empty());
    }
}
