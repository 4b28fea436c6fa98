//! The three gossip messages (SYN, ACK, ACK2) and their bytes.
//!
//! A round between A and B: A sends `Syn` with a digest `(endpoint, generation, max_version)` of
//! every endpoint it knows; B answers `Ack` with the digests of what it wants from A and the states
//! it has that are newer than A's; A answers `Ack2` with what B asked for. See
//! [`crate::gossip::Gossiper`] for the rules.
//!
//! # Wire format
//! This is the payload of the GOSSIP verbs; the messaging layer frames it with the protocol
//! version, a length and a CRC. Integers are little-endian, `varint` is unsigned LEB128 and
//! `string` is a varint byte length followed by UTF-8.
//!
//! ```text
//! message     := tag:u8 body                        (nothing may follow)
//!   tag 1 Syn  := cluster_name:string  count:varint digest*
//!   tag 2 Ack  := count:varint digest*  count:varint entry*
//!   tag 3 Ack2 := count:varint entry*
//! digest      := endpoint  generation:i32  max_version:varint
//! entry       := endpoint  generation:i32  heartbeat_version:varint  count:varint app_state*
//! app_state   := state_tag:u8  version:varint  value:string     (no tag twice in one entry)
//! endpoint    := 4:u8 ipv4:[u8;4] port:u16  |  6:u8 ipv6:[u8;16] port:u16
//! ```
//!
//! Versions are at most `i32::MAX`. Limits, checked before anything is allocated: at most
//! [`MAX_ENDPOINTS`] digests or entries per list, [`MAX_APPLICATION_STATES`] states per entry,
//! [`MAX_VALUE_BYTES`] per value and [`MAX_CLUSTER_NAME_BYTES`] for the cluster name. An unknown
//! message or state tag rejects the message: adding one is a messaging-version change. IPv6 flow
//! info and scope ids do not travel (endpoints are routable addresses).
//!
//! Example: `Syn { cluster_name: "c", digests: [(127.0.0.1:7000, generation 1, max_version 5)] }`
//! is `01 01 63 01 04 7f 00 00 01 58 1b 01 00 00 00 05`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::endpoint::Endpoint;
use crate::gossip::state::{ApplicationState, EndpointState, HeartbeatState, VersionedValue};
use sibyl_engine::codec::{put_len_prefixed, put_varint, DecodeError, DecodeResult, Reader};

/// Most digests, or endpoint states, one message carries (and most endpoints a gossiper tracks).
pub const MAX_ENDPOINTS: usize = 4096;
/// Most application states one endpoint state carries.
pub const MAX_APPLICATION_STATES: usize = 64;
/// Longest application-state value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Longest cluster name, in bytes.
pub const MAX_CLUSTER_NAME_BYTES: usize = 1024;

const TAG_SYN: u8 = 1;
const TAG_ACK: u8 = 2;
const TAG_ACK2: u8 = 3;
const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

/// Smallest encoded endpoint (IPv4), digest and entry, to bound counts by the bytes present.
const MIN_ENDPOINT_BYTES: usize = 1 + 4 + 2;
const MIN_DIGEST_BYTES: usize = MIN_ENDPOINT_BYTES + 4 + 1;
const MIN_ENTRY_BYTES: usize = MIN_ENDPOINT_BYTES + 4 + 1 + 1;
const MIN_APP_STATE_BYTES: usize = 1 + 1 + 1;

/// What the sender knows about one endpoint, in brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GossipDigest {
    /// The endpoint described.
    pub endpoint: Endpoint,
    /// Its generation as the sender knows it.
    pub generation: i32,
    /// The highest version the sender has for it (see [`EndpointState::max_version`]); in an
    /// ACK's request list, the version above which the requester wants everything.
    pub max_version: i32,
}

/// One gossip message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipMessage {
    /// Opens a round: digests of every endpoint the sender knows, in random order.
    Syn {
        /// Sender's cluster name; a receiver in another cluster ignores the message.
        cluster_name: String,
        /// One digest per endpoint known to the sender, itself included.
        digests: Vec<GossipDigest>,
    },
    /// Answers a SYN.
    Ack {
        /// What the SYN's sender should send back: states above `max_version`.
        digests: Vec<GossipDigest>,
        /// States the answering node has that are newer than the SYN's sender's.
        states: Vec<(Endpoint, EndpointState)>,
    },
    /// Answers an ACK with the states it requested.
    Ack2 {
        /// The requested states.
        states: Vec<(Endpoint, EndpointState)>,
    },
}

impl GossipMessage {
    /// Appends the message's bytes (see the module docs).
    ///
    /// # Panics
    /// If a list, value or name exceeds the limits in the module docs: the gossiper never builds
    /// such a message, and sending one would only be refused by the receiver.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            GossipMessage::Syn { cluster_name, digests } => {
                out.push(TAG_SYN);
                assert!(cluster_name.len() <= MAX_CLUSTER_NAME_BYTES, "cluster name too long");
                put_len_prefixed(out, cluster_name.as_bytes());
                put_digests(out, digests);
            }
            GossipMessage::Ack { digests, states } => {
                out.push(TAG_ACK);
                put_digests(out, digests);
                put_entries(out, states);
            }
            GossipMessage::Ack2 { states } => {
                out.push(TAG_ACK2);
                put_entries(out, states);
            }
        }
    }

    /// The message's bytes in a new buffer.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one message from `bytes`; never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> DecodeResult<GossipMessage> {
        let mut r = Reader::new(bytes);
        let message = match r.u8()? {
            TAG_SYN => {
                let name = r.len_prefixed(MAX_CLUSTER_NAME_BYTES)?;
                let cluster_name = utf8(&r, name, "cluster name")?;
                GossipMessage::Syn { cluster_name, digests: get_digests(&mut r)? }
            }
            TAG_ACK => {
                let digests = get_digests(&mut r)?;
                GossipMessage::Ack { digests, states: get_entries(&mut r)? }
            }
            TAG_ACK2 => GossipMessage::Ack2 { states: get_entries(&mut r)? },
            other => {
                return Err(error_before(&r, 1, format!("unknown gossip message tag {other}")));
            }
        };
        if !r.is_empty() {
            return Err(r.error(format!("{} trailing bytes after the gossip message", r.remaining())));
        }
        Ok(message)
    }
}

/// An error about the `back` bytes just read (a tag, a value), pointing at their start.
fn error_before(r: &Reader<'_>, back: usize, reason: String) -> DecodeError {
    let mut error = r.error(reason);
    error.offset = error.offset.saturating_sub(back);
    error
}

fn utf8(r: &Reader<'_>, bytes: &[u8], what: &str) -> DecodeResult<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(error_before(r, bytes.len(), format!("{what} is not UTF-8"))),
    }
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_version(out: &mut Vec<u8>, v: i32) {
    assert!(v >= 0, "negative gossip version {v}");
    put_varint(out, v as u64);
}

fn get_i32(r: &mut Reader<'_>) -> DecodeResult<i32> {
    Ok(r.u32()? as i32)
}

fn get_version(r: &mut Reader<'_>) -> DecodeResult<i32> {
    let v = r.varint()?;
    i32::try_from(v).map_err(|_| error_before(r, 1, format!("version {v} exceeds i32::MAX")))
}

fn put_endpoint(out: &mut Vec<u8>, endpoint: Endpoint) {
    match endpoint.0.ip() {
        IpAddr::V4(ip) => {
            out.push(FAMILY_V4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(FAMILY_V6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&endpoint.0.port().to_le_bytes());
}

fn get_endpoint(r: &mut Reader<'_>) -> DecodeResult<Endpoint> {
    let ip = match r.u8()? {
        FAMILY_V4 => {
            let mut octets = [0u8; 4];
            octets.copy_from_slice(r.bytes(4)?);
            IpAddr::V4(Ipv4Addr::from(octets))
        }
        FAMILY_V6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(r.bytes(16)?);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        other => return Err(error_before(r, 1, format!("unknown address family {other}"))),
    };
    let port = r.u16()?;
    Ok(Endpoint(SocketAddr::new(ip, port)))
}

fn put_digests(out: &mut Vec<u8>, digests: &[GossipDigest]) {
    assert!(digests.len() <= MAX_ENDPOINTS, "{} digests exceed {MAX_ENDPOINTS}", digests.len());
    put_varint(out, digests.len() as u64);
    for digest in digests {
        put_endpoint(out, digest.endpoint);
        put_i32(out, digest.generation);
        put_version(out, digest.max_version);
    }
}

fn get_digests(r: &mut Reader<'_>) -> DecodeResult<Vec<GossipDigest>> {
    let count = bounded_count(r, MIN_DIGEST_BYTES, MAX_ENDPOINTS, "digests")?;
    let mut digests = Vec::with_capacity(count);
    for _ in 0..count {
        let endpoint = get_endpoint(r)?;
        let generation = get_i32(r)?;
        let max_version = get_version(r)?;
        digests.push(GossipDigest { endpoint, generation, max_version });
    }
    Ok(digests)
}

fn put_entries(out: &mut Vec<u8>, entries: &[(Endpoint, EndpointState)]) {
    assert!(entries.len() <= MAX_ENDPOINTS, "{} endpoint states exceed {MAX_ENDPOINTS}", entries.len());
    put_varint(out, entries.len() as u64);
    for (endpoint, state) in entries {
        put_endpoint(out, *endpoint);
        put_i32(out, state.heartbeat.generation);
        put_version(out, state.heartbeat.version);
        assert!(state.states.len() <= MAX_APPLICATION_STATES, "too many application states");
        put_varint(out, state.states.len() as u64);
        for (app, value) in &state.states {
            out.push(app.tag());
            put_version(out, value.version);
            assert!(value.value.len() <= MAX_VALUE_BYTES, "{app:?} value exceeds {MAX_VALUE_BYTES} bytes");
            put_len_prefixed(out, value.value.as_bytes());
        }
    }
}

fn get_entries(r: &mut Reader<'_>) -> DecodeResult<Vec<(Endpoint, EndpointState)>> {
    let count = bounded_count(r, MIN_ENTRY_BYTES, MAX_ENDPOINTS, "endpoint states")?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let endpoint = get_endpoint(r)?;
        let generation = get_i32(r)?;
        let version = get_version(r)?;
        let mut state = EndpointState::new(HeartbeatState { generation, version });
        let apps = bounded_count(r, MIN_APP_STATE_BYTES, MAX_APPLICATION_STATES, "application states")?;
        for _ in 0..apps {
            let tag = r.u8()?;
            let Some(app) = ApplicationState::from_tag(tag) else {
                return Err(error_before(r, 1, format!("unknown application state tag {tag}")));
            };
            let version = get_version(r)?;
            let bytes = r.len_prefixed(MAX_VALUE_BYTES)?;
            let value = utf8(r, bytes, "application state value")?;
            if state.states.insert(app, VersionedValue { value, version }).is_some() {
                return Err(r.error(format!("application state {app:?} appears twice for {endpoint}")));
            }
        }
        entries.push((endpoint, state));
    }
    Ok(entries)
}

fn bounded_count(r: &mut Reader<'_>, min_item_bytes: usize, max: usize, what: &str) -> DecodeResult<usize> {
    let count = r.count(min_item_bytes)?;
    if count > max {
        return Err(r.error(format!("{count} {what} exceed the limit {max}")));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};

    fn ep(s: &str) -> Endpoint {
        Endpoint(s.parse().unwrap())
    }

    fn sample_state(generation: i32) -> EndpointState {
        let mut state = EndpointState::new(HeartbeatState { generation, version: 42 });
        state
            .states
            .insert(ApplicationState::Status, VersionedValue { value: "NORMAL,-42".into(), version: 3 });
        state
            .states
            .insert(ApplicationState::Schema, VersionedValue { value: "é-unicode".into(), version: 40 });
        state
            .states
            .insert(ApplicationState::NativePort, VersionedValue { value: "9042".into(), version: 1 });
        state
    }

    fn samples() -> Vec<GossipMessage> {
        let a = ep("127.0.0.1:7000");
        let b = ep("[2001:db8::7]:7001");
        vec![
            GossipMessage::Syn { cluster_name: "Test Cluster".into(), digests: vec![] },
            GossipMessage::Syn {
                cluster_name: String::new(),
                digests: vec![
                    GossipDigest { endpoint: a, generation: 1_700_000_000, max_version: 77 },
                    GossipDigest { endpoint: b, generation: -1, max_version: i32::MAX },
                ],
            },
            GossipMessage::Ack {
                digests: vec![GossipDigest { endpoint: b, generation: 3, max_version: 0 }],
                states: vec![
                    (a, sample_state(5)),
                    (b, EndpointState::new(HeartbeatState { generation: 0, version: 0 })),
                ],
            },
            GossipMessage::Ack { digests: vec![], states: vec![] },
            GossipMessage::Ack2 { states: vec![(b, sample_state(9))] },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            let bytes = message.to_bytes();
            assert_eq!(GossipMessage::decode(&bytes).unwrap(), message);
        }
    }

    #[test]
    fn the_documented_example_is_the_encoding() {
        // A fixture: changing it is a wire-format change (bump the messaging version).
        let syn = GossipMessage::Syn {
            cluster_name: "c".into(),
            digests: vec![GossipDigest { endpoint: ep("127.0.0.1:7000"), generation: 1, max_version: 5 }],
        };
        let expected = [0x01, 0x01, 0x63, 0x01, 0x04, 0x7f, 0, 0, 1, 0x58, 0x1b, 1, 0, 0, 0, 5];
        assert_eq!(syn.to_bytes(), expected);
        let ack2 = GossipMessage::Ack2 { states: vec![(ep("10.0.0.2:7000"), sample_state(2))] };
        let expected_ack2 = [
            "03 01",                         // Ack2, one entry
            "04 0a000002 581b",              // 10.0.0.2:7000
            "02000000 2a 03",                // generation 2, heartbeat 42, 3 states
            "00 03 0a 4e4f524d414c2c2d3432", // Status v3 "NORMAL,-42"
            "02 28 0a c3a92d756e69636f6465", // Schema v40 "é-unicode"
            "20 01 04 39303432",             // NativePort v1 "9042"
        ]
        .concat()
        .replace(' ', "");
        assert_eq!(hex(&ack2.to_bytes()), expected_ack2);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn trailing_bytes_unknown_tags_and_duplicates_are_rejected() {
        let mut bytes = samples()[1].to_bytes();
        bytes.push(0);
        assert!(GossipMessage::decode(&bytes).unwrap_err().reason.contains("trailing"));
        assert!(GossipMessage::decode(&[9]).is_err());
        assert!(GossipMessage::decode(&[]).is_err());
        // An Ack2 with one IPv4 entry whose state list names STATUS twice.
        let mut dup = vec![TAG_ACK2, 1, FAMILY_V4, 127, 0, 0, 1, 0x58, 0x1b, 1, 0, 0, 0, 1, 2];
        dup.extend_from_slice(&[0, 1, 1, b'x', 0, 2, 1, b'y']);
        assert!(GossipMessage::decode(&dup).unwrap_err().reason.contains("twice"));
        // An unknown application state tag.
        let mut unknown = vec![TAG_ACK2, 1, FAMILY_V4, 127, 0, 0, 1, 0x58, 0x1b, 1, 0, 0, 0, 1, 1];
        unknown.extend_from_slice(&[6, 1, 1, b'x']);
        assert!(GossipMessage::decode(&unknown).unwrap_err().reason.contains("unknown application"));
        // A version beyond i32::MAX.
        let mut big = vec![TAG_SYN, 0, 1, FAMILY_V4, 127, 0, 0, 1, 0x58, 0x1b, 1, 0, 0, 0];
        put_varint(&mut big, 1 << 31);
        assert!(GossipMessage::decode(&big).is_err());
    }

    #[test]
    fn counts_and_lengths_beyond_the_limits_are_rejected_before_allocating() {
        // 4097 digests claimed, with enough bytes present for each.
        let mut syn = vec![TAG_SYN, 0];
        put_varint(&mut syn, (MAX_ENDPOINTS + 1) as u64);
        syn.resize(syn.len() + (MAX_ENDPOINTS + 1) * MIN_DIGEST_BYTES, 0);
        assert!(GossipMessage::decode(&syn).unwrap_err().reason.contains("limit"));
        // A huge count with few bytes.
        let mut huge = vec![TAG_ACK2];
        put_varint(&mut huge, u64::MAX);
        assert!(GossipMessage::decode(&huge).is_err());
        // A value one byte too long.
        let mut long = vec![TAG_ACK2, 1, FAMILY_V4, 127, 0, 0, 1, 0x58, 0x1b, 1, 0, 0, 0, 1, 1, 0, 1];
        put_varint(&mut long, (MAX_VALUE_BYTES + 1) as u64);
        long.resize(long.len() + MAX_VALUE_BYTES + 1, b'a');
        assert!(GossipMessage::decode(&long).is_err());
        // 65 application states.
        let mut many = vec![TAG_ACK2, 1, FAMILY_V4, 127, 0, 0, 1, 0x58, 0x1b, 1, 0, 0, 0, 1];
        put_varint(&mut many, (MAX_APPLICATION_STATES + 1) as u64);
        many.resize(many.len() + (MAX_APPLICATION_STATES + 1) * MIN_APP_STATE_BYTES, 0);
        assert!(GossipMessage::decode(&many).unwrap_err().reason.contains("limit"));
        // A cluster name over the limit.
        let mut name = vec![TAG_SYN];
        put_varint(&mut name, (MAX_CLUSTER_NAME_BYTES + 1) as u64);
        name.resize(name.len() + MAX_CLUSTER_NAME_BYTES + 1, b'c');
        name.push(0);
        assert!(GossipMessage::decode(&name).is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for message in samples() {
            let bytes = message.to_bytes();
            for len in 0..bytes.len() {
                assert!(GossipMessage::decode(&bytes[..len]).is_err(), "{message:?} cut at {len}");
            }
        }
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let seed = std::env::var("SIBYL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_u64);
        eprintln!("seed {seed}");
        let mut rng = StdRng::seed_from_u64(seed);
        let encoded: Vec<Vec<u8>> = samples().iter().map(GossipMessage::to_bytes).collect();
        for _ in 0..20_000 {
            let bytes = if rng.random_bool(0.5) {
                let mut bytes = vec![0u8; rng.random_range(0..64)];
                rng.fill_bytes(&mut bytes);
                bytes
            } else {
                let mut bytes = encoded[rng.random_range(0..encoded.len())].clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] = rng.random();
                }
                bytes
            };
            if let Ok(message) = GossipMessage::decode(&bytes) {
                // Whatever decodes re-encodes to a message that decodes the same.
                assert_eq!(GossipMessage::decode(&message.to_bytes()).unwrap(), message);
            }
        }
    }
}
