//! The narrow door from the cluster layer to a node's storage.
//!
//! The coordinator and the replica-side verb handlers only apply mutations, read a partition
//! and scan a token range. [`Storage`] is implemented by [`sibyl_engine::Engine`]; a simulation
//! can implement it with an in-memory model.

use sibyl_engine::{Engine, Mutation, PartitionData, ReadCommand, ScanCommand, TableId};

/// What the cluster layer needs from storage. Every method may block on disk.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Applies mutations as one commit log record.
    fn apply(&self, mutations: Vec<Mutation>) -> sibyl_engine::Result<()>;
    /// Reads one partition.
    fn read(&self, cmd: &ReadCommand) -> sibyl_engine::Result<Option<PartitionData>>;
    /// Scans a token range.
    fn scan(&self, cmd: &ScanCommand) -> sibyl_engine::Result<Vec<PartitionData>>;
    /// A table's `gc_grace_seconds` (a hint older than it is dropped); `None` if unknown.
    fn gc_grace_seconds(&self, table: TableId) -> Option<u32> {
        let _ = table;
        None
    }
}

impl Storage for Engine {
    fn apply(&self, mutations: Vec<Mutation>) -> sibyl_engine::Result<()> {
        self.apply_batch(mutations)
    }

    fn read(&self, cmd: &ReadCommand) -> sibyl_engine::Result<Option<PartitionData>> {
        Engine::read(self, cmd)
    }

    fn scan(&self, cmd: &ScanCommand) -> sibyl_engine::Result<Vec<PartitionData>> {
        Engine::scan(self, cmd)
    }

    fn gc_grace_seconds(&self, table: TableId) -> Option<u32> {
        self.table_options(table).map(|o| o.gc_grace_seconds)
    }
}
