//! Hinted handoff: writes a replica missed, kept by the coordinator and replayed when the
//! replica is back.
//!
//! - When a natural replica of a write is down, or does not acknowledge it in time, the
//!   coordinator stores a hint for it ([`HintsService::write`]): the mutation in a CRC-framed
//!   file of `hints_directory` ([`file`], [`store`]), unless hints are disabled (globally or for
//!   the replica's data center), the replica has been down longer than `max_hint_window`
//!   ([`should_hint`]), or its hints reached `max_hints_size_per_host`.
//! - Consistency level ANY is satisfied by a stored hint when no replica is alive.
//! - A dispatcher thread ([`dispatch`]) replays the hints of every host that is up: when gossip
//!   reports it up, and every `hints_dispatch_interval` in case that was missed. Delivery is
//!   throttled (`hinted_handoff_throttle`, divided by the other nodes as Cassandra does); a file
//!   is deleted once every hint in it was acknowledged. A failed page is retried from where it
//!   stopped on the next round. Hints older than their table's gc_grace are dropped, since
//!   replaying them could resurrect deleted data.
//!
//! Format: `docs/format/hints.md`. Operations: `sibyltool listpendinghints`, `truncatehints`,
//! `statushandoff`, `enablehandoff`/`disablehandoff`, `pausehandoff`/`resumehandoff`.

pub mod dispatch;
pub mod file;
pub mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use sibyl_engine::{Clock, Mutation, TableId};
use uuid::Uuid;

pub use dispatch::{HintTarget, Throttle};
pub use file::Hint;
pub use store::{HintStats, HintsStore, PendingHints};

/// Settings of hinted handoff (cassandra.yaml's keys).
#[derive(Debug, Clone)]
pub struct HintsConfig {
    /// `hinted_handoff_enabled`.
    pub enabled: bool,
    /// `hinted_handoff_disabled_datacenters`: no hints are stored for replicas there.
    pub disabled_datacenters: Vec<String>,
    /// `max_hint_window`: a replica down longer than this gets no new hints (default 3 h).
    pub max_hint_window: Duration,
    /// `hints_directory`.
    pub directory: PathBuf,
    /// `max_hints_file_size`: a file is closed for delivery at this size (default 128 MiB).
    pub max_file_bytes: u64,
    /// `max_hints_size_per_host`: hints for one host beyond this are dropped (0: no cap).
    pub max_bytes_per_host: u64,
    /// `hinted_handoff_throttle` in bytes per second (0: unthrottled), shared by the other
    /// nodes: each target gets `throttle / (nodes - 1)`.
    pub throttle_bytes_per_sec: u64,
    /// `hints_flush_period`: how often appended hints are synced to disk.
    pub flush_period: Duration,
    /// `hints_dispatch_interval` (Sibyl's; Cassandra's is fixed at 10 s): how often hosts that
    /// are up are checked for hints, besides when gossip reports a host up.
    pub dispatch_interval: Duration,
    /// How long a page of hints waits for its acknowledgement.
    pub delivery_timeout: Duration,
}

impl HintsConfig {
    /// Cassandra's defaults, with hints in `directory`.
    #[must_use]
    pub fn new(directory: PathBuf) -> HintsConfig {
        HintsConfig {
            enabled: true,
            disabled_datacenters: Vec::new(),
            max_hint_window: Duration::from_secs(3 * 3600),
            directory,
            max_file_bytes: 128 << 20,
            max_bytes_per_host: 1 << 30,
            throttle_bytes_per_sec: 1024 << 10,
            flush_period: Duration::from_secs(10),
            dispatch_interval: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a replica gets no hint (or that it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintDecision {
    /// Store a hint.
    Hint,
    /// `hinted_handoff_enabled` is off (or `disablehandoff` ran).
    Disabled,
    /// The replica's data center is in `hinted_handoff_disabled_datacenters`.
    DisabledDatacenter,
    /// The replica has been down longer than `max_hint_window`.
    WindowExceeded,
}

/// Whether a replica of `dc`, down for `downtime`, gets a hint (Cassandra's `shouldHint`).
#[must_use]
pub fn should_hint(config: &HintsConfig, enabled: bool, dc: &str, downtime: Duration) -> HintDecision {
    if !enabled {
        HintDecision::Disabled
    } else if config.disabled_datacenters.iter().any(|d| d == dc) {
        HintDecision::DisabledDatacenter
    } else if downtime > config.max_hint_window {
        HintDecision::WindowExceeded
    } else {
        HintDecision::Hint
    }
}

#[derive(Debug, Default)]
struct WakeState {
    woken: bool,
    stopping: bool,
}

/// One node's hints: the store, the switches `sibyltool` flips, and the dispatcher's wake-up.
#[derive(Debug)]
pub struct HintsService {
    config: HintsConfig,
    store: HintsStore,
    clock: Arc<dyn Clock>,
    enabled: AtomicBool,
    paused: AtomicBool,
    wake: Mutex<WakeState>,
    wake_cv: Condvar,
    dispatcher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl HintsService {
    /// Opens the hints directory (hints left by an earlier run are queued for delivery).
    pub fn open(config: HintsConfig, clock: Arc<dyn Clock>) -> std::io::Result<Arc<HintsService>> {
        let store = HintsStore::open(&config.directory, config.max_file_bytes, config.max_bytes_per_host)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot open hints_directory {}: {e}", config.directory.display()),
                )
            })?;
        Ok(Arc::new(HintsService {
            enabled: AtomicBool::new(config.enabled),
            config,
            store,
            clock,
            paused: AtomicBool::new(false),
            wake: Mutex::new(WakeState::default()),
            wake_cv: Condvar::new(),
            dispatcher: Mutex::new(None),
        }))
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &HintsConfig {
        &self.config
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &HintsStore {
        &self.store
    }

    /// Whether new hints are stored (`statushandoff`).
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `enablehandoff` / `disablehandoff`.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        tracing::info!("hinted handoff {}", if on { "enabled" } else { "disabled: no new hints are stored" });
    }

    /// Whether delivery is paused (`pausehandoff`).
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// `pausehandoff` / `resumehandoff`.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
        tracing::info!("hint delivery {}", if paused { "paused" } else { "resumed" });
        if !paused {
            self.wake();
        }
    }

    /// [`should_hint`] with the current switch; counts a window refusal.
    #[must_use]
    pub fn decide(&self, dc: &str, downtime: Duration) -> HintDecision {
        let d = should_hint(&self.config, self.is_enabled(), dc, downtime);
        if d == HintDecision::WindowExceeded {
            self.store.counters().dropped_window.fetch_add(1, Ordering::Relaxed);
        }
        d
    }

    /// Stores hints of `mutations` for `host`; `gc_grace` gives a table's gc_grace_seconds.
    /// Returns whether every mutation was stored. Never fails the caller: a write error is
    /// logged (the replica will then need repair).
    pub fn write(&self, host: Uuid, mutations: &[Mutation], gc_grace: impl Fn(TableId) -> u32) -> bool {
        let now_ms = self.clock.now_millis();
        let hints: Vec<Hint> = mutations
            .iter()
            .map(|m| Hint { created_ms: now_ms, gc_grace_seconds: gc_grace(m.table), mutation: m.clone() })
            .collect();
        match self.store.write(host, &hints, now_ms) {
            Ok(n) if n == hints.len() => true,
            Ok(n) => {
                tracing::warn!(%host, dropped = hints.len() - n, cap = self.config.max_bytes_per_host, "hints for this host reached max_hints_size_per_host; dropping new ones (run repair once it is back)");
                false
            }
            Err(e) => {
                tracing::error!(%host, dir = %self.config.directory.display(), error = %e, "cannot write a hint (check the disk of hints_directory); the replica will need repair");
                false
            }
        }
    }

    /// Asks the dispatcher to look for deliverable hints now (a host came up).
    pub fn wake(&self) {
        self.wake.lock().woken = true;
        self.wake_cv.notify_all();
    }

    /// Starts the dispatcher thread (once).
    pub fn start_dispatcher(self: &Arc<Self>, target: Arc<dyn HintTarget>) {
        let mut slot = self.dispatcher.lock();
        if slot.is_some() {
            return;
        }
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("hints-dispatch".into())
            .spawn(move || dispatch::run(&me, target.as_ref()));
        match spawned {
            Ok(h) => *slot = Some(h),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the hints dispatcher; hints will not be delivered")
            }
        }
    }

    /// Waits for a wake-up, `timeout`, or shutdown; returns false once stopping.
    fn wait(&self, timeout: Duration) -> bool {
        let mut w = self.wake.lock();
        if !w.woken && !w.stopping {
            let _ = self.wake_cv.wait_for(&mut w, timeout);
        }
        w.woken = false;
        !w.stopping
    }

    fn stopping(&self) -> bool {
        self.wake.lock().stopping
    }

    /// Stops the dispatcher and syncs every hint to disk.
    pub fn shutdown(&self) {
        self.wake.lock().stopping = true;
        self.wake_cv.notify_all();
        if let Some(h) = self.dispatcher.lock().take() {
            let _ = h.join();
        }
        if let Err(e) = self.store.sync() {
            tracing::error!(error = %e, "cannot sync hints at shutdown");
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_hint_follows_switch_datacenter_and_window() {
        let mut c = HintsConfig::new(PathBuf::from("/nonexistent"));
        c.disabled_datacenters = vec!["dc2".into()];
        let hour = Duration::from_secs(3600);
        assert_eq!(should_hint(&c, true, "dc1", hour), HintDecision::Hint);
        assert_eq!(should_hint(&c, true, "dc1", 3 * hour), HintDecision::Hint);
        assert_eq!(
            should_hint(&c, true, "dc1", 3 * hour + Duration::from_secs(1)),
            HintDecision::WindowExceeded
        );
        assert_eq!(should_hint(&c, true, "dc2", hour), HintDecision::DisabledDatacenter);
        assert_eq!(should_hint(&c, false, "dc1", hour), HintDecision::Disabled);
    }
}
