//! What gossip says about one endpoint: its heartbeat and its versioned application states.
//!
//! As in Cassandra (`HeartBeatState`, `VersionedValue`, `EndpointState`), an endpoint's state is
//! a heartbeat `(generation, version)` plus a map of application states, each a value with the
//! version it was written at. The *generation* changes when the node restarts (it is normally the
//! start time in seconds); within a generation every heartbeat bump and every application-state
//! change takes the next value of the node's single version counter ([`VersionGenerator`]), so
//! "what changed since version v" is simply "everything whose version is above v".

use std::collections::BTreeMap;

/// The liveness half of an endpoint state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatState {
    /// Incarnation of the node: a newer generation means the node restarted.
    pub generation: i32,
    /// Version of the last heartbeat, from the node's [`VersionGenerator`].
    pub version: i32,
}

/// An application-state value and the version it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value, in Cassandra's textual forms (e.g. `NORMAL,<token>` for STATUS).
    pub value: String,
    /// Version from the owning node's [`VersionGenerator`].
    pub version: i32,
}

/// Which piece of node metadata a [`VersionedValue`] carries.
///
/// The discriminants are the wire tags. Where Cassandra has the state they are Cassandra's
/// ordinals, so a reader of both can map them; `NativePort` is Sibyl's own (Cassandra gossips
/// `NATIVE_ADDRESS_AND_PORT`; our native address is the endpoint's IP, so only the port travels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ApplicationState {
    /// Ring status: `BOOT`, `NORMAL`, `LEAVING`, `LEFT`, `shutdown`, ... with arguments.
    Status = 0,
    /// Data size on disk, in bytes, as a decimal string.
    Load = 1,
    /// Schema version (a UUID); nodes compare it to decide on schema pulls.
    Schema = 2,
    /// Data center name, from the snitch.
    Dc = 3,
    /// Rack name, from the snitch.
    Rack = 4,
    /// Release version of the node's software.
    ReleaseVersion = 5,
    /// Address clients should use for the native protocol.
    RpcAddress = 8,
    /// Host id (a UUID), stable across restarts and address changes.
    HostId = 12,
    /// The node's tokens.
    Tokens = 13,
    /// Port of the native protocol server (Sibyl's; see the type's docs).
    NativePort = 32,
}

impl ApplicationState {
    /// Every state, in tag order.
    pub const ALL: [ApplicationState; 10] = [
        ApplicationState::Status,
        ApplicationState::Load,
        ApplicationState::Schema,
        ApplicationState::Dc,
        ApplicationState::Rack,
        ApplicationState::ReleaseVersion,
        ApplicationState::RpcAddress,
        ApplicationState::HostId,
        ApplicationState::Tokens,
        ApplicationState::NativePort,
    ];

    /// The wire tag.
    #[must_use]
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The state with wire tag `tag`, if any.
    #[must_use]
    pub fn from_tag(tag: u8) -> Option<ApplicationState> {
        ApplicationState::ALL.into_iter().find(|state| state.tag() == tag)
    }
}

/// Everything gossip knows about one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointState {
    /// Generation and last heartbeat version.
    pub heartbeat: HeartbeatState,
    /// Application states by kind.
    pub states: BTreeMap<ApplicationState, VersionedValue>,
}

impl EndpointState {
    /// A state with this heartbeat and no application states.
    #[must_use]
    pub fn new(heartbeat: HeartbeatState) -> EndpointState {
        EndpointState { heartbeat, states: BTreeMap::new() }
    }

    /// The highest version in the state: heartbeat or any application state (Cassandra's
    /// `getMaxEndpointStateVersion`).
    #[must_use]
    pub fn max_version(&self) -> i32 {
        self.states.values().map(|v| v.version).fold(self.heartbeat.version, i32::max)
    }

    /// The value of `state`, if present.
    #[must_use]
    pub fn value(&self, state: ApplicationState) -> Option<&str> {
        self.states.get(&state).map(|v| v.value.as_str())
    }

    /// The part of this state a peer that has seen up to `version` is missing: application states
    /// newer than `version`, with the heartbeat (always included when anything is, as Cassandra's
    /// `getStateForVersionBiggerThan` does; the receiver ignores an old one). `None` if nothing is
    /// newer.
    #[must_use]
    pub fn newer_than(&self, version: i32) -> Option<EndpointState> {
        let states: BTreeMap<_, _> =
            self.states.iter().filter(|(_, v)| v.version > version).map(|(k, v)| (*k, v.clone())).collect();
        if self.heartbeat.version > version || !states.is_empty() {
            Some(EndpointState { heartbeat: self.heartbeat, states })
        } else {
            None
        }
    }
}

/// A node's single version counter (Cassandra's `VersionGenerator`): heartbeats and local
/// application-state changes all draw from it, so versions are totally ordered per generation.
#[derive(Debug, Clone)]
pub struct VersionGenerator {
    last: i32,
}

impl Default for VersionGenerator {
    fn default() -> Self {
        VersionGenerator::new()
    }
}

impl VersionGenerator {
    /// A counter whose first version is 1 (0 is a fresh heartbeat's version).
    #[must_use]
    pub fn new() -> VersionGenerator {
        VersionGenerator { last: 0 }
    }

    /// The next version.
    ///
    /// # Panics
    /// After `i32::MAX` versions (68 years of one change per second), which a generation never
    /// lives to see.
    pub fn next_version(&mut self) -> i32 {
        self.last = self.last.checked_add(1).unwrap_or_else(|| panic!("gossip version counter overflowed"));
        self.last
    }

    /// The last version handed out (0 if none).
    #[must_use]
    pub fn current(&self) -> i32 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(value: &str, version: i32) -> VersionedValue {
        VersionedValue { value: value.to_owned(), version }
    }

    #[test]
    fn application_state_tags_round_trip_and_unknown_tags_are_none() {
        for state in ApplicationState::ALL {
            assert_eq!(ApplicationState::from_tag(state.tag()), Some(state));
        }
        assert_eq!(ApplicationState::from_tag(6), None);
        assert_eq!(ApplicationState::from_tag(255), None);
        // Cassandra's ordinals where Cassandra has the state.
        assert_eq!(ApplicationState::Schema.tag(), 2);
        assert_eq!(ApplicationState::Tokens.tag(), 13);
    }

    #[test]
    fn max_version_covers_heartbeat_and_states() {
        let mut state = EndpointState::new(HeartbeatState { generation: 7, version: 3 });
        assert_eq!(state.max_version(), 3);
        state.states.insert(ApplicationState::Schema, vv("a", 9));
        state.states.insert(ApplicationState::Load, vv("1", 2));
        assert_eq!(state.max_version(), 9);
    }

    #[test]
    fn newer_than_selects_newer_states_and_keeps_the_heartbeat() {
        let mut state = EndpointState::new(HeartbeatState { generation: 7, version: 5 });
        state.states.insert(ApplicationState::Schema, vv("a", 9));
        state.states.insert(ApplicationState::Load, vv("1", 2));
        let delta = state.newer_than(5).unwrap();
        assert_eq!(delta.heartbeat, state.heartbeat);
        assert_eq!(delta.states.keys().copied().collect::<Vec<_>>(), vec![ApplicationState::Schema]);
        let all = state.newer_than(0).unwrap();
        assert_eq!(all, state);
        assert!(state.newer_than(9).is_none());
        let since_4 = state.newer_than(4).unwrap();
        assert_eq!(since_4.states.keys().copied().collect::<Vec<_>>(), vec![ApplicationState::Schema]);
    }

    #[test]
    fn the_version_generator_counts_from_one() {
        let mut generator = VersionGenerator::new();
        assert_eq!(generator.current(), 0);
        assert_eq!(generator.next_version(), 1);
        assert_eq!(generator.next_version(), 2);
        assert_eq!(generator.current(), 2);
    }
}
