//! Response encoding: byte-exact frames from the spec, and round trips of every variant.
#![allow(clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};
use uuid::Uuid;

use crate::protocol::codec::{BytesMap, StringMultimap};
use crate::protocol::compression::Compression;
use crate::protocol::connection::supported_options;
use crate::protocol::consistency::Consistency;
use crate::protocol::error::ProtocolError;
use crate::protocol::event::tests::{sample_events, sample_schema_changes};
use crate::protocol::frame::{Direction, Frame, FrameFlags, DEFAULT_MAX_FRAME_BYTES};
use crate::protocol::metadata::tests::every_type;
use crate::protocol::metadata::{ColumnSpec, ColumnType, PreparedMetadata, RowsMetadata};
use crate::protocol::request_tests::{s, val};
use crate::protocol::response::{
    ErrorKind, ErrorResponse, Prepared, Response, ResponseEnvelope, ResultBody, Rows, RowsContent, WriteType,
};

fn decode(bytes: &[u8], compression: Option<Compression>) -> (Frame, ResponseEnvelope) {
    let mut buf = BytesMut::from(bytes);
    let frame = Frame::decode(&mut buf, Direction::Response, DEFAULT_MAX_FRAME_BYTES).unwrap().unwrap();
    assert!(buf.is_empty());
    let env = ResponseEnvelope::decode_frame(
        &frame.header,
        frame.body.clone(),
        compression,
        DEFAULT_MAX_FRAME_BYTES,
    )
    .unwrap();
    (frame, env)
}

fn body_of(response: Response) -> Vec<u8> {
    ResponseEnvelope::from(response).encode(0, None).unwrap()[9..].to_vec()
}

#[test]
fn ready_frame_is_exact() {
    let bytes = ResponseEnvelope::from(Response::Ready).encode(5, None).unwrap();
    assert_eq!(&bytes[..], &[0x84, 0x00, 0x00, 0x05, 0x02, 0, 0, 0, 0]);
    // READY (empty body) is not compressed even when compression is on
    let bytes = ResponseEnvelope::from(Response::Ready).encode(5, Some(Compression::Lz4)).unwrap();
    assert_eq!(&bytes[..], &[0x84, 0x00, 0x00, 0x05, 0x02, 0, 0, 0, 0]);
}

#[test]
fn event_frames_use_stream_minus_one() {
    let event = sample_events().remove(2);
    let bytes = ResponseEnvelope::from(Response::Event(event)).encode(-1, None).unwrap();
    assert_eq!(&bytes[..5], &[0x84, 0x00, 0xFF, 0xFF, 0x0C]);
}

#[test]
fn protocol_error_body_is_code_then_string() {
    let msg = "Invalid or unsupported protocol version (66); supported versions are (4/v4)";
    let bytes = ResponseEnvelope::from(Response::protocol_error(msg)).encode(0x0102, None).unwrap();
    let expected = [
        &[0x84, 0x00, 0x01, 0x02, 0x00][..],
        &((4 + 2 + msg.len()) as i32).to_be_bytes(),
        &[0, 0, 0, 0x0A],
        &s(msg),
    ]
    .concat();
    assert_eq!(&bytes[..], &expected[..]);
}

#[test]
fn error_extras_are_exact() {
    let body = body_of(Response::error(
        ErrorKind::Unavailable { consistency: Consistency::Quorum, required: 2, alive: 1 },
        "Cannot achieve consistency level QUORUM",
    ));
    let expected = [
        &[0, 0, 0x10, 0x00][..],
        &s("Cannot achieve consistency level QUORUM"),
        &[0x00, 0x04],
        &2i32.to_be_bytes(),
        &1i32.to_be_bytes(),
    ]
    .concat();
    assert_eq!(body, expected);

    let body = body_of(Response::error(
        ErrorKind::WriteTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            block_for: 2,
            write_type: WriteType::UnloggedBatch,
        },
        "timeout",
    ));
    let expected = [
        &[0, 0, 0x11, 0x00][..],
        &s("timeout"),
        &[0x00, 0x06],
        &1i32.to_be_bytes(),
        &2i32.to_be_bytes(),
        &s("UNLOGGED_BATCH"),
    ]
    .concat();
    assert_eq!(body, expected);

    let body = body_of(Response::error(
        ErrorKind::ReadTimeout {
            consistency: Consistency::One,
            received: 0,
            block_for: 1,
            data_present: false,
        },
        "t",
    ));
    assert_eq!(body, [&[0, 0, 0x12, 0x00][..], &s("t"), &[0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]].concat());

    let body = body_of(Response::error(ErrorKind::Unprepared { id: Bytes::from_static(&[0xAA, 0xBB]) }, "u"));
    assert_eq!(body, [&[0, 0, 0x25, 0x00][..], &s("u"), &[0, 2, 0xAA, 0xBB]].concat());

    let body = body_of(Response::error(
        ErrorKind::AlreadyExists { keyspace: "ks".into(), table: String::new() },
        "Keyspace ks already exists",
    ));
    assert_eq!(body, [&[0, 0, 0x24, 0x00][..], &s("Keyspace ks already exists"), &s("ks"), &s("")].concat());
}

#[test]
fn plain_error_codes_match_section_9() {
    let codes = [
        (ErrorKind::ServerError, 0x0000),
        (ErrorKind::ProtocolError, 0x000A),
        (ErrorKind::AuthError, 0x0100),
        (ErrorKind::Overloaded, 0x1001),
        (ErrorKind::IsBootstrapping, 0x1002),
        (ErrorKind::TruncateError, 0x1003),
        (ErrorKind::SyntaxError, 0x2000),
        (ErrorKind::Unauthorized, 0x2100),
        (ErrorKind::Invalid, 0x2200),
        (ErrorKind::ConfigError, 0x2300),
    ];
    for (kind, code) in codes {
        let body = body_of(Response::error(kind, "m"));
        assert_eq!(body, [&i32::to_be_bytes(code)[..], &s("m")].concat());
    }
}

#[test]
fn rows_result_bytes_match_the_spec() {
    let rows = Rows {
        metadata: RowsMetadata::new(vec![
            ColumnSpec::new("system", "local", "key", ColumnType::Varchar),
            ColumnSpec::new("system", "local", "tokens", ColumnType::Set(Box::new(ColumnType::Varchar))),
        ]),
        rows: RowsContent::Rows(vec![vec![Some(Bytes::from_static(b"local")), None]]),
    };
    let body = body_of(Response::Result(ResultBody::Rows(rows.clone())));
    let expected = [
        &[0, 0, 0, 2][..], // kind Rows
        &[0, 0, 0, 1],     // Global_tables_spec
        &[0, 0, 0, 2],     // 2 columns
        &s("system"),
        &s("local"),
        &s("key"),
        &[0x00, 0x0D],
        &s("tokens"),
        &[0x00, 0x22, 0x00, 0x0D],
        &[0, 0, 0, 1], // 1 row
        &val(b"local"),
        &(-1i32).to_be_bytes(),
    ]
    .concat();
    assert_eq!(body, expected);

    // a pre-encoded rows buffer produces the same bytes
    let cells = [&val(b"local")[..], &(-1i32).to_be_bytes()].concat();
    let encoded = Rows {
        metadata: rows.metadata.clone(),
        rows: RowsContent::Encoded { row_count: 1, bytes: Bytes::from(cells) },
    };
    assert_eq!(body_of(Response::Result(ResultBody::Rows(encoded))), expected);
}

#[test]
fn rows_with_wrong_width_are_an_encode_error() {
    let rows = Rows {
        metadata: RowsMetadata::new(vec![ColumnSpec::new("ks", "t", "a", ColumnType::Int)]),
        rows: RowsContent::Rows(vec![vec![None, None]]),
    };
    let err = ResponseEnvelope::from(Response::Result(ResultBody::Rows(rows))).encode(0, None).unwrap_err();
    assert!(matches!(err, ProtocolError::Invalid { what: "rows", .. }), "{err}");
}

#[test]
fn set_keyspace_and_prepared_bytes() {
    assert_eq!(
        body_of(Response::Result(ResultBody::SetKeyspace("ks".into()))),
        [&[0, 0, 0, 3][..], &s("ks")].concat()
    );
    let prepared = Prepared {
        id: Bytes::from_static(&[9, 9]),
        metadata: PreparedMetadata {
            pk_indexes: vec![0],
            columns: vec![ColumnSpec::new("ks", "t", "k", ColumnType::Int)],
        },
        result_metadata: RowsMetadata::empty(),
    };
    let body = body_of(Response::Result(ResultBody::Prepared(prepared)));
    let expected = [
        &[0, 0, 0, 4][..],
        &[0, 2, 9, 9],
        &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], // flags, 1 marker, 1 pk index: 0
        &s("ks"),
        &s("t"),
        &s("k"),
        &[0x00, 0x09],
        &[0, 0, 0, 4, 0, 0, 0, 0], // result metadata: No_metadata, 0 columns
    ]
    .concat();
    assert_eq!(body, expected);
}

#[test]
fn supported_advertises_exactly_what_is_implemented() {
    let body = body_of(Response::Supported(supported_options()));
    let expected = [
        &[0, 3][..],
        &s("COMPRESSION"),
        &[0, 2],
        &s("lz4"),
        &s("snappy"),
        &s("CQL_VERSION"),
        &[0, 1],
        &s("3.4.5"),
        &s("PROTOCOL_VERSIONS"),
        &[0, 1],
        &s("4/v4"),
    ]
    .concat();
    assert_eq!(body, expected);
    assert!(supported_options().keys().all(|k| !k.starts_with("SCYLLA")));
}

#[test]
fn warnings_tracing_id_and_custom_payload_precede_the_body_in_order() {
    let id = Uuid::from_u128(0x00112233_4455_6677_8899_aabbccddeeff);
    let mut payload = BytesMap::new();
    payload.insert("p".into(), Some(Bytes::from_static(b"1")));
    let env = ResponseEnvelope {
        response: Response::void(),
        tracing_id: Some(id),
        warnings: vec!["Aggregation query used without partition key".into()],
        custom_payload: Some(payload),
    };
    let bytes = env.encode(3, None).unwrap();
    assert_eq!(bytes[1], 0x02 | 0x04 | 0x08);
    let expected_body = [
        &id.as_bytes()[..],
        &[0, 1],
        &s("Aggregation query used without partition key"),
        &[0, 1],
        &s("p"),
        &val(b"1"),
        &[0, 0, 0, 1],
    ]
    .concat();
    assert_eq!(&bytes[9..], &expected_body[..]);
    assert_eq!(decode(&bytes, None).1, env);
}

#[test]
fn long_error_messages_are_truncated_not_refused() {
    let msg = "é".repeat(40_000); // 80 000 bytes
    let bytes = ResponseEnvelope::from(Response::invalid(msg)).encode(1, None).unwrap();
    let (_, env) = decode(&bytes, None);
    let Response::Error(ErrorResponse { message, .. }) = env.response else { panic!() };
    assert_eq!(message.len(), 65_534);
    assert!(message.chars().all(|c| c == 'é'));
}

#[test]
fn clients_ignore_trailing_bytes_in_responses() {
    let mut bytes = ResponseEnvelope::from(Response::void()).encode(1, None).unwrap().to_vec();
    bytes.extend_from_slice(&[1, 2, 3]);
    bytes[8] += 3;
    assert_eq!(decode(&bytes, None).1.response, Response::void());
}

pub(crate) fn sample_responses() -> Vec<ResponseEnvelope> {
    let mut supported = StringMultimap::new();
    supported.insert("COMPRESSION".into(), vec![]);
    let cl = Consistency::LocalQuorum;
    let errors = vec![
        ErrorKind::ServerError,
        ErrorKind::ProtocolError,
        ErrorKind::AuthError,
        ErrorKind::Unavailable { consistency: cl, required: 3, alive: 1 },
        ErrorKind::Overloaded,
        ErrorKind::IsBootstrapping,
        ErrorKind::TruncateError,
        ErrorKind::WriteTimeout { consistency: cl, received: 1, block_for: 2, write_type: WriteType::Simple },
        ErrorKind::WriteTimeout {
            consistency: cl,
            received: 1,
            block_for: 2,
            write_type: WriteType::Other("NEW".into()),
        },
        ErrorKind::ReadTimeout { consistency: cl, received: 2, block_for: 2, data_present: true },
        ErrorKind::ReadFailure {
            consistency: cl,
            received: 1,
            block_for: 2,
            num_failures: 1,
            data_present: false,
        },
        ErrorKind::FunctionFailure {
            keyspace: "ks".into(),
            function: "f".into(),
            arg_types: vec!["int".into()],
        },
        ErrorKind::WriteFailure {
            consistency: cl,
            received: 0,
            block_for: 2,
            num_failures: 2,
            write_type: WriteType::Cas,
        },
        ErrorKind::SyntaxError,
        ErrorKind::Unauthorized,
        ErrorKind::Invalid,
        ErrorKind::ConfigError,
        ErrorKind::AlreadyExists { keyspace: "ks".into(), table: "t".into() },
        ErrorKind::Unprepared { id: Bytes::from_static(&[1, 2, 3]) },
    ];
    let columns: Vec<ColumnSpec> = every_type()
        .into_iter()
        .enumerate()
        .map(|(i, ty)| ColumnSpec::new("ks", "t", format!("c{i}"), ty))
        .collect();
    let row: Vec<Option<Bytes>> = (0..columns.len())
        .map(|i| if i % 3 == 0 { None } else { Some(Bytes::from(vec![i as u8; i])) })
        .collect();
    let mut mixed = columns.clone();
    mixed[1].table = "other".into();
    let mut out: Vec<ResponseEnvelope> =
        errors.into_iter().map(|k| Response::error(k, "something went wrong").into()).collect();
    out.extend(
        [
            Response::Ready,
            Response::Authenticate {
                authenticator: "org.apache.cassandra.auth.PasswordAuthenticator".into(),
            },
            Response::Supported(supported_options()),
            Response::Supported(supported),
            Response::void(),
            Response::Result(ResultBody::Rows(Rows {
                metadata: RowsMetadata::new(columns.clone()).with_paging_state(Bytes::from_static(b"page2")),
                rows: RowsContent::Rows(vec![row.clone(), row.clone()]),
            })),
            Response::Result(ResultBody::Rows(Rows {
                metadata: RowsMetadata::new(mixed.clone()),
                rows: RowsContent::Rows(vec![row.clone()]),
            })),
            Response::Result(ResultBody::Rows(Rows {
                metadata: RowsMetadata::new(columns.clone()).without_column_specs(),
                rows: RowsContent::Rows(vec![row]),
            })),
            Response::Result(ResultBody::Rows(Rows {
                metadata: RowsMetadata::new(vec![]),
                rows: RowsContent::Rows(vec![]),
            })),
            Response::Result(ResultBody::SetKeyspace("system".into())),
            Response::Result(ResultBody::Prepared(Prepared {
                id: Bytes::from_static(&[7; 16]),
                metadata: PreparedMetadata { pk_indexes: vec![1, 0], columns: mixed },
                result_metadata: RowsMetadata::new(columns),
            })),
            Response::Result(ResultBody::Prepared(Prepared {
                id: Bytes::new(),
                metadata: PreparedMetadata::default(),
                result_metadata: RowsMetadata::empty(),
            })),
            Response::AuthChallenge { token: Some(Bytes::from_static(b"challenge")) },
            Response::AuthSuccess { token: None },
        ]
        .into_iter()
        .map(ResponseEnvelope::from),
    );
    out.extend(
        sample_schema_changes().into_iter().map(|c| Response::Result(ResultBody::SchemaChange(c)).into()),
    );
    out.extend(sample_events().into_iter().map(|e| Response::Event(e).into()));
    out.push(
        ResponseEnvelope::from(Response::void())
            .with_warning("w1")
            .with_warning("w2")
            .with_tracing_id(Uuid::from_u128(42)),
    );
    out
}

#[test]
fn every_response_round_trips_with_and_without_compression() {
    for compression in [None, Some(Compression::Lz4), Some(Compression::Snappy)] {
        for env in sample_responses() {
            let bytes = env.encode(77, compression).unwrap();
            let (frame, decoded) = decode(&bytes, compression);
            assert_eq!(frame.header.stream, 77);
            assert_eq!(frame.header.opcode, env.response.opcode());
            assert_eq!(
                frame.header.flags.contains(FrameFlags::COMPRESSION),
                compression.is_some() && frame.header.length > 0,
            );
            assert_eq!(decoded, env);
        }
    }
}
