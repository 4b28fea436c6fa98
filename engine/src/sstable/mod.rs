//! SSTables: immutable sorted files of partitions, written once by a flush (or, later, a
//! compaction) and read through memory maps.
//!
//! One SSTable is a set of component files sharing a generation number:
//!
//! | component | contents | format |
//! |---|---|---|
//! | `Data.db` | partitions, rows and cells in compressed, checksummed chunks | [`chunks`], [`crate::serialization`] |
//! | `CompressionInfo.db` | the file offset of every chunk | [`chunks`] |
//! | `Index.db` | one entry per partition, with a row index for wide partitions | [`index`] |
//! | `Filter.db` | split-block bloom filter of the partition keys | [`bloom`] |
//! | `Statistics.db` | timestamps, tokens, counts, commit log position | [`stats`] |
//! | `TOC.txt` | the list of components; written last | text |
//!
//! Publication is atomic: every other component is written and fsynced, the directory is fsynced,
//! then `TOC.txt` is written to a temporary name, fsynced and renamed into place. An SSTable
//! without a TOC is an interrupted write and is deleted when the table is opened.

pub mod bloom;
pub mod chunks;
pub mod dump;
pub mod index;
pub mod reader;
pub mod stats;
pub mod writer;

use std::path::{Path, PathBuf};

use crate::ids::Generation;

pub use reader::{RowCursor, SsTable, SsTableRows};
pub use writer::{SsTableWriter, WriterOptions};

/// Prefix naming the on-disk format version of every component file.
pub const FORMAT_PREFIX: &str = "sib1";

/// A component file of an SSTable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Partition data.
    Data,
    /// Chunk offsets.
    CompressionInfo,
    /// Partition index.
    Index,
    /// Bloom filter.
    Filter,
    /// Statistics.
    Statistics,
    /// Table of contents, written last.
    Toc,
}

impl Component {
    /// Every component, in the order they are listed in the TOC.
    pub const ALL: [Component; 6] = [
        Component::Data,
        Component::CompressionInfo,
        Component::Index,
        Component::Filter,
        Component::Statistics,
        Component::Toc,
    ];

    /// The file-name suffix.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Component::Data => "Data.db",
            Component::CompressionInfo => "CompressionInfo.db",
            Component::Index => "Index.db",
            Component::Filter => "Filter.db",
            Component::Statistics => "Statistics.db",
            Component::Toc => "TOC.txt",
        }
    }
}

/// Names the files of one SSTable: a directory and a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The table's directory.
    pub dir: PathBuf,
    /// Generation number.
    pub generation: Generation,
}

impl Descriptor {
    /// Path of a component.
    #[must_use]
    pub fn path(&self, c: Component) -> PathBuf {
        self.dir.join(format!("{FORMAT_PREFIX}-{}-{}", self.generation.0, c.suffix()))
    }

    /// Path the TOC is written to before its rename.
    #[must_use]
    pub fn toc_tmp_path(&self) -> PathBuf {
        self.dir.join(format!("{FORMAT_PREFIX}-{}-TOC.txt.tmp", self.generation.0))
    }

    /// Parses `sib1-<gen>-<component>` (and the TOC temp name), returning the generation.
    #[must_use]
    pub fn parse_generation(file_name: &str) -> Option<Generation> {
        let rest = file_name.strip_prefix(FORMAT_PREFIX)?.strip_prefix('-')?;
        let (gen, _) = rest.split_once('-')?;
        gen.parse().ok().map(Generation)
    }

    /// All SSTable generations in `dir` and whether each has its TOC.
    pub fn scan(dir: &Path) -> std::io::Result<Vec<(Generation, bool)>> {
        let mut gens = std::collections::BTreeMap::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(g) = Descriptor::parse_generation(name) {
                let has_toc = gens.entry(g).or_insert(false);
                *has_toc |= name.ends_with("-TOC.txt");
            }
        }
        Ok(gens.into_iter().collect())
    }

    /// Deletes every file of this generation that exists (TOC first, so a crash midway leaves
    /// an SSTable that is recognisably incomplete).
    pub fn delete_files(&self) -> std::io::Result<()> {
        let mut paths: Vec<PathBuf> = vec![self.path(Component::Toc), self.toc_tmp_path()];
        paths.extend(Component::ALL.iter().filter(|c| **c != Component::Toc).map(|c| self.path(*c)));
        for p in paths {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The 64-bit hash the bloom filter stores for a partition key.
#[must_use]
pub fn bloom_hash(key: &[u8]) -> u64 {
    let (h1, h2) = crate::token::murmur3_x64_128(key, 0);
    h1 ^ h2.rotate_left(32)
}
