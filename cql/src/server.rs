//! The native protocol server's request handler: protocol messages in, [`Executor`] calls out.
//!
//! This is the protocol boundary, the one place where [`Error`]s become error codes and text.
//! The executor is synchronous (it may wait on disk or on the commit log's group sync), so every
//! request runs on tokio's blocking pool, never on an async worker.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Error;
use crate::executor::{self, BatchItem, Executor, QueryOptions, QueryResult, SchemaChangeKind, Values};
use crate::protocol::{
    self, BindValue, ColumnSpec, ColumnType, ConnectionState, ErrorKind, Event, EventBus, Handler,
    PreparedMetadata, QueryParameters, Request, RequestEnvelope, Response, ResponseEnvelope, ResultBody,
    Rows, RowsContent, RowsMetadata, SchemaChangeTarget, SchemaChangeType,
};
use crate::types::CqlType;

/// Handles CQL requests with an [`Executor`].
#[derive(Debug)]
pub struct CqlHandler {
    exec: Arc<Executor>,
}

impl CqlHandler {
    /// A handler over `exec`, publishing its schema changes as events on `events`.
    pub fn new(exec: Arc<Executor>, events: EventBus) -> CqlHandler {
        let (tx, rx) = std::sync::mpsc::sync_channel::<executor::SchemaChange>(64);
        exec.subscribe(tx);
        // Forwards schema changes to registered connections; ends when the executor is dropped.
        std::thread::Builder::new()
            .name("schema-events".into())
            .spawn(move || {
                while let Ok(change) = rx.recv() {
                    events.publish(Event::SchemaChange(schema_change(&change)));
                }
            })
            .map_err(|e| tracing::error!(error = %e, "cannot start the schema event thread; clients will not get SCHEMA_CHANGE events"))
            .ok();
        CqlHandler { exec }
    }
}

impl Handler for CqlHandler {
    fn handle(
        &self,
        conn: &Arc<ConnectionState>,
        request: RequestEnvelope,
    ) -> impl std::future::Future<Output = ResponseEnvelope> + Send {
        let exec = Arc::clone(&self.exec);
        let conn = Arc::clone(conn);
        async move {
            let keyspace = conn.keyspace();
            let result =
                tokio::task::spawn_blocking(move || handle_blocking(&exec, keyspace, request.request)).await;
            let response = match result {
                Ok(Ok(Handled::SetKeyspace(ks))) => {
                    conn.set_keyspace(Some(ks.clone()));
                    Response::Result(ResultBody::SetKeyspace(ks))
                }
                Ok(Ok(Handled::Response(r))) => r,
                Ok(Err(e)) => error_response(&e),
                Err(join) => {
                    tracing::error!(error = %join, "request handler failed");
                    Response::server_error(format!("internal error: {join}"))
                }
            };
            ResponseEnvelope::from(response)
        }
    }
}

enum Handled {
    Response(Response),
    SetKeyspace(String),
}

fn handle_blocking(exec: &Executor, keyspace: Option<String>, request: Request) -> Result<Handled, Error> {
    let ks = keyspace.as_deref();
    match request {
        Request::Query { query, params } => {
            let skip = params.skip_metadata;
            let r = exec.query(ks, &query, &options(params))?;
            Ok(result(r, skip))
        }
        Request::Prepare { query } => {
            let p = exec.prepare(ks, &query)?;
            let metadata = PreparedMetadata {
                pk_indexes: p.pk_indexes.clone(),
                columns: p.variables.iter().map(column_spec).collect(),
            };
            let result_metadata = RowsMetadata::new(p.result_columns.iter().map(column_spec).collect());
            Ok(Handled::Response(Response::Result(ResultBody::Prepared(protocol::Prepared {
                id: p.id,
                metadata,
                result_metadata,
            }))))
        }
        Request::Execute { id, params } => {
            let skip = params.skip_metadata;
            let r = exec.execute(&id, &options(params))?;
            Ok(result(r, skip))
        }
        Request::Batch(b) => {
            let kind = match b.kind {
                protocol::BatchKind::Logged => crate::ast::BatchKind::Logged,
                protocol::BatchKind::Unlogged => crate::ast::BatchKind::Unlogged,
                protocol::BatchKind::Counter => crate::ast::BatchKind::Counter,
            };
            let statements: Vec<(BatchItem, Values)> = b
                .statements
                .into_iter()
                .map(|s| {
                    let item = match s.query {
                        protocol::BatchQuery::Query(q) => BatchItem::Query(q),
                        protocol::BatchQuery::Prepared(id) => BatchItem::Prepared(id),
                    };
                    (item, values(s.values))
                })
                .collect();
            let opts = QueryOptions {
                consistency: b.consistency,
                timestamp: b.timestamp,
                ..QueryOptions::default()
            };
            let r = exec.batch(ks, kind, &statements, &opts)?;
            Ok(result(r, false))
        }
        Request::AuthResponse { .. } => {
            Err(Error::Invalid("Authentication is not enabled on this node".into()))
        }
        Request::Startup(_) | Request::Options | Request::Register { .. } => {
            Err(Error::Server("connection-level request reached the query handler".into()))
        }
    }
}

fn options(p: QueryParameters) -> QueryOptions {
    QueryOptions {
        consistency: p.consistency,
        values: values(p.values),
        page_size: p.page_size.and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0),
        paging_state: p.paging_state,
        timestamp: p.timestamp,
    }
}

fn values(v: protocol::Values) -> Values {
    let bound = |b: BindValue| match b {
        BindValue::Null => executor::expr::BoundValue::Null,
        BindValue::Unset => executor::expr::BoundValue::Unset,
        BindValue::Bytes(b) => executor::expr::BoundValue::Bytes(b),
    };
    match v {
        protocol::Values::None => Values::None,
        protocol::Values::Positional(v) => Values::Positional(v.into_iter().map(bound).collect()),
        protocol::Values::Named(v) => Values::Named(v.into_iter().map(|(n, b)| (n, bound(b))).collect()),
    }
}

fn result(r: QueryResult, skip_metadata: bool) -> Handled {
    Handled::Response(Response::Result(match r {
        QueryResult::Void => ResultBody::Void,
        QueryResult::SetKeyspace(ks) => return Handled::SetKeyspace(ks),
        QueryResult::SchemaChange(c) => ResultBody::SchemaChange(schema_change(&c)),
        QueryResult::Rows(rs) => {
            let mut metadata = RowsMetadata::new(rs.columns.iter().map(column_spec).collect());
            metadata.paging_state = rs.paging_state;
            if skip_metadata {
                metadata.no_metadata = true;
                metadata.columns.clear();
            }
            ResultBody::Rows(Rows { metadata, rows: RowsContent::Rows(rs.rows) })
        }
    }))
}

fn schema_change(c: &executor::SchemaChange) -> protocol::SchemaChange {
    let change_type = match c.change {
        SchemaChangeKind::Created => SchemaChangeType::Created,
        SchemaChangeKind::Updated => SchemaChangeType::Updated,
        SchemaChangeKind::Dropped => SchemaChangeType::Dropped,
    };
    let target = match &c.table {
        Some(t) => SchemaChangeTarget::Table { keyspace: c.keyspace.clone(), table: t.clone() },
        None => SchemaChangeTarget::Keyspace { keyspace: c.keyspace.clone() },
    };
    protocol::SchemaChange { change_type, target }
}

fn column_spec(c: &executor::ColumnSpec) -> ColumnSpec {
    ColumnSpec::new(c.keyspace.clone(), c.table.clone(), c.name.clone(), column_type(&c.ty))
}

/// The protocol's `[option]` for a CQL type.
#[must_use]
pub fn column_type(t: &CqlType) -> ColumnType {
    match t {
        CqlType::Ascii => ColumnType::Ascii,
        CqlType::Bigint => ColumnType::Bigint,
        CqlType::Blob => ColumnType::Blob,
        CqlType::Boolean => ColumnType::Boolean,
        CqlType::Counter => ColumnType::Counter,
        CqlType::Date => ColumnType::Date,
        CqlType::Decimal => ColumnType::Decimal,
        CqlType::Double => ColumnType::Double,
        CqlType::Duration => ColumnType::Duration,
        CqlType::Float => ColumnType::Float,
        CqlType::Inet => ColumnType::Inet,
        CqlType::Int => ColumnType::Int,
        CqlType::Smallint => ColumnType::Smallint,
        CqlType::Text => ColumnType::Varchar,
        CqlType::Time => ColumnType::Time,
        CqlType::Timestamp => ColumnType::Timestamp,
        CqlType::Timeuuid => ColumnType::Timeuuid,
        CqlType::Tinyint => ColumnType::Tinyint,
        CqlType::Uuid => ColumnType::Uuid,
        CqlType::Varint => ColumnType::Varint,
        CqlType::List { element, .. } => ColumnType::List(Box::new(column_type(element))),
        CqlType::Set { element, .. } => ColumnType::Set(Box::new(column_type(element))),
        CqlType::Map { key, value, .. } => {
            ColumnType::Map(Box::new(column_type(key)), Box::new(column_type(value)))
        }
        CqlType::Tuple(items) => ColumnType::Tuple(items.iter().map(column_type).collect()),
        CqlType::Custom(class) => ColumnType::Custom(class.clone()),
    }
}

/// The ERROR response for an executor error.
#[must_use]
pub fn error_response(e: &Error) -> Response {
    let kind = match e {
        Error::Syntax { .. } => ErrorKind::SyntaxError,
        Error::Invalid(_) => ErrorKind::Invalid,
        Error::Config(_) => ErrorKind::ConfigError,
        Error::AlreadyExists { keyspace, table } => {
            ErrorKind::AlreadyExists { keyspace: keyspace.clone(), table: table.clone() }
        }
        Error::Unprepared { id } => ErrorKind::Unprepared { id: Bytes::copy_from_slice(id) },
        Error::Unavailable { consistency, required, alive } => {
            ErrorKind::Unavailable { consistency: *consistency, required: *required, alive: *alive }
        }
        Error::Unauthorized(_) => ErrorKind::Unauthorized,
        Error::Overloaded(_) => ErrorKind::Overloaded,
        Error::ReadFailure(_) => ErrorKind::ReadFailure {
            consistency: protocol::Consistency::One,
            received: 0,
            block_for: 1,
            num_failures: 1,
            data_present: false,
        },
        Error::Storage(inner) => {
            tracing::error!(error = %inner, "storage error while serving a request");
            ErrorKind::ServerError
        }
        Error::Cluster(c) => cluster_error_kind(c),
        Error::Server(msg) => {
            tracing::error!(error = %msg, "internal error while serving a request");
            ErrorKind::ServerError
        }
    };
    Response::error(kind, e.to_string())
}

fn cluster_error_kind(e: &sibyl_cluster::Error) -> ErrorKind {
    use sibyl_cluster::Error as C;
    let level = |c: sibyl_cluster::ConsistencyLevel| {
        protocol::Consistency::from_code(c.code()).unwrap_or(protocol::Consistency::One)
    };
    let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    let write_type = |w: sibyl_cluster::WriteType| match w {
        sibyl_cluster::WriteType::Simple => protocol::WriteType::Simple,
        sibyl_cluster::WriteType::Batch => protocol::WriteType::Batch,
        sibyl_cluster::WriteType::UnloggedBatch => protocol::WriteType::UnloggedBatch,
        sibyl_cluster::WriteType::BatchLog => protocol::WriteType::BatchLog,
    };
    match e {
        C::Unavailable { consistency, required, alive } => ErrorKind::Unavailable {
            consistency: level(*consistency),
            required: n(*required),
            alive: n(*alive),
        },
        C::WriteTimeout { consistency, received, block_for, write_type: w } => ErrorKind::WriteTimeout {
            consistency: level(*consistency),
            received: n(*received),
            block_for: n(*block_for),
            write_type: write_type(*w),
        },
        C::ReadTimeout { consistency, received, block_for, data_present } => ErrorKind::ReadTimeout {
            consistency: level(*consistency),
            received: n(*received),
            block_for: n(*block_for),
            data_present: *data_present,
        },
        C::Failure { consistency, received, block_for, failures, write: true, .. } => {
            ErrorKind::WriteFailure {
                consistency: level(*consistency),
                received: n(*received),
                block_for: n(*block_for),
                num_failures: n(*failures),
                write_type: protocol::WriteType::Simple,
            }
        }
        C::Failure { consistency, received, block_for, failures, write: false, .. } => {
            ErrorKind::ReadFailure {
                consistency: level(*consistency),
                received: n(*received),
                block_for: n(*block_for),
                num_failures: n(*failures),
                data_present: false,
            }
        }
        C::Overloaded(_) => ErrorKind::Overloaded,
        C::Invalid(_) => ErrorKind::Invalid,
        _ => ErrorKind::ServerError,
    }
}
