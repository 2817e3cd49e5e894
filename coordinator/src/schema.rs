//! Every redb table of the coordinator's database, in one place.
//!
//! A table's name and its key and value types are schema: redb records the
//! type names in the file and refuses to open a table with different ones.
//! Changing any definition here, or the layout of a value, is a migration
//! and must bump [`SCHEMA_VERSION`] (and teach [`crate::store::Store::open`]
//! how to upgrade an older file, or refuse it).

use redb::TableDefinition;

/// The layout of the tables below. Stored under [`SCHEMA_VERSION_KEY`] in
/// [`META`] when a database is created, and checked on every open: a file
/// written by another version is refused rather than misread.
///
/// Version 2 added a checksum to every value of [`SWEEPS`] and
/// [`AGGREGATES`]; version 3 added the regional count tables to every
/// aggregate (the region's peak year, the units per zone), which an older
/// aggregate cannot be given after the fact: files of versions 1 and 2 are
/// refused with that reason, and left as they are. Version 4 added
/// [`DELTAS`]: a sweep's merged results are its checkpoint in
/// [`AGGREGATES`] plus its deltas. A version 3 file is a version 4 file
/// without deltas: the coordinator upgrades it by creating the table and
/// recording the new version, and a query reads it as it is. Version 5
/// stores new aggregates and deltas packed (count tables as their entries
/// that are not zero), which a coordinator of version 4 would misread as
/// empty; a version 5 coordinator reads the listed aggregates of older
/// files as they are, so a version 3 or 4 file is upgraded by recording the
/// new version (and creating [`DELTAS`] for version 3), and a query reads
/// it as it is. Recording it makes an older coordinator refuse the file.
pub const SCHEMA_VERSION: u64 = 5;

/// The last schema version without [`DELTAS`], upgraded in place.
pub const VERSION_BEFORE_DELTAS: u64 = 3;

/// The last schema version whose aggregates are all in the listed form,
/// upgraded in place.
pub const VERSION_BEFORE_PACKED: u64 = 4;

/// The first schema version whose aggregates carry the regional counts.
pub const FIRST_REGIONAL_VERSION: u64 = 3;

/// The length of the checksum (SHA-256) before each sweep record and
/// stored aggregate.
pub const CHECKSUM_LEN: usize = 32;

/// The key of [`META`] that holds the schema version.
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Facts about the database itself.
///
/// Key: a fixed name such as [`SCHEMA_VERSION_KEY`]. Value: the number.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// One record per sweep.
///
/// Key: the sweep id. Value: the SHA-256 ([`CHECKSUM_LEN`] bytes) of the
/// rest, then a `crate::store::SweepRecord` as serde_json bytes (its state,
/// its job count, the hashes of its inputs, its units). A record is small
/// and rewritten whole on every change of state.
pub const SWEEPS: TableDefinition<&str, &[u8]> = TableDefinition::new("sweeps");

/// Datasets and sweep specifications, stored once by content.
///
/// Key: the content hash (lowercase hex) the caller computed. Value: the
/// bytes exactly as submitted. Never overwritten, since a hash names its
/// content.
pub const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");

/// Each sweep's checkpoint: its merged results up to its first delta in
/// [`DELTAS`] (all of them when it has none).
///
/// Key: the sweep id. Value: the SHA-256 ([`CHECKSUM_LEN`] bytes) of the
/// rest, then the aggregate in the binary form of
/// `zonesweep_proto::convert::encode_aggregate_packed` (count tables as
/// their entries that are not zero; files written before hold some in the
/// listed form of `encode_aggregate`, which reads the same), whose size
/// depends on the number of units and histogram bins, never on the number
/// of samples.
/// Every read checks the checksum and the aggregate's invariants.
pub const AGGREGATES: TableDefinition<&str, &[u8]> = TableDefinition::new("aggregates");

/// The results each group commit merged into a sweep since its checkpoint.
///
/// Key: (sweep id, delta sequence number; unique in the file, increasing).
/// Value: like [`AGGREGATES`]' (checksum, then the binary aggregate): the
/// merge of the results one batch newly merged into the sweep. A sweep's
/// merged results are its checkpoint merged with every one of its deltas
/// (merging is exact, associative and commutative, so their order does not
/// matter). A checkpoint is written in the same transaction that removes
/// the deltas it holds, so replaying the deltas that remain never counts a
/// result twice.
pub const DELTAS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("deltas");

/// The jobs whose results are merged into the sweep's checkpoint or deltas.
///
/// Key: (sweep id, job index); the tuple orders by sweep id first, so one
/// sweep's done jobs are a contiguous range in ascending job order. Value:
/// nothing. A job is in this table exactly when its result is in the
/// sweep's checkpoint or one of its deltas: both are written in one
/// transaction, which is what
/// keeps a result from being merged twice.
pub const DONE_JOBS: TableDefinition<(&str, u32), ()> = TableDefinition::new("done_jobs");
