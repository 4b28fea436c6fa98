//! Consistency levels as carried by `[consistency]` (spec §3).

use std::fmt;
use std::str::FromStr;

use crate::protocol::error::{ProtocolError, Result};

/// A consistency level. Discriminants are the wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum Consistency {
    Any = 0x0000,
    One = 0x0001,
    Two = 0x0002,
    Three = 0x0003,
    Quorum = 0x0004,
    All = 0x0005,
    LocalQuorum = 0x0006,
    EachQuorum = 0x0007,
    Serial = 0x0008,
    LocalSerial = 0x0009,
    LocalOne = 0x000A,
}

impl Consistency {
    /// Every level, in code order.
    pub const ALL_LEVELS: [Consistency; 11] = [
        Consistency::Any,
        Consistency::One,
        Consistency::Two,
        Consistency::Three,
        Consistency::Quorum,
        Consistency::All,
        Consistency::LocalQuorum,
        Consistency::EachQuorum,
        Consistency::Serial,
        Consistency::LocalSerial,
        Consistency::LocalOne,
    ];

    /// The wire code.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// Decodes a wire code.
    pub fn from_code(code: u16) -> Result<Self> {
        Ok(match code {
            0x0000 => Consistency::Any,
            0x0001 => Consistency::One,
            0x0002 => Consistency::Two,
            0x0003 => Consistency::Three,
            0x0004 => Consistency::Quorum,
            0x0005 => Consistency::All,
            0x0006 => Consistency::LocalQuorum,
            0x0007 => Consistency::EachQuorum,
            0x0008 => Consistency::Serial,
            0x0009 => Consistency::LocalSerial,
            0x000A => Consistency::LocalOne,
            code => return Err(ProtocolError::UnknownConsistency { code }),
        })
    }

    /// Cassandra's name (`LOCAL_QUORUM`).
    pub const fn name(self) -> &'static str {
        match self {
            Consistency::Any => "ANY",
            Consistency::One => "ONE",
            Consistency::Two => "TWO",
            Consistency::Three => "THREE",
            Consistency::Quorum => "QUORUM",
            Consistency::All => "ALL",
            Consistency::LocalQuorum => "LOCAL_QUORUM",
            Consistency::EachQuorum => "EACH_QUORUM",
            Consistency::Serial => "SERIAL",
            Consistency::LocalSerial => "LOCAL_SERIAL",
            Consistency::LocalOne => "LOCAL_ONE",
        }
    }

    /// SERIAL or LOCAL_SERIAL.
    pub const fn is_serial(self) -> bool {
        matches!(self, Consistency::Serial | Consistency::LocalSerial)
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Consistency {
    type Err = ProtocolError;

    /// Case-insensitive Cassandra name (`local_quorum`, `LOCAL_QUORUM`).
    fn from_str(s: &str) -> Result<Self> {
        Consistency::ALL_LEVELS
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ProtocolError::UnknownName { what: "consistency level", value: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_spec() {
        assert_eq!(Consistency::Any.code(), 0x0000);
        assert_eq!(Consistency::Quorum.code(), 0x0004);
        assert_eq!(Consistency::LocalQuorum.code(), 0x0006);
        assert_eq!(Consistency::Serial.code(), 0x0008);
        assert_eq!(Consistency::LocalOne.code(), 0x000A);
        for (i, c) in Consistency::ALL_LEVELS.into_iter().enumerate() {
            assert_eq!(usize::from(c.code()), i);
            assert_eq!(Consistency::from_code(c.code()).unwrap(), c);
            assert_eq!(c.to_string().parse::<Consistency>().unwrap(), c);
        }
        assert_eq!(
            Consistency::from_code(0x000B).unwrap_err(),
            ProtocolError::UnknownConsistency { code: 0x0B }
        );
        assert_eq!(Consistency::LocalOne.to_string(), "LOCAL_ONE");
        assert_eq!("each_quorum".parse::<Consistency>().unwrap(), Consistency::EachQuorum);
        assert!("FOO".parse::<Consistency>().is_err());
    }
}
