//! Server-pushed events (spec §4.2.6) and the schema change description shared with RESULT
//! Schema_change (§4.2.5.5).

use std::fmt;
use std::net::SocketAddr;

use bytes::BytesMut;

use crate::protocol::codec::{self, Reader};
use crate::protocol::error::{ProtocolError, Result};

/// The event types a connection can REGISTER for. Discriminants are the bits of the
/// per-connection registration mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventType {
    TopologyChange = 0x01,
    StatusChange = 0x02,
    SchemaChange = 0x04,
}

impl EventType {
    /// All event types.
    pub const ALL: [EventType; 3] =
        [EventType::TopologyChange, EventType::StatusChange, EventType::SchemaChange];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::TopologyChange => "TOPOLOGY_CHANGE",
            EventType::StatusChange => "STATUS_CHANGE",
            EventType::SchemaChange => "SCHEMA_CHANGE",
        }
    }

    /// Parses a wire name (exact, upper case as in the spec).
    pub fn from_name(name: &str) -> Result<Self> {
        EventType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| ProtocolError::UnknownName { what: "event type", value: name.to_owned() })
    }

    /// The bit in a registration mask.
    pub const fn mask(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// TOPOLOGY_CHANGE kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopologyChangeType {
    NewNode,
    RemovedNode,
}

impl TopologyChangeType {
    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            TopologyChangeType::NewNode => "NEW_NODE",
            TopologyChangeType::RemovedNode => "REMOVED_NODE",
        }
    }

    fn from_name(name: &str) -> Result<Self> {
        match name {
            "NEW_NODE" => Ok(TopologyChangeType::NewNode),
            "REMOVED_NODE" => Ok(TopologyChangeType::RemovedNode),
            _ => Err(ProtocolError::UnknownName { what: "topology change type", value: name.to_owned() }),
        }
    }
}

/// STATUS_CHANGE kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusChangeType {
    Up,
    Down,
}

impl StatusChangeType {
    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            StatusChangeType::Up => "UP",
            StatusChangeType::Down => "DOWN",
        }
    }

    fn from_name(name: &str) -> Result<Self> {
        match name {
            "UP" => Ok(StatusChangeType::Up),
            "DOWN" => Ok(StatusChangeType::Down),
            _ => Err(ProtocolError::UnknownName { what: "status change type", value: name.to_owned() }),
        }
    }
}

/// `<change_type>` of a schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaChangeType {
    Created,
    Updated,
    Dropped,
}

impl SchemaChangeType {
    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            SchemaChangeType::Created => "CREATED",
            SchemaChangeType::Updated => "UPDATED",
            SchemaChangeType::Dropped => "DROPPED",
        }
    }

    fn from_name(name: &str) -> Result<Self> {
        match name {
            "CREATED" => Ok(SchemaChangeType::Created),
            "UPDATED" => Ok(SchemaChangeType::Updated),
            "DROPPED" => Ok(SchemaChangeType::Dropped),
            _ => Err(ProtocolError::UnknownName { what: "schema change type", value: name.to_owned() }),
        }
    }
}

/// `<target><options>` of a schema change: the target name decides which options follow, so
/// both live in one enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaChangeTarget {
    /// "KEYSPACE" + keyspace.
    Keyspace { keyspace: String },
    /// "TABLE" + keyspace + table.
    Table { keyspace: String, table: String },
    /// "TYPE" + keyspace + type name.
    Type { keyspace: String, name: String },
    /// "FUNCTION" + keyspace + name + argument types (CQL type text).
    Function { keyspace: String, name: String, arg_types: Vec<String> },
    /// "AGGREGATE" + keyspace + name + argument types (CQL type text).
    Aggregate { keyspace: String, name: String, arg_types: Vec<String> },
}

impl SchemaChangeTarget {
    /// The `<target>` string.
    pub const fn name(&self) -> &'static str {
        match self {
            SchemaChangeTarget::Keyspace { .. } => "KEYSPACE",
            SchemaChangeTarget::Table { .. } => "TABLE",
            SchemaChangeTarget::Type { .. } => "TYPE",
            SchemaChangeTarget::Function { .. } => "FUNCTION",
            SchemaChangeTarget::Aggregate { .. } => "AGGREGATE",
        }
    }
}

/// A schema change: body of a SCHEMA_CHANGE event after the event type, and of a RESULT
/// Schema_change after the kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaChange {
    pub change_type: SchemaChangeType,
    pub target: SchemaChangeTarget,
}

impl SchemaChange {
    /// Writes `<change_type><target><options>`.
    pub fn encode(&self, out: &mut BytesMut) -> Result<()> {
        codec::put_string(out, self.change_type.name(), "schema change type")?;
        codec::put_string(out, self.target.name(), "schema change target")?;
        match &self.target {
            SchemaChangeTarget::Keyspace { keyspace } => codec::put_string(out, keyspace, "keyspace")?,
            SchemaChangeTarget::Table { keyspace, table } => {
                codec::put_string(out, keyspace, "keyspace")?;
                codec::put_string(out, table, "table")?;
            }
            SchemaChangeTarget::Type { keyspace, name } => {
                codec::put_string(out, keyspace, "keyspace")?;
                codec::put_string(out, name, "type name")?;
            }
            SchemaChangeTarget::Function { keyspace, name, arg_types }
            | SchemaChangeTarget::Aggregate { keyspace, name, arg_types } => {
                codec::put_string(out, keyspace, "keyspace")?;
                codec::put_string(out, name, "function name")?;
                codec::put_string_list(out, arg_types, "argument types")?;
            }
        }
        Ok(())
    }

    /// Reads `<change_type><target><options>`.
    pub fn decode(r: &mut Reader) -> Result<Self> {
        let change_type = SchemaChangeType::from_name(&r.read_string("schema change type")?)?;
        let target = r.read_string("schema change target")?;
        let target = match target.as_str() {
            "KEYSPACE" => SchemaChangeTarget::Keyspace { keyspace: r.read_string("keyspace")? },
            "TABLE" => SchemaChangeTarget::Table {
                keyspace: r.read_string("keyspace")?,
                table: r.read_string("table")?,
            },
            "TYPE" => SchemaChangeTarget::Type {
                keyspace: r.read_string("keyspace")?,
                name: r.read_string("type name")?,
            },
            "FUNCTION" => SchemaChangeTarget::Function {
                keyspace: r.read_string("keyspace")?,
                name: r.read_string("function name")?,
                arg_types: r.read_string_list("argument types")?,
            },
            "AGGREGATE" => SchemaChangeTarget::Aggregate {
                keyspace: r.read_string("keyspace")?,
                name: r.read_string("aggregate name")?,
                arg_types: r.read_string_list("argument types")?,
            },
            _ => return Err(ProtocolError::UnknownName { what: "schema change target", value: target }),
        };
        Ok(SchemaChange { change_type, target })
    }
}

/// An EVENT message body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    TopologyChange { change: TopologyChangeType, address: SocketAddr },
    StatusChange { change: StatusChangeType, address: SocketAddr },
    SchemaChange(SchemaChange),
}

impl Event {
    /// The type a connection must have registered for to receive this event.
    pub fn event_type(&self) -> EventType {
        match self {
            Event::TopologyChange { .. } => EventType::TopologyChange,
            Event::StatusChange { .. } => EventType::StatusChange,
            Event::SchemaChange(_) => EventType::SchemaChange,
        }
    }

    /// Writes the EVENT body.
    pub fn encode(&self, out: &mut BytesMut) -> Result<()> {
        codec::put_string(out, self.event_type().name(), "event type")?;
        match self {
            Event::TopologyChange { change, address } => {
                codec::put_string(out, change.name(), "topology change type")?;
                codec::put_inet(out, address);
            }
            Event::StatusChange { change, address } => {
                codec::put_string(out, change.name(), "status change type")?;
                codec::put_inet(out, address);
            }
            Event::SchemaChange(change) => change.encode(out)?,
        }
        Ok(())
    }

    /// Reads an EVENT body.
    pub fn decode(r: &mut Reader) -> Result<Self> {
        Ok(match EventType::from_name(&r.read_string("event type")?)? {
            EventType::TopologyChange => Event::TopologyChange {
                change: TopologyChangeType::from_name(&r.read_string("topology change type")?)?,
                address: r.read_inet("node address")?,
            },
            EventType::StatusChange => Event::StatusChange {
                change: StatusChangeType::from_name(&r.read_string("status change type")?)?,
                address: r.read_inet("node address")?,
            },
            EventType::SchemaChange => Event::SchemaChange(SchemaChange::decode(r)?),
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_events() -> Vec<Event> {
        let addr: SocketAddr = "127.0.0.2:9042".parse().unwrap();
        let mut events = vec![
            Event::TopologyChange { change: TopologyChangeType::NewNode, address: addr },
            Event::TopologyChange {
                change: TopologyChangeType::RemovedNode,
                address: "[::1]:9042".parse().unwrap(),
            },
            Event::StatusChange { change: StatusChangeType::Up, address: addr },
            Event::StatusChange { change: StatusChangeType::Down, address: addr },
        ];
        events.extend(sample_schema_changes().into_iter().map(Event::SchemaChange));
        events
    }

    pub(crate) fn sample_schema_changes() -> Vec<SchemaChange> {
        vec![
            SchemaChange {
                change_type: SchemaChangeType::Created,
                target: SchemaChangeTarget::Keyspace { keyspace: "ks".into() },
            },
            SchemaChange {
                change_type: SchemaChangeType::Updated,
                target: SchemaChangeTarget::Table { keyspace: "ks".into(), table: "t".into() },
            },
            SchemaChange {
                change_type: SchemaChangeType::Dropped,
                target: SchemaChangeTarget::Type { keyspace: "ks".into(), name: "addr".into() },
            },
            SchemaChange {
                change_type: SchemaChangeType::Created,
                target: SchemaChangeTarget::Function {
                    keyspace: "ks".into(),
                    name: "f".into(),
                    arg_types: vec!["int".into(), "text".into()],
                },
            },
            SchemaChange {
                change_type: SchemaChangeType::Dropped,
                target: SchemaChangeTarget::Aggregate {
                    keyspace: "ks".into(),
                    name: "agg".into(),
                    arg_types: vec![],
                },
            },
        ]
    }

    #[test]
    fn events_round_trip() {
        for event in sample_events() {
            let mut out = BytesMut::new();
            event.encode(&mut out).unwrap();
            let mut r = Reader::new(out.freeze());
            assert_eq!(Event::decode(&mut r).unwrap(), event);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn status_change_bytes_match_the_spec() {
        let event =
            Event::StatusChange { change: StatusChangeType::Up, address: "10.0.0.1:9042".parse().unwrap() };
        let mut out = BytesMut::new();
        event.encode(&mut out).unwrap();
        let mut expected = vec![0, 13];
        expected.extend_from_slice(b"STATUS_CHANGE");
        expected.extend_from_slice(&[0, 2, b'U', b'P', 4, 10, 0, 0, 1, 0, 0, 0x23, 0x52]);
        assert_eq!(&out[..], &expected[..]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(EventType::from_name("schema_change").is_err());
        let mut out = BytesMut::new();
        codec::put_string(&mut out, "CREATED", "t").unwrap();
        codec::put_string(&mut out, "INDEX", "t").unwrap();
        assert!(matches!(
            SchemaChange::decode(&mut Reader::new(out.freeze())),
            Err(ProtocolError::UnknownName { what: "schema change target", .. })
        ));
    }
}
