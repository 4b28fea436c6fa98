//! Request decoding from byte-exact frames written by hand from the spec, round trips, and the
//! request-level error cases.
#![allow(clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};

use crate::protocol::codec::{BindValue, BytesMap, StringMap};
use crate::protocol::compression::Compression;
use crate::protocol::consistency::Consistency;
use crate::protocol::error::ProtocolError;
use crate::protocol::event::EventType;
use crate::protocol::frame::{Direction, Frame, FrameHeader, Opcode, DEFAULT_MAX_FRAME_BYTES};
use crate::protocol::limits::Limits;
use crate::protocol::request::{
    Batch, BatchKind, BatchQuery, BatchStatement, QueryParameters, Request, RequestEnvelope, Values,
};

// ---- hand encoders, deliberately independent of crate::protocol::codec ----

/// `[string]`
pub(crate) fn s(v: &str) -> Vec<u8> {
    let mut out = (v.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(v.as_bytes());
    out
}

/// `[long string]`
pub(crate) fn ls(v: &str) -> Vec<u8> {
    let mut out = (v.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(v.as_bytes());
    out
}

/// `[value]` / `[bytes]` with content
pub(crate) fn val(v: &[u8]) -> Vec<u8> {
    let mut out = (v.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(v);
    out
}

/// A request frame: header (version 0x04) + body.
pub(crate) fn frame(flags: u8, stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.push(opcode);
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub(crate) fn decode(bytes: &[u8]) -> Result<RequestEnvelope, ProtocolError> {
    decode_with(bytes, &Limits::default())
}

fn decode_with(bytes: &[u8], limits: &Limits) -> Result<RequestEnvelope, ProtocolError> {
    let mut buf = BytesMut::from(bytes);
    let frame = Frame::decode(&mut buf, Direction::Request, limits.max_frame_bytes)?
        .expect("test frames are complete");
    assert!(buf.is_empty(), "test frame has bytes after it");
    RequestEnvelope::decode(&frame.header, frame.body, limits)
}

fn params(r: &RequestEnvelope) -> &QueryParameters {
    match &r.request {
        Request::Query { params, .. } | Request::Execute { params, .. } => params,
        other => panic!("not a QUERY/EXECUTE: {other:?}"),
    }
}

#[test]
fn python_driver_startup_frame() {
    // cassandra-driver 3.x: STARTUP {CQL_VERSION, DRIVER_NAME, DRIVER_VERSION} on stream 0
    let body = cat(&[
        &[0x00, 0x03],
        &s("CQL_VERSION"),
        &s("3.4.5"),
        &s("DRIVER_NAME"),
        &s("DataStax Python Driver"),
        &s("DRIVER_VERSION"),
        &s("3.30.1"),
    ]);
    let bytes = frame(0x00, 0, 0x01, &body);
    assert_eq!(&bytes[..9], &[0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, body.len() as u8]);
    let env = decode(&bytes).unwrap();
    assert_eq!(env.stream, 0);
    let Request::Startup(options) = &env.request else { panic!("{env:?}") };
    assert_eq!(options.get("CQL_VERSION").map(String::as_str), Some("3.4.5"));
    assert_eq!(options.get("DRIVER_NAME").map(String::as_str), Some("DataStax Python Driver"));
    assert_eq!(options.len(), 3);
    // and our encoder produces the same bytes (keys happen to be in sorted order here)
    assert_eq!(&env.encode(None).unwrap()[..], &bytes[..]);
}

#[test]
fn options_has_an_empty_body() {
    let env = decode(&[0x04, 0x00, 0x00, 0x05, 0x05, 0, 0, 0, 0]).unwrap();
    assert_eq!(env, RequestEnvelope::new(5, Request::Options));
}

#[test]
fn python_driver_query_with_flags_0x24() {
    // LOCAL_ONE, flags 0x24 = page size (5000) + default timestamp
    let q = "SELECT * FROM system.local WHERE key='local'";
    let body =
        cat(&[&ls(q), &[0x00, 0x0A, 0x24], &5000i32.to_be_bytes(), &1_700_000_000_123_456i64.to_be_bytes()]);
    let env = decode(&frame(0, 3, 0x07, &body)).unwrap();
    let Request::Query { query, params } = &env.request else { panic!() };
    assert_eq!(query, q);
    assert_eq!(params.consistency, Consistency::LocalOne);
    assert_eq!(params.values, Values::None);
    assert!(!params.skip_metadata);
    assert_eq!(params.page_size, Some(5000));
    assert_eq!(params.paging_state, None);
    assert_eq!(params.serial_consistency, None);
    assert_eq!(params.timestamp, Some(1_700_000_000_123_456));
    assert_eq!(&env.encode(None).unwrap()[9..], &body[..]);
}

#[test]
fn python_driver_execute_with_flags_0x25() {
    // values (an int and a null) + page size + timestamp
    let id: [u8; 16] = *b"0123456789abcdef";
    let body = cat(&[
        &[0x00, 0x10],
        &id,
        &[0x00, 0x01, 0x25],
        &[0x00, 0x02],
        &val(&[0, 0, 0, 42]),
        &(-1i32).to_be_bytes(),
        &5000i32.to_be_bytes(),
        &42i64.to_be_bytes(),
    ]);
    let env = decode(&frame(0, 9, 0x0A, &body)).unwrap();
    let Request::Execute { id: got, params } = &env.request else { panic!() };
    assert_eq!(&got[..], &id[..]);
    assert_eq!(params.consistency, Consistency::One);
    assert_eq!(
        params.values,
        Values::Positional(vec![BindValue::bytes(Bytes::from_static(&[0, 0, 0, 42])), BindValue::Null])
    );
    assert_eq!(params.page_size, Some(5000));
    assert_eq!(params.timestamp, Some(42));
    assert_eq!(&env.encode(None).unwrap()[9..], &body[..]);
}

#[test]
fn named_values_with_flag_0x41() {
    let body = cat(&[
        &ls("INSERT INTO t (a, b) VALUES (:a, :b)"),
        &[0x00, 0x04, 0x41],
        &[0x00, 0x02],
        &s("a"),
        &val(b"xyz"),
        &s("b"),
        &(-2i32).to_be_bytes(),
    ]);
    let env = decode(&frame(0, 1, 0x07, &body)).unwrap();
    assert_eq!(
        params(&env).values,
        Values::Named(vec![("a".into(), BindValue::bytes(&b"xyz"[..])), ("b".into(), BindValue::Unset)])
    );
    assert_eq!(params(&env).consistency, Consistency::Quorum);
    assert_eq!(&env.encode(None).unwrap()[9..], &body[..]);
}

#[test]
fn names_flag_without_values_flag_is_ignored() {
    let body = cat(&[&ls("SELECT 1"), &[0x00, 0x01, 0x40]]);
    let env = decode(&frame(0, 1, 0x07, &body)).unwrap();
    assert_eq!(params(&env).values, Values::None);
}

#[test]
fn unset_null_and_empty_values_are_distinct() {
    let body = cat(&[
        &ls("INSERT INTO t (a, b, c) VALUES (?, ?, ?)"),
        &[0x00, 0x01, 0x01],
        &[0x00, 0x03],
        &(-2i32).to_be_bytes(),
        &(-1i32).to_be_bytes(),
        &0i32.to_be_bytes(),
    ]);
    let env = decode(&frame(0, 1, 0x07, &body)).unwrap();
    assert_eq!(
        params(&env).values,
        Values::Positional(vec![BindValue::Unset, BindValue::Null, BindValue::bytes(Bytes::new())])
    );
}

#[test]
fn paging_state_skip_metadata_and_serial_consistency() {
    // cqlsh: page size 100, ONE, serial consistency; plus a paging state and skip_metadata
    let body = cat(&[
        &ls("SELECT * FROM ks.t"),
        &[0x00, 0x01, 0x1E],
        &100i32.to_be_bytes(),
        &val(&[0xDE, 0xAD, 0xBE, 0xEF]),
        &[0x00, 0x09],
    ]);
    let env = decode(&frame(0, 2, 0x07, &body)).unwrap();
    let p = params(&env);
    assert!(p.skip_metadata);
    assert_eq!(p.page_size, Some(100));
    assert_eq!(p.paging_state.as_deref(), Some(&[0xDE, 0xAD, 0xBE, 0xEF][..]));
    assert_eq!(p.serial_consistency, Some(Consistency::LocalSerial));
    assert_eq!(p.timestamp, None);
    assert_eq!(&env.encode(None).unwrap()[9..], &body[..]);
}

#[test]
fn null_paging_state_is_none() {
    let body = cat(&[&ls("SELECT 1"), &[0x00, 0x01, 0x08], &(-1i32).to_be_bytes()]);
    assert_eq!(params(&decode(&frame(0, 2, 0x07, &body)).unwrap()).paging_state, None);
}

#[test]
fn batch_with_query_and_prepared_statements() {
    let body = cat(&[
        &[0x01],       // unlogged
        &[0x00, 0x02], // two statements
        &[0x00],
        &ls("INSERT INTO t (k) VALUES (?)"),
        &[0x00, 0x01],
        &val(&[1]),
        &[0x01],
        &[0x00, 0x02, 0xAB, 0xCD],
        &[0x00, 0x00],
        &[0x00, 0x04], // QUORUM
        &[0x30],       // serial consistency + timestamp
        &[0x00, 0x08],
        &7i64.to_be_bytes(),
    ]);
    let env = decode(&frame(0, 4, 0x0D, &body)).unwrap();
    let expected = Batch {
        kind: BatchKind::Unlogged,
        statements: vec![
            BatchStatement {
                query: BatchQuery::Query("INSERT INTO t (k) VALUES (?)".into()),
                values: Values::Positional(vec![BindValue::bytes(&[1u8][..])]),
            },
            BatchStatement {
                query: BatchQuery::Prepared(Bytes::from_static(&[0xAB, 0xCD])),
                values: Values::Positional(vec![]),
            },
        ],
        consistency: Consistency::Quorum,
        serial_consistency: Some(Consistency::Serial),
        timestamp: Some(7),
    };
    assert_eq!(env.request, Request::Batch(expected));
    assert_eq!(&env.encode(None).unwrap()[9..], &body[..]);
}

#[test]
fn empty_batch_is_legal() {
    let body = [0x00, 0x00, 0x00, 0x00, 0x01, 0x00];
    let env = decode(&frame(0, 4, 0x0D, &body)).unwrap();
    let Request::Batch(b) = env.request else { panic!() };
    assert_eq!(b.kind, BatchKind::Logged);
    assert!(b.statements.is_empty());
    assert_eq!(b.consistency, Consistency::One);
}

#[test]
fn batch_rejects_low_flag_bits_named_values_and_bad_kinds() {
    let bad_flags = [0x00, 0x00, 0x00, 0x00, 0x01, 0x01];
    let err = decode(&frame(0, 4, 0x0D, &bad_flags)).unwrap_err();
    assert!(err.to_string().contains("4 low bits"), "{err}");
    let names = [0x00, 0x00, 0x00, 0x00, 0x01, 0x40];
    let err = decode(&frame(0, 4, 0x0D, &names)).unwrap_err();
    assert!(err.to_string().contains("CASSANDRA-10246"), "{err}");
    let bad_type = [0x03, 0x00, 0x00, 0x00, 0x01, 0x00];
    assert_eq!(
        decode(&frame(0, 4, 0x0D, &bad_type)).unwrap_err(),
        ProtocolError::UnknownCode { what: "batch type", value: 3 }
    );
    let bad_kind = cat(&[&[0x00, 0x00, 0x01, 0x02], &ls("x"), &[0x00, 0x00, 0x00, 0x01, 0x00]]);
    assert_eq!(
        decode(&frame(0, 4, 0x0D, &bad_kind)).unwrap_err(),
        ProtocolError::UnknownCode { what: "batch statement kind", value: 2 }
    );
}

#[test]
fn register_prepare_and_auth_response() {
    let body = cat(&[&[0x00, 0x03], &s("TOPOLOGY_CHANGE"), &s("STATUS_CHANGE"), &s("SCHEMA_CHANGE")]);
    let env = decode(&frame(0, 1, 0x0B, &body)).unwrap();
    assert_eq!(
        env.request,
        Request::Register {
            events: vec![EventType::TopologyChange, EventType::StatusChange, EventType::SchemaChange]
        }
    );
    let bad = cat(&[&[0x00, 0x01], &s("KEYSPACE_CHANGE")]);
    assert!(matches!(
        decode(&frame(0, 1, 0x0B, &bad)),
        Err(ProtocolError::UnknownName { what: "event type", .. })
    ));

    let env = decode(&frame(0, 1, 0x09, &ls("SELECT * FROM t WHERE k = ?"))).unwrap();
    assert_eq!(env.request, Request::Prepare { query: "SELECT * FROM t WHERE k = ?".into() });

    let env = decode(&frame(0, 1, 0x0F, &val(b"\0cassandra\0cassandra"))).unwrap();
    assert_eq!(
        env.request,
        Request::AuthResponse { token: Some(Bytes::from_static(b"\0cassandra\0cassandra")) }
    );
    let env = decode(&frame(0, 1, 0x0F, &(-1i32).to_be_bytes())).unwrap();
    assert_eq!(env.request, Request::AuthResponse { token: None });
}

#[test]
fn custom_payload_precedes_the_body_and_tracing_has_no_id_in_requests() {
    let body = cat(&[&[0x00, 0x01], &s("key"), &val(b"payload"), &ls("SELECT 1"), &[0x00, 0x01, 0x00]]);
    let env = decode(&frame(0x06, 11, 0x07, &body)).unwrap();
    assert!(env.tracing);
    let mut expected = BytesMap::new();
    expected.insert("key".into(), Some(Bytes::from_static(b"payload")));
    assert_eq!(env.custom_payload, Some(expected));
    let Request::Query { query, .. } = &env.request else { panic!() };
    assert_eq!(query, "SELECT 1");
    assert_eq!(&env.encode(None).unwrap()[..], &frame(0x06, 11, 0x07, &body)[..]);
}

#[test]
fn trailing_garbage_inside_a_body_is_an_error() {
    let body = cat(&[&ls("SELECT 1"), &[0x00, 0x01, 0x00], &[0xFF]]);
    assert_eq!(
        decode(&frame(0, 1, 0x07, &body)).unwrap_err(),
        ProtocolError::TrailingBytes { opcode: Opcode::Query, remaining: 1 }
    );
    assert!(matches!(decode(&frame(0, 1, 0x05, &[0])), Err(ProtocolError::TrailingBytes { .. })));
}

#[test]
fn body_shorter_than_its_elements_is_an_error() {
    // the [long string] says 100 bytes, 3 follow
    let body = cat(&[&100i32.to_be_bytes(), b"SEL"]);
    let err = decode(&frame(0, 1, 0x07, &body)).unwrap_err();
    assert_eq!(err, ProtocolError::Truncated { what: "query string", needed: 100, remaining: 3 });
}

#[test]
fn unknown_consistency_and_invalid_values_are_errors() {
    let body = cat(&[&ls("SELECT 1"), &[0x00, 0x0B, 0x00]]);
    assert_eq!(
        decode(&frame(0, 1, 0x07, &body)).unwrap_err(),
        ProtocolError::UnknownConsistency { code: 0x0B }
    );
    let body = cat(&[&ls("SELECT 1"), &[0x00, 0x01, 0x01, 0x00, 0x01], &(-3i32).to_be_bytes()]);
    assert!(matches!(
        decode(&frame(0, 1, 0x07, &body)),
        Err(ProtocolError::InvalidLength { what: "bind value", length: -3 })
    ));
}

#[test]
fn timestamp_sentinel_is_refused_but_negative_timestamps_are_accepted() {
    let body = cat(&[&ls("SELECT 1"), &[0x00, 0x01, 0x20], &i64::MIN.to_be_bytes()]);
    assert!(matches!(decode(&frame(0, 1, 0x07, &body)), Err(ProtocolError::Invalid { .. })));
    let body = cat(&[&ls("SELECT 1"), &[0x00, 0x01, 0x20], &(-5i64).to_be_bytes()]);
    assert_eq!(params(&decode(&frame(0, 1, 0x07, &body)).unwrap()).timestamp, Some(-5));
}

#[test]
fn value_and_batch_limits_are_enforced() {
    let limits = Limits { max_values_per_request: 2, max_batch_statements: 1, ..Limits::default() };
    let three = cat(&[&ls("q"), &[0x00, 0x01, 0x01, 0x00, 0x03], &val(b"a"), &val(b"b"), &val(b"c")]);
    let err = decode_with(&frame(0, 1, 0x07, &three), &limits).unwrap_err();
    assert_eq!(err, ProtocolError::TooMany { what: "bind values in one request", count: 3, max: 2 });
    let two = cat(&[&ls("q"), &[0x00, 0x01, 0x01, 0x00, 0x02], &val(b"a"), &val(b"b")]);
    assert!(decode_with(&frame(0, 1, 0x07, &two), &limits).is_ok());

    let stmt = cat(&[&[0x00], &ls("q"), &[0x00, 0x02], &val(b"a"), &val(b"b")]);
    let batch = cat(&[&[0x00, 0x00, 0x02], &stmt, &stmt, &[0x00, 0x01, 0x00]]);
    let err = decode_with(&frame(0, 1, 0x0D, &batch), &limits).unwrap_err();
    assert_eq!(err, ProtocolError::TooMany { what: "batch statements", count: 2, max: 1 });
    // values are counted across the whole batch
    let limits = Limits { max_values_per_request: 3, ..Limits::default() };
    let err = decode_with(&frame(0, 1, 0x0D, &batch), &limits).unwrap_err();
    assert_eq!(err, ProtocolError::TooMany { what: "bind values in one request", count: 4, max: 3 });
}

#[test]
fn response_opcodes_are_not_requests() {
    let err = decode(&frame(0, 1, 0x02, &[])).unwrap_err();
    assert_eq!(err, ProtocolError::UnexpectedOpcode { opcode: Opcode::Ready, direction: "request" });
}

/// One of every request shape, used by the round-trip and robustness tests.
pub(crate) fn sample_requests() -> Vec<RequestEnvelope> {
    let mut startup = StringMap::new();
    startup.insert("CQL_VERSION".into(), "3.4.5".into());
    startup.insert("COMPRESSION".into(), "lz4".into());
    let full_params = QueryParameters {
        consistency: Consistency::LocalQuorum,
        values: Values::Positional(vec![BindValue::bytes(&b"abc"[..]), BindValue::Null, BindValue::Unset]),
        skip_metadata: true,
        page_size: Some(5000),
        paging_state: Some(Bytes::from_static(b"\x00\x01state")),
        serial_consistency: Some(Consistency::LocalSerial),
        timestamp: Some(1_700_000_000_000_000),
    };
    let named = QueryParameters {
        values: Values::Named(vec![("k".into(), BindValue::bytes(&b"v"[..])), ("n".into(), BindValue::Null)]),
        ..QueryParameters::new(Consistency::One)
    };
    let mut payload = BytesMap::new();
    payload.insert("trace".into(), Some(Bytes::from_static(b"yes")));
    payload.insert("null".into(), None);
    let requests = vec![
        RequestEnvelope::new(0, Request::Startup(startup)),
        RequestEnvelope::new(1, Request::Options),
        RequestEnvelope::new(
            2,
            Request::Query { query: "SELECT * FROM ks.t".into(), params: full_params.clone() },
        ),
        RequestEnvelope::new(3, Request::Query { query: "SELECT :k".into(), params: named }),
        RequestEnvelope::new(
            4,
            Request::Query { query: "SELECT 1".into(), params: QueryParameters::new(Consistency::Any) },
        ),
        RequestEnvelope::new(5, Request::Prepare { query: "INSERT INTO t (k) VALUES (?)".into() }),
        RequestEnvelope::new(6, Request::Execute { id: Bytes::from_static(&[1; 16]), params: full_params }),
        RequestEnvelope::new(
            7,
            Request::Batch(Batch {
                kind: BatchKind::Counter,
                statements: vec![
                    BatchStatement {
                        query: BatchQuery::Query("UPDATE c SET n = n + 1 WHERE k = ?".into()),
                        values: Values::Positional(vec![BindValue::bytes(&b"k"[..])]),
                    },
                    BatchStatement {
                        query: BatchQuery::Prepared(Bytes::from_static(b"id")),
                        values: Values::Positional(vec![]),
                    },
                ],
                consistency: Consistency::EachQuorum,
                serial_consistency: None,
                timestamp: Some(99),
            }),
        ),
        RequestEnvelope::new(
            8,
            Request::Register { events: vec![EventType::SchemaChange, EventType::StatusChange] },
        ),
        RequestEnvelope::new(9, Request::AuthResponse { token: Some(Bytes::from_static(b"\0u\0p")) }),
        RequestEnvelope::new(10, Request::AuthResponse { token: None }),
        RequestEnvelope {
            stream: 32767,
            tracing: true,
            custom_payload: Some(payload),
            request: Request::Query {
                query: "SELECT now()".into(),
                params: QueryParameters::new(Consistency::Two),
            },
        },
    ];
    requests
}

#[test]
fn every_request_round_trips_with_and_without_compression() {
    for compression in [None, Some(Compression::Lz4), Some(Compression::Snappy)] {
        for env in sample_requests() {
            let bytes = env.encode(compression).unwrap();
            let mut buf = BytesMut::from(&bytes[..]);
            let frame =
                Frame::decode(&mut buf, Direction::Request, DEFAULT_MAX_FRAME_BYTES).unwrap().unwrap();
            let is_startup = matches!(env.request, Request::Startup(_));
            let has_body = !frame.body.is_empty();
            assert_eq!(
                frame.header.flags.contains(crate::protocol::frame::FrameFlags::COMPRESSION),
                compression.is_some() && !is_startup && has_body,
                "{env:?}"
            );
            let decoded =
                RequestEnvelope::decode_frame(&frame.header, frame.body, compression, &Limits::default())
                    .unwrap();
            assert_eq!(decoded, env);
        }
    }
}

#[test]
fn compressed_frame_without_negotiation_is_an_error() {
    let env = &sample_requests()[2];
    let bytes = env.encode(Some(Compression::Lz4)).unwrap();
    let header = FrameHeader::decode(&bytes, Direction::Request, DEFAULT_MAX_FRAME_BYTES).unwrap();
    let err = RequestEnvelope::decode_frame(&header, bytes.slice(9..), None, &Limits::default()).unwrap_err();
    assert_eq!(err, ProtocolError::CompressionNotNegotiated);
}

#[test]
fn decompressed_size_is_bounded_by_the_frame_limit() {
    let env = RequestEnvelope::new(
        1,
        Request::Query { query: "x".repeat(10_000), params: QueryParameters::new(Consistency::One) },
    );
    for c in [Compression::Lz4, Compression::Snappy] {
        let bytes = env.encode(Some(c)).unwrap();
        assert!(bytes.len() < 1000, "compresses well");
        let limits = Limits { max_frame_bytes: 4096, ..Limits::default() };
        let header = FrameHeader::decode(&bytes, Direction::Request, limits.max_frame_bytes).unwrap();
        let err = RequestEnvelope::decode_frame(&header, bytes.slice(9..), Some(c), &limits).unwrap_err();
        assert!(err.to_string().contains("exceeds native_transport_max_frame_size 4096"), "{err}");
    }
}
