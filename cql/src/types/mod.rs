//! The CQL type system and value codecs.
//!
//! - [`CqlType`]: parsing of CQL type text (`CqlType::parse`), Cassandra's canonical spelling
//!   (`Display`, as `system_schema.columns.type`), validity rules.
//! - [`Value`]: typed, owned values; nulls are `Option<Value>` outside.
//! - [`encode`] / [`decode`]: Cassandra's binary serialization (native protocol v4 `[bytes]`,
//!   what Cassandra stores), validated as strictly as Cassandra's validators.
//! - [`compare`]: Cassandra's ordering for every type.
//! - [`to_comparable`] / [`from_comparable`]: a byte-comparable encoding whose unsigned
//!   lexicographic order equals [`compare`]; persisted in clustering keys and collection cell
//!   paths (format: `docs/format/comparable-values.md`).
//! - Text forms: [`parse_timestamp`], [`parse_date`], [`parse_time`], [`parse_duration`],
//!   [`parse_inet`], [`parse_uuid`], [`from_string_literal`], [`to_cql_literal`] (DESCRIBE),
//!   [`to_display`] (cqlsh's format).
//! - Functions: [`TimeuuidGenerator`], [`min_timeuuid`], [`max_timeuuid`],
//!   [`timeuuid_to_unix_ms`], [`to_date`], [`date_to_timestamp`], [`blob_as`], [`as_blob`].
//!
//! Everything that reads bytes or text is total: untrusted input yields a [`TypeError`], never
//! a panic; lengths and counts are checked against the remaining input before allocating, and
//! nesting is bounded by [`MAX_DEPTH`].

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod codec;
mod comparable;
mod compare;
mod cql_type;
mod error;
mod functions;
mod temporal;
mod text;
mod value;

#[cfg(test)]
mod tests;

pub use codec::{decode, encode, encode_into};
pub use comparable::{
    from_comparable, from_comparable_split, to_comparable, to_comparable_into, to_comparable_split,
};
pub use compare::compare;
pub use cql_type::{CqlType, MAX_DEPTH};
pub use error::TypeError;
pub use functions::{
    as_blob, blob_as, date_to_timestamp, max_timeuuid, min_timeuuid, timeuuid_to_unix_ms, to_date,
    TimeuuidGenerator,
};
pub use text::{
    from_string_literal, parse_date, parse_duration, parse_inet, parse_time, parse_timestamp,
    parse_timestamp_at, parse_timeuuid, parse_uuid, to_cql_literal, to_display,
};
pub use value::Value;
