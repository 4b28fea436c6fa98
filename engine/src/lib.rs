//! Sibyl's storage engine: a log-structured merge tree for Cassandra's data model.
//!
//! A request enters through [`Engine`]: [`Engine::apply`] logs a [`Mutation`] in the
//! [`commitlog`] and applies it to the table's [`memtable`]; memtables are flushed into immutable
//! [`sstable`]s; [`Engine::read`] merges all of them through [`read`]. `docs/architecture.md`
//! walks both paths file by file.

pub mod cache;
pub mod cell;
pub mod clock;
pub mod clustering;
pub mod codec;
pub mod commitlog;
pub mod compaction;
pub mod compactor;
pub mod engine;
pub mod error;
pub mod ids;
pub mod memtable;
pub mod metrics;
pub mod partition;
pub mod read;
pub mod row;
pub mod serialization;
pub mod sstable;
pub mod table;
pub mod token;
pub mod txnlog;

pub use cache::{CacheStats, Caches, ChunkCache, KeyCache};
pub use cell::{Cell, DeletionTime, LivenessInfo};
pub use clock::{Clock, ManualClock, SystemClock};
pub use clustering::{Bound, ClusteringBuilder, Order, Slice};
pub use commitlog::SyncMode;
pub use compactor::Throttle;
pub use engine::{Engine, EngineOptions, TableStats};
pub use error::{Error, Result};
pub use ids::{ColumnId, Generation, TableId};
pub use partition::{DecoratedKey, PartitionData, PartitionHeader, PartitionUpdate, RangeTombstone};
pub use read::{ReadCommand, ScanCommand, ScanStart};
pub use row::Row;
pub use serialization::Mutation;
pub use table::TableOptions;
pub use token::Token;
