//! Sibyl's CQL layer: the language, the schema, the executor and the native protocol server.
//!
//! A request enters at [`protocol::serve`] (frames, compression, stream ids, limits), is handed
//! to [`server::CqlHandler`], which calls the [`executor::Executor`] on a blocking thread. The
//! executor parses the statement ([`parser`] into [`ast`]), resolves it against the
//! [`schema::Schema`], converts values with [`types`], maps CQL rows to engine rows with [`rows`],
//! and reads from or writes to the storage engine. `docs/architecture.md` walks it file by file.

pub mod ast;
pub mod error;
pub mod executor;
pub mod parser;
pub mod protocol;
pub mod rows;
pub mod schema;
pub mod server;
pub mod types;

pub use error::{Error, Result};
pub use executor::{Executor, LocalNode, QueryOptions, QueryResult, ReadLimits};
