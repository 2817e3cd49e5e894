//! The coordinator's storage: a small synchronous API over one redb file.
//!
//! Every method runs one redb transaction and returns; async code calls them
//! through `tokio::task::spawn_blocking`. Every write commits with
//! [`Durability::Immediate`], so when a method returns `Ok` its effect
//! survives a crash. [`Store::commit_batch`] writes a whole batch of job
//! results in one such commit (group commit), so the cost of an fsync is
//! shared by every result in the batch.
//!
//! The tables and their key and value layouts are in [`crate::schema`].

use std::path::{Path, PathBuf};

use redb::{
    Database, DatabaseError, Durability, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    StorageError, TableError, TableHandle, WriteTransaction,
};
use zonesweep_proto::convert::{decode_aggregate, encode_aggregate};
use zonesweep_proto::ids::SweepId;
use zonesweep_shared::sweep::aggregate::Aggregate;

use crate::schema::{AGGREGATES, BLOBS, DONE_JOBS, META, SCHEMA_VERSION, SCHEMA_VERSION_KEY, SWEEPS};
use crate::sweep::SweepRecord;

/// One sweep's share of a group commit: its new record, its aggregate with
/// the newly done jobs' results merged in (`None`: unchanged), and those
/// jobs' indices; or, with `delete`, the sweep's removal.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchEntry {
    pub record: SweepRecord,
    pub aggregate: Option<Aggregate>,
    pub newly_done: Vec<u32>,
    /// Remove the sweep: its record, aggregate and done jobs, and every
    /// blob no other sweep uses.
    pub delete: bool,
}

/// What opening a locked database tells a coordinator.
const HINT_FOR_COORDINATOR: &str = "is another coordinator, or a query of this file, running on it?";
/// What opening a locked database tells a query.
const HINT_FOR_QUERY: &str = "is a coordinator running on it? query it with --coordinator instead";

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}: {source}")]
    Database {
        context: String,
        #[source]
        source: redb::Error,
    },
    #[error("no database at {}", path.display())]
    Missing { path: PathBuf },
    #[error("database {} is in use by another process ({hint})", path.display())]
    InUse { path: PathBuf, hint: &'static str },
    #[error("{} is a redb file but not a zonesweep database (it has no schema version)", path.display())]
    NotZonesweep { path: PathBuf },
    #[error(
        "database {} has schema version {found}, but this zonesweep reads only version {supported}: {}",
        path.display(),
        version_advice(*found, *supported)
    )]
    SchemaVersion { path: PathBuf, found: u64, supported: u64 },
    #[error("corrupt value in table `{table}` under key `{key}`: {reason}")]
    Corrupt { table: &'static str, key: String, reason: String },
    #[error("sweep `{id}` already exists")]
    SweepExists { id: String },
    #[error("no sweep `{id}` in the database")]
    UnknownSweep { id: String },
    #[error("job {job} of sweep `{sweep_id}` is already done; its result must not be merged twice")]
    JobAlreadyDone { sweep_id: String, job: u32 },
    #[error("sweep `{sweep_id}` has {jobs} jobs, so there is no job {job}")]
    JobOutOfRange { sweep_id: String, job: u32, jobs: u32 },
    #[error("database {} is open read-only for queries; {operation} needs the coordinator's store", path.display())]
    ReadOnly { path: PathBuf, operation: &'static str },
}

/// What kind of trouble a [`StoreError`] is, for callers that must decide
/// whether trying again can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCause {
    /// Input/output trouble or a file held by another process: it may pass,
    /// so the same request can succeed later.
    Transient,
    /// Stored bytes that do not decode, or a file redb finds damaged:
    /// trying again reads the same bytes.
    Corrupt,
    /// A file of another schema version, not a zonesweep database, or open
    /// read-only: an operator has to act.
    Unusable,
    /// No such database file or sweep.
    Missing,
    /// A sweep id that is taken.
    Exists,
    /// A request the coordinator should never make (a job merged twice, a
    /// job out of range, a value too large): a bug, not bad luck.
    Refused,
}

impl StoreError {
    pub fn cause(&self) -> StoreCause {
        match self {
            StoreError::Database { source, .. } => redb_cause(source),
            StoreError::InUse { .. } => StoreCause::Transient,
            StoreError::Corrupt { .. } => StoreCause::Corrupt,
            StoreError::NotZonesweep { .. } | StoreError::SchemaVersion { .. } | StoreError::ReadOnly { .. } => {
                StoreCause::Unusable
            }
            StoreError::Missing { .. } | StoreError::UnknownSweep { .. } => StoreCause::Missing,
            StoreError::SweepExists { .. } => StoreCause::Exists,
            StoreError::JobAlreadyDone { .. } | StoreError::JobOutOfRange { .. } => StoreCause::Refused,
        }
    }
}

fn redb_cause(error: &redb::Error) -> StoreCause {
    use redb::Error as E;
    match error {
        // After an IO error redb refuses every write until the database is
        // reopened; a restarted coordinator takes the retried results.
        E::Io(_) | E::PreviousIo | E::DatabaseAlreadyOpen | E::RepairAborted | E::DatabaseClosed => {
            StoreCause::Transient
        }
        E::Corrupted(_)
        | E::TableTypeMismatch { .. }
        | E::TypeDefinitionChanged { .. }
        | E::TableIsMultimap(_)
        | E::TableIsNotMultimap(_)
        | E::TableDoesNotExist(_) => StoreCause::Corrupt,
        E::UpgradeRequired(_) => StoreCause::Unusable,
        _ => StoreCause::Refused,
    }
}

fn version_advice(found: u64, supported: u64) -> &'static str {
    if found > supported {
        "it was written by a newer zonesweep; use that release"
    } else {
        "it was written by an older zonesweep and there is no migration from that version"
    }
}

/// Attach what the store was doing to a redb error.
trait Context<T> {
    fn context(self, context: &str) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> Context<T> for Result<T, E> {
    fn context(self, context: &str) -> Result<T, StoreError> {
        self.map_err(|error| StoreError::Database { context: context.to_string(), source: error.into() })
    }
}

enum Handle {
    Writable(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// The coordinator's database. `Send + Sync`: share it in an `Arc` and call
/// it from `spawn_blocking`.
pub struct Store {
    path: PathBuf,
    handle: Handle,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("read_only", &self.is_read_only()).finish()
    }
}

impl Store {
    /// Open the coordinator's database, creating the file and its tables if
    /// they are missing. A file of another schema version, or a redb file
    /// that is not a zonesweep database, is refused and left untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let database = Database::create(path).map_err(|error| open_error(path, error, HINT_FOR_COORDINATOR))?;
        let store = Store { path: path.to_path_buf(), handle: Handle::Writable(database) };
        store.write("preparing the tables", |txn| {
            // A file with tables but no `meta` was written by something else;
            // giving it a schema version would claim it.
            let names: Vec<String> =
                txn.list_tables().context("listing tables")?.map(|table| table.name().to_string()).collect();
            let mut meta = txn.open_table(META).context("opening table `meta`")?;
            let found = meta.get(SCHEMA_VERSION_KEY).context("reading the schema version")?.map(|v| v.value());
            match found {
                Some(found) if found == SCHEMA_VERSION => {}
                Some(found) => {
                    return Err(StoreError::SchemaVersion {
                        path: path.to_path_buf(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                None if names.iter().any(|name| name != META.name()) => {
                    return Err(StoreError::NotZonesweep { path: path.to_path_buf() });
                }
                None => {
                    meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION).context("recording the schema version")?;
                }
            }
            txn.open_table(SWEEPS).context("creating table `sweeps`")?;
            txn.open_table(BLOBS).context("creating table `blobs`")?;
            txn.open_table(AGGREGATES).context("creating table `aggregates`")?;
            txn.open_table(DONE_JOBS).context("creating table `done_jobs`")?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Open an existing database read-only, for queries while no coordinator
    /// runs on it. Refuses (and creates nothing) when the file is missing, and
    /// says so when a coordinator holds it. Several queries may read at once.
    ///
    /// A file whose coordinator was killed is first recovered by redb (which
    /// needs a brief writable open; it changes no committed data), because a
    /// read-only open cannot repair it.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.try_exists().unwrap_or(true) {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        let database = match ReadOnlyDatabase::open(path) {
            Ok(database) => database,
            Err(DatabaseError::RepairAborted) => {
                drop(Database::open(path).map_err(|error| open_error(path, error, HINT_FOR_QUERY))?);
                ReadOnlyDatabase::open(path).map_err(|error| open_error(path, error, HINT_FOR_QUERY))?
            }
            Err(error) => return Err(open_error(path, error, HINT_FOR_QUERY)),
        };
        let store = Store { path: path.to_path_buf(), handle: Handle::ReadOnly(database) };
        let txn = store.read()?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(TableError::TableDoesNotExist(_)) => return Err(StoreError::NotZonesweep { path: path.to_path_buf() }),
            Err(error) => return Err(error).context("opening table `meta`"),
        };
        match meta.get(SCHEMA_VERSION_KEY).context("reading the schema version")?.map(|v| v.value()) {
            Some(found) if found == SCHEMA_VERSION => {}
            Some(found) => {
                return Err(StoreError::SchemaVersion { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
            }
            None => return Err(StoreError::NotZonesweep { path: path.to_path_buf() }),
        }
        drop(meta);
        drop(txn);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opened by [`Store::open_existing`]: every write is refused.
    pub fn is_read_only(&self) -> bool {
        matches!(self.handle, Handle::ReadOnly(_))
    }

    /// Store a new sweep in one durable transaction: its input blobs (those
    /// already stored are kept as they are), its record and its empty
    /// aggregate. Refuses an id that is already taken.
    pub fn create_sweep(
        &self,
        record: &SweepRecord,
        blobs: &[(&str, &[u8])],
        empty: &Aggregate,
    ) -> Result<(), StoreError> {
        self.write("creating a sweep", |txn| {
            let mut sweeps = txn.open_table(SWEEPS).context("opening table `sweeps`")?;
            if sweeps.get(record.id.as_str()).context("reading table `sweeps`")?.is_some() {
                return Err(StoreError::SweepExists { id: record.id.to_string() });
            }
            let mut blob_table = txn.open_table(BLOBS).context("opening table `blobs`")?;
            for (hash, bytes) in blobs {
                // A hash names its content, so a stored blob is never rewritten.
                if blob_table.get(*hash).context("reading table `blobs`")?.is_none() {
                    blob_table.insert(*hash, *bytes).context("writing table `blobs`")?;
                }
            }
            sweeps.insert(record.id.as_str(), encode_record(record).as_slice()).context("writing table `sweeps`")?;
            let mut aggregates = txn.open_table(AGGREGATES).context("opening table `aggregates`")?;
            aggregates
                .insert(record.id.as_str(), encode_aggregate(empty).as_slice())
                .context("writing table `aggregates`")?;
            Ok(())
        })
    }

    /// The sequence number for the next sweep: one more than the largest
    /// stored, 0 when there is none.
    pub fn next_sequence(&self) -> Result<u64, StoreError> {
        Ok(self.sweeps()?.last().map_or(0, |record| record.sequence + 1))
    }

    /// A dataset or sweep specification by its content hash.
    pub fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let blobs = txn.open_table(BLOBS).context("opening table `blobs`")?;
        Ok(blobs.get(hash).context("reading table `blobs`")?.map(|bytes| bytes.value().to_vec()))
    }

    /// Every sweep, in submission order.
    pub fn sweeps(&self) -> Result<Vec<SweepRecord>, StoreError> {
        let txn = self.read()?;
        let sweeps = txn.open_table(SWEEPS).context("opening table `sweeps`")?;
        let mut records = Vec::new();
        for entry in sweeps.iter().context("reading table `sweeps`")? {
            let (key, value) = entry.context("reading table `sweeps`")?;
            records.push(decode_record(key.value(), value.value())?);
        }
        records.sort_by(|a, b| a.sequence.cmp(&b.sequence).then_with(|| a.id.cmp(&b.id)));
        Ok(records)
    }

    pub fn sweep(&self, id: &SweepId) -> Result<Option<SweepRecord>, StoreError> {
        let txn = self.read()?;
        let sweeps = txn.open_table(SWEEPS).context("opening table `sweeps`")?;
        let value = sweeps.get(id.as_str()).context("reading table `sweeps`")?;
        value.map(|value| decode_record(id.as_str(), value.value())).transpose()
    }

    /// The sweep's results merged so far.
    pub fn aggregate(&self, id: &SweepId) -> Result<Option<Aggregate>, StoreError> {
        let txn = self.read()?;
        let aggregates = txn.open_table(AGGREGATES).context("opening table `aggregates`")?;
        let value = aggregates.get(id.as_str()).context("reading table `aggregates`")?;
        value
            .map(|value| {
                decode_aggregate(value.value()).map_err(|error| StoreError::Corrupt {
                    table: "aggregates",
                    key: id.to_string(),
                    reason: error.to_string(),
                })
            })
            .transpose()
    }

    /// The aggregate of a stored sweep: every sweep is created with one, so
    /// a missing aggregate is corruption.
    pub fn stored_aggregate(&self, id: &SweepId) -> Result<Aggregate, StoreError> {
        self.aggregate(id)?.ok_or_else(|| StoreError::Corrupt {
            table: "aggregates",
            key: id.to_string(),
            reason: "the sweep has no stored aggregate".to_string(),
        })
    }

    /// The indices of the sweep's jobs whose results are merged, ascending.
    pub fn done_jobs(&self, id: &SweepId) -> Result<Vec<u32>, StoreError> {
        let id = id.as_str();
        let txn = self.read()?;
        let done = txn.open_table(DONE_JOBS).context("opening table `done_jobs`")?;
        let mut jobs = Vec::new();
        for entry in done.range((id, 0u32)..=(id, u32::MAX)).context("reading table `done_jobs`")? {
            let (key, _) = entry.context("reading table `done_jobs`")?;
            jobs.push(key.value().1);
        }
        Ok(jobs)
    }

    /// Record a batch of job results in one durable transaction (a group
    /// commit): for each entry, the sweep's new record and merged aggregate,
    /// and its newly done jobs. When an entry names a sweep more than once,
    /// the last entry's record and aggregate are the ones kept.
    ///
    /// Refuses the whole batch, writing nothing, if a job is already done (in
    /// the database or earlier in the batch), a job index is out of range, or
    /// a sweep does not exist: a result must never be merged twice.
    pub fn commit_batch(&self, batch: &[BatchEntry]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write("committing a batch of results", |txn| {
            let mut sweeps = txn.open_table(SWEEPS).context("opening table `sweeps`")?;
            let mut aggregates = txn.open_table(AGGREGATES).context("opening table `aggregates`")?;
            let mut done = txn.open_table(DONE_JOBS).context("opening table `done_jobs`")?;
            let mut deleted = Vec::new();
            for entry in batch {
                let id = entry.record.id.as_str();
                if sweeps.get(id).context("reading table `sweeps`")?.is_none() {
                    return Err(StoreError::UnknownSweep { id: id.to_string() });
                }
                if entry.delete {
                    sweeps.remove(id).context("writing table `sweeps`")?;
                    aggregates.remove(id).context("writing table `aggregates`")?;
                    done.retain_in((id, 0u32)..=(id, u32::MAX), |_, _| false).context("writing table `done_jobs`")?;
                    deleted.push(&entry.record);
                    continue;
                }
                for &job in &entry.newly_done {
                    if job >= entry.record.jobs {
                        return Err(StoreError::JobOutOfRange {
                            sweep_id: id.to_string(),
                            job,
                            jobs: entry.record.jobs,
                        });
                    }
                    // Inserts earlier in this transaction are visible here, so
                    // a job twice in the same batch is caught too.
                    if done.insert((id, job), ()).context("writing table `done_jobs`")?.is_some() {
                        return Err(StoreError::JobAlreadyDone { sweep_id: id.to_string(), job });
                    }
                }
                sweeps.insert(id, encode_record(&entry.record).as_slice()).context("writing table `sweeps`")?;
                if let Some(aggregate) = &entry.aggregate {
                    aggregates
                        .insert(id, encode_aggregate(aggregate).as_slice())
                        .context("writing table `aggregates`")?;
                }
            }
            if !deleted.is_empty() {
                // Blobs are shared by content: keep those a remaining sweep names.
                let mut used = std::collections::BTreeSet::new();
                for entry in sweeps.iter().context("reading table `sweeps`")? {
                    let (key, value) = entry.context("reading table `sweeps`")?;
                    let record = decode_record(key.value(), value.value())?;
                    used.extend([record.dataset_hash, record.config_hash, record.spec_hash]);
                }
                let mut blobs = txn.open_table(BLOBS).context("opening table `blobs`")?;
                for record in deleted {
                    for hash in [&record.dataset_hash, &record.config_hash, &record.spec_hash] {
                        if !used.contains(hash) {
                            blobs.remove(hash.as_str()).context("writing table `blobs`")?;
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Replace a sweep's record (a change of state, a reason), durably.
    pub fn update_sweep(&self, record: &SweepRecord) -> Result<(), StoreError> {
        self.write("updating a sweep", |txn| {
            let mut sweeps = txn.open_table(SWEEPS).context("opening table `sweeps`")?;
            if sweeps.get(record.id.as_str()).context("reading table `sweeps`")?.is_none() {
                return Err(StoreError::UnknownSweep { id: record.id.to_string() });
            }
            sweeps.insert(record.id.as_str(), encode_record(record).as_slice()).context("writing table `sweeps`")?;
            Ok(())
        })
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        match &self.handle {
            Handle::Writable(database) => database.begin_read(),
            Handle::ReadOnly(database) => database.begin_read(),
        }
        .context("beginning a read transaction")
    }

    /// Run `body` in one write transaction and commit it durably, or abort it
    /// (writing nothing) if `body` fails.
    fn write<T>(
        &self,
        operation: &'static str,
        body: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Handle::Writable(database) = &self.handle else {
            return Err(StoreError::ReadOnly { path: self.path.clone(), operation });
        };
        let mut txn = database.begin_write().context(operation)?;
        // Immediate is redb 3's default; it is set here because acknowledging
        // a result depends on it (ARCHITECTURE.md, invariant 2).
        txn.set_durability(Durability::Immediate).context(operation)?;
        match body(&txn) {
            Ok(value) => {
                txn.commit().context(operation)?;
                Ok(value)
            }
            Err(error) => {
                txn.abort().context(operation)?;
                Err(error)
            }
        }
    }
}

fn open_error(path: &Path, error: DatabaseError, hint: &'static str) -> StoreError {
    match error {
        DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.to_path_buf(), hint },
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == std::io::ErrorKind::NotFound => {
            StoreError::Missing { path: path.to_path_buf() }
        }
        error => StoreError::Database { context: format!("opening {}", path.display()), source: error.into() },
    }
}

fn encode_record(record: &SweepRecord) -> Vec<u8> {
    // Strings, integers, a unit enum and vectors of strings always serialize.
    serde_json::to_vec(record).expect("a sweep record serializes to JSON")
}

fn decode_record(key: &str, bytes: &[u8]) -> Result<SweepRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { table: "sweeps", key: key.to_string(), reason };
    let record: SweepRecord = serde_json::from_slice(bytes).map_err(|error| corrupt(error.to_string()))?;
    if record.id.as_str() != key {
        return Err(corrupt(format!("the record's id is `{}`", record.id)));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use zonesweep_proto::status::SweepState;
    use zonesweep_shared::sweep::aggregate::Shape;

    use super::*;

    fn id(text: &str) -> SweepId {
        SweepId::parse(text).unwrap()
    }

    fn shape() -> Shape {
        Shape { n_units: 2, n_zones: 3, base_year: 2020, milestone: 2030, horizon: 2060 }
    }

    fn record(id: &str, sequence: u64) -> SweepRecord {
        SweepRecord {
            id: self::id(id),
            sequence,
            dataset_hash: "d".repeat(64),
            config_hash: "c".repeat(64),
            spec_hash: "5".repeat(64),
            samples: 1000,
            seed: 42,
            job_size: 100,
            jobs: 10,
            state: SweepState::Running,
            reason: String::new(),
            unit_ids: vec!["110000".into(), "120000".into()],
            unit_names: vec!["Beijing".into(), "Tianjin".into()],
            submitted_unix: None,
            ended_unix: None,
            request_id: None,
        }
    }

    /// An aggregate that differs from the empty one, as after merging a job.
    fn merged(samples_ok: u64) -> Aggregate {
        let mut aggregate = Aggregate::empty(shape());
        aggregate.samples_ok = samples_ok;
        aggregate.zone_counts.row_mut(0)[0] = samples_ok;
        aggregate.add_failure(7, "singular", "ridge matrix is singular");
        aggregate
    }

    fn create(store: &Store, id: &str, sequence: u64) {
        let blobs: [(&str, &[u8]); 2] = [("aa11", b"dataset"), ("bb22", b"spec")];
        store.create_sweep(&record(id, sequence), &blobs, &Aggregate::empty(shape())).unwrap();
    }

    /// Change a stored value behind the store's back, as a bug or a disk could.
    fn poke(path: &Path, edit: impl FnOnce(&WriteTransaction)) {
        let database = Database::open(path).unwrap();
        let txn = database.begin_write().unwrap();
        edit(&txn);
        txn.commit().unwrap();
    }

    #[test]
    fn create_and_reopen_persists_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zonesweep.redb");
        {
            let store = Store::open(&path).unwrap();
            create(&store, "s1", 0);
            let mut progressed = record("s1", 0);
            progressed.state = SweepState::Done;
            store
                .commit_batch(&[BatchEntry {
                    record: progressed.clone(),
                    aggregate: Some(merged(200)),
                    newly_done: vec![3, 0],
                    delete: false,
                }])
                .unwrap();
            progressed.reason = "all jobs done".into();
            store.update_sweep(&progressed).unwrap();
        }
        let mut expected = record("s1", 0);
        expected.state = SweepState::Done;
        expected.reason = "all jobs done".into();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.sweep(&id("s1")).unwrap(), Some(expected.clone()));
        assert_eq!(store.sweeps().unwrap(), vec![expected.clone()]);
        assert_eq!(store.aggregate(&id("s1")).unwrap(), Some(merged(200)));
        assert_eq!(store.done_jobs(&id("s1")).unwrap(), vec![0, 3]);
        assert_eq!(store.blob("aa11").unwrap().as_deref(), Some(&b"dataset"[..]));
        assert_eq!(store.blob("bb22").unwrap().as_deref(), Some(&b"spec"[..]));
        assert_eq!(store.blob("cc33").unwrap(), None);
        assert_eq!(store.sweep(&id("nope")).unwrap(), None);
        assert_eq!(store.aggregate(&id("nope")).unwrap(), None);
        assert_eq!(store.done_jobs(&id("nope")).unwrap(), Vec::<u32>::new());
        drop(store);
        // The read-only query path sees the same.
        let query = Store::open_existing(&path).unwrap();
        assert!(query.is_read_only());
        assert_eq!(query.sweep(&id("s1")).unwrap(), Some(expected));
        assert_eq!(query.aggregate(&id("s1")).unwrap(), Some(merged(200)));
        assert_eq!(query.done_jobs(&id("s1")).unwrap(), vec![0, 3]);
    }

    #[test]
    fn done_jobs_of_one_sweep_do_not_include_another_with_a_prefix_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        create(&store, "s1", 0);
        create(&store, "s10", 1);
        store
            .commit_batch(&[BatchEntry {
                record: record("s1", 0),
                aggregate: Some(merged(1)),
                newly_done: vec![9],
                delete: false,
            }])
            .unwrap();
        store
            .commit_batch(&[BatchEntry {
                record: record("s10", 1),
                aggregate: Some(merged(1)),
                newly_done: vec![2],
                delete: false,
            }])
            .unwrap();
        assert_eq!(store.done_jobs(&id("s1")).unwrap(), vec![9]);
        assert_eq!(store.done_jobs(&id("s10")).unwrap(), vec![2]);
    }

    #[test]
    fn commit_batch_merges_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        create(&store, "a", 0);
        create(&store, "b", 1);
        store
            .commit_batch(&[BatchEntry {
                record: record("a", 0),
                aggregate: Some(merged(100)),
                newly_done: vec![1],
                delete: false,
            }])
            .unwrap();

        // A batch holding a new result for `b` and a repeat of `a`'s job 1 is
        // refused whole: `b`'s part is not written either.
        let mut changed_a = record("a", 0);
        changed_a.reason = "should not be stored".into();
        let error = store
            .commit_batch(&[
                BatchEntry { record: record("b", 1), aggregate: Some(merged(50)), newly_done: vec![0], delete: false },
                BatchEntry { record: changed_a, aggregate: Some(merged(999)), newly_done: vec![2, 1], delete: false },
            ])
            .unwrap_err();
        assert!(matches!(&error, StoreError::JobAlreadyDone { sweep_id, job: 1 } if sweep_id == "a"), "{error}");
        assert_eq!(store.sweep(&id("a")).unwrap(), Some(record("a", 0)));
        assert_eq!(store.aggregate(&id("a")).unwrap(), Some(merged(100)));
        assert_eq!(store.done_jobs(&id("a")).unwrap(), vec![1]);
        assert_eq!(store.aggregate(&id("b")).unwrap(), Some(Aggregate::empty(shape())));
        assert_eq!(store.done_jobs(&id("b")).unwrap(), Vec::<u32>::new());

        // The same job twice within one batch is refused as well.
        let error = store
            .commit_batch(&[BatchEntry {
                record: record("b", 1),
                aggregate: Some(merged(50)),
                newly_done: vec![4, 4],
                delete: false,
            }])
            .unwrap_err();
        assert!(matches!(error, StoreError::JobAlreadyDone { job: 4, .. }), "{error}");
        assert_eq!(store.done_jobs(&id("b")).unwrap(), Vec::<u32>::new());

        // A job index outside the sweep and an unknown sweep change nothing.
        let error = store
            .commit_batch(&[BatchEntry {
                record: record("b", 1),
                aggregate: Some(merged(50)),
                newly_done: vec![10],
                delete: false,
            }])
            .unwrap_err();
        assert!(matches!(error, StoreError::JobOutOfRange { job: 10, jobs: 10, .. }), "{error}");
        let error = store
            .commit_batch(&[BatchEntry {
                record: record("ghost", 2),
                aggregate: Some(merged(1)),
                newly_done: vec![0],
                delete: false,
            }])
            .unwrap_err();
        assert!(matches!(error, StoreError::UnknownSweep { .. }), "{error}");
        assert_eq!(store.sweep(&id("ghost")).unwrap(), None);
        assert!(matches!(store.update_sweep(&record("ghost", 2)), Err(StoreError::UnknownSweep { .. })));

        // After the refusals the store still takes a correct batch.
        store
            .commit_batch(&[BatchEntry {
                record: record("b", 1),
                aggregate: Some(merged(50)),
                newly_done: vec![0],
                delete: false,
            }])
            .unwrap();
        assert_eq!(store.done_jobs(&id("b")).unwrap(), vec![0]);
        assert_eq!(store.aggregate(&id("b")).unwrap(), Some(merged(50)));
    }

    #[test]
    fn blobs_are_stored_once_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        create(&store, "a", 0);
        // The second sweep shares the dataset and brings a new spec; bytes
        // offered again under a stored hash do not replace the stored ones.
        let blobs: [(&str, &[u8]); 2] = [("aa11", b"other bytes"), ("cc33", b"spec 2")];
        store.create_sweep(&record("b", 1), &blobs, &Aggregate::empty(shape())).unwrap();
        assert_eq!(store.blob("aa11").unwrap().as_deref(), Some(&b"dataset"[..]));
        assert_eq!(store.blob("cc33").unwrap().as_deref(), Some(&b"spec 2"[..]));
        let txn = store.read().unwrap();
        let blob_table = txn.open_table(BLOBS).unwrap();
        let hashes: Vec<String> =
            blob_table.iter().unwrap().map(|entry| entry.unwrap().0.value().to_string()).collect();
        assert_eq!(hashes, ["aa11", "bb22", "cc33"]);
    }

    #[test]
    fn create_sweep_refuses_an_existing_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        create(&store, "a", 0);
        store
            .commit_batch(&[BatchEntry {
                record: record("a", 0),
                aggregate: Some(merged(10)),
                newly_done: vec![0],
                delete: false,
            }])
            .unwrap();
        let blobs: [(&str, &[u8]); 1] = [("dd44", b"new")];
        let error = store.create_sweep(&record("a", 5), &blobs, &Aggregate::empty(shape())).unwrap_err();
        assert!(matches!(&error, StoreError::SweepExists { id } if id == "a"), "{error}");
        assert_eq!(store.sweep(&id("a")).unwrap(), Some(record("a", 0)));
        assert_eq!(store.aggregate(&id("a")).unwrap(), Some(merged(10)));
        assert_eq!(store.blob("dd44").unwrap(), None, "a refused sweep stores none of its blobs");
    }

    #[test]
    fn sequence_numbers_follow_submission_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.next_sequence().unwrap(), 0);
        assert_eq!(store.sweeps().unwrap(), vec![]);
        // Ids sort the other way from sequences, so the order must come from
        // the sequence, not the table's key order.
        for id in ["z", "m", "a"] {
            let sequence = store.next_sequence().unwrap();
            create(&store, id, sequence);
        }
        assert_eq!(store.next_sequence().unwrap(), 3);
        let order: Vec<(String, u64)> =
            store.sweeps().unwrap().into_iter().map(|r| (r.id.to_string(), r.sequence)).collect();
        assert_eq!(order, [("z".to_string(), 0), ("m".to_string(), 1), ("a".to_string(), 2)]);
        drop(store);
        assert_eq!(Store::open(&path).unwrap().next_sequence().unwrap(), 3, "numbering carries on after a restart");
    }

    #[test]
    fn open_existing_refuses_a_missing_file_without_creating_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.redb");
        let error = Store::open_existing(&path).unwrap_err();
        assert!(matches!(error, StoreError::Missing { .. }), "{error}");
        assert!(error.to_string().contains("absent.redb"), "{error}");
        assert!(!path.exists());
    }

    #[test]
    fn a_query_is_told_when_a_coordinator_holds_the_database_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let coordinator = Store::open(&path).unwrap();
        create(&coordinator, "a", 0);
        let error = Store::open_existing(&path).unwrap_err();
        assert!(matches!(error, StoreError::InUse { .. }), "{error}");
        let message = error.to_string();
        assert!(message.contains("in use by another process"), "{message}");
        assert!(message.contains("--coordinator"), "{message}");
        drop(coordinator);

        let query = Store::open_existing(&path).unwrap();
        let second_query = Store::open_existing(&path).unwrap();
        assert_eq!(second_query.sweeps().unwrap().len(), 1);
        let error = query.update_sweep(&record("a", 0)).unwrap_err();
        assert!(matches!(error, StoreError::ReadOnly { operation: "updating a sweep", .. }), "{error}");
        let error = Store::open(&path).unwrap_err();
        assert!(matches!(error, StoreError::InUse { .. }), "a coordinator waits for queries to end: {error}");
    }

    #[test]
    fn open_existing_recovers_a_database_whose_coordinator_was_killed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let crashed = dir.path().join("crashed.redb");
        let store = Store::open(&path).unwrap();
        create(&store, "a", 0);
        store
            .commit_batch(&[BatchEntry {
                record: record("a", 0),
                aggregate: Some(merged(7)),
                newly_done: vec![5],
                delete: false,
            }])
            .unwrap();
        // A copy taken while the store is open is what a kill -9 leaves: every
        // durable commit, but no clean shutdown.
        std::fs::copy(&path, &crashed).unwrap();
        drop(store);
        assert!(
            matches!(ReadOnlyDatabase::open(&crashed), Err(DatabaseError::RepairAborted)),
            "the copy needs recovery, so this test takes the repair path"
        );
        let query = Store::open_existing(&crashed).unwrap();
        assert!(query.is_read_only());
        assert_eq!(query.aggregate(&id("a")).unwrap(), Some(merged(7)));
        assert_eq!(query.done_jobs(&id("a")).unwrap(), vec![5]);
    }

    #[test]
    fn another_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        drop(Store::open(&path).unwrap());
        poke(&path, |txn| {
            txn.open_table(META).unwrap().insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION + 1).unwrap();
        });
        for error in [Store::open(&path).unwrap_err(), Store::open_existing(&path).unwrap_err()] {
            assert!(
                matches!(error, StoreError::SchemaVersion { found, supported: SCHEMA_VERSION, .. } if found == SCHEMA_VERSION + 1),
                "{error}"
            );
            assert!(error.to_string().contains("newer zonesweep"), "{error}");
        }
        // The refusal changed nothing: the file still says the newer version.
        let database = ReadOnlyDatabase::open(&path).unwrap();
        let txn = database.begin_read().unwrap();
        let version = txn.open_table(META).unwrap().get(SCHEMA_VERSION_KEY).unwrap().unwrap().value();
        assert_eq!(version, SCHEMA_VERSION + 1);
    }

    #[test]
    fn a_foreign_redb_file_is_not_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.redb");
        const OTHER: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("other");
        drop(Database::create(&path).unwrap());
        poke(&path, |txn| {
            txn.open_table(OTHER).unwrap().insert(1, 2).unwrap();
        });
        for error in [Store::open(&path).unwrap_err(), Store::open_existing(&path).unwrap_err()] {
            assert!(matches!(error, StoreError::NotZonesweep { .. }), "{error}");
        }
    }

    #[test]
    fn a_corrupt_value_is_an_error_naming_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            create(&store, "good", 0);
            create(&store, "bad-record", 1);
            create(&store, "bad-aggregate", 2);
        }
        poke(&path, |txn| {
            let mut sweeps = txn.open_table(SWEEPS).unwrap();
            sweeps.insert("bad-record", &b"{\"id\": \"bad-record\", \"seq"[..]).unwrap();
            let mut aggregates = txn.open_table(AGGREGATES).unwrap();
            aggregates.insert("bad-aggregate", &[0xff, 0xff, 0xff][..]).unwrap();
        });
        let store = Store::open(&path).unwrap();
        let error = store.sweep(&id("bad-record")).unwrap_err();
        assert!(matches!(&error, StoreError::Corrupt { table: "sweeps", key, .. } if key == "bad-record"), "{error}");
        assert!(error.to_string().contains("`bad-record`"), "{error}");
        let error = store.sweeps().unwrap_err();
        assert!(matches!(&error, StoreError::Corrupt { key, .. } if key == "bad-record"), "{error}");
        let error = store.aggregate(&id("bad-aggregate")).unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { table: "aggregates", key, .. } if key == "bad-aggregate"),
            "{error}"
        );
        assert_eq!(store.sweep(&id("good")).unwrap(), Some(record("good", 0)));
        assert_eq!(store.aggregate(&id("good")).unwrap(), Some(Aggregate::empty(shape())));
    }

    #[test]
    fn errors_say_whether_trying_again_can_help() {
        let io = redb::Error::Io(std::io::Error::other("disk unplugged"));
        let database = |source| StoreError::Database { context: "committing".into(), source };
        assert_eq!(database(io).cause(), StoreCause::Transient);
        assert_eq!(database(redb::Error::PreviousIo).cause(), StoreCause::Transient);
        assert_eq!(database(redb::Error::Corrupted("bad page".into())).cause(), StoreCause::Corrupt);
        assert_eq!(database(redb::Error::ValueTooLarge(1 << 40)).cause(), StoreCause::Refused);
        let corrupt = StoreError::Corrupt { table: "sweeps", key: "a".into(), reason: "truncated".into() };
        assert_eq!(corrupt.cause(), StoreCause::Corrupt);
        assert_eq!(StoreError::JobAlreadyDone { sweep_id: "a".into(), job: 1 }.cause(), StoreCause::Refused);
        assert_eq!(StoreError::UnknownSweep { id: "a".into() }.cause(), StoreCause::Missing);
        let path = PathBuf::from("db.redb");
        assert_eq!(StoreError::InUse { path: path.clone(), hint: "" }.cause(), StoreCause::Transient);
        assert_eq!(StoreError::SchemaVersion { path, found: 9, supported: 1 }.cause(), StoreCause::Unusable);
    }

    #[test]
    fn a_record_stored_under_another_id_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        drop(Store::open(&path).unwrap());
        poke(&path, |txn| {
            let bytes = encode_record(&record("a", 0));
            txn.open_table(SWEEPS).unwrap().insert("b", bytes.as_slice()).unwrap();
        });
        let error = Store::open(&path).unwrap().sweep(&id("b")).unwrap_err();
        assert!(matches!(&error, StoreError::Corrupt { key, .. } if key == "b"), "{error}");
    }
}
