//! The coordinator's storage: a small synchronous API over one redb file.
//!
//! Every method runs one redb transaction and returns; async code calls them
//! through `tokio::task::spawn_blocking`. Every write commits with
//! [`Durability::Immediate`], so when a method returns `Ok` its effect
//! survives a crash. [`Store::commit_batch`] writes a whole batch of job
//! results in one such commit (group commit), so the cost of an fsync is
//! shared by every result in the batch.
//!
//! Damage is reported, never served: a sweep record and a stored aggregate
//! carry a SHA-256 checksum of their bytes and are checked against it on
//! every read, an aggregate also against its own invariants ([`Aggregate::check_consistency`]), on every read;
//! [`Store::load_sweep`] also checks it against the sweep's done jobs. A
//! panic of redb on a damaged file becomes [`StoreError::Damaged`]. After an
//! I/O error on a write (a full disk) the store remembers the trouble
//! ([`Store::trouble`]) until [`Store::reopen`] opens the file again.
//!
//! The file and its tables are created with mode 0600. The tables and
//! their key and value layouts are in [`crate::schema`].

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError, RwLock};

use redb::{
    Builder, Database, DatabaseError, Durability, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    StorageError, TableError, TableHandle, WriteTransaction,
};
use sha2::{Digest, Sha256};
use zonesweep_proto::convert::{decode_aggregate, encode_aggregate_packed};
use zonesweep_proto::ids::SweepId;
use zonesweep_shared::sweep::aggregate::Aggregate;

use crate::schema::{
    AGGREGATES, BLOBS, CHECKSUM_LEN, DELTAS, DONE_JOBS, FIRST_REGIONAL_VERSION, META, SCHEMA_VERSION,
    SCHEMA_VERSION_KEY, SWEEPS, VERSION_BEFORE_DELTAS, VERSION_BEFORE_PACKED,
};
use crate::sweep::SweepRecord;

/// One sweep's share of a group commit: its new record, the merge of the
/// results it newly merges (`delta`) and those jobs' indices, and perhaps a
/// new checkpoint; or, with `delete`, the sweep's removal.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchEntry {
    pub record: SweepRecord,
    /// The sweep's merged results are replaced by these (a resumed or
    /// extended sweep's, read from the store): written as its checkpoint.
    pub aggregate: Option<Aggregate>,
    /// The sweep's merged results before this batch, written as its
    /// checkpoint (its deltas so far removed) to keep them few; the batch's
    /// `delta` is stored after it.
    pub base: Option<Arc<Aggregate>>,
    /// The merge of the results this batch newly merges into the sweep.
    pub delta: Option<Aggregate>,
    pub newly_done: Vec<u32>,
    /// Remove the sweep: its record, aggregate and done jobs, and every
    /// blob no other sweep uses.
    pub delete: bool,
}

/// A stored sweep record that does not decode: its key and why.
#[derive(Debug)]
pub struct Unreadable {
    pub key: String,
    pub error: StoreError,
}

/// What opening a locked database tells a coordinator.
const HINT_FOR_COORDINATOR: &str = "is another coordinator, or a query of this file, running on it?";
/// What opening a locked database tells a query.
const HINT_FOR_QUERY: &str = "is a coordinator running on it? query it with --coordinator instead";
/// What to do about a damaged file.
const DAMAGED_ADVICE: &str =
    "restore it from a backup, or move it away (the coordinator then starts with an empty database)";

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}: {source}{}", damage_advice(source))]
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
    #[error("database {} is damaged ({detail}, while {context}): {DAMAGED_ADVICE}", path.display())]
    Damaged { path: PathBuf, context: String, detail: String },
    #[error(
        "database {} is an empty file (0 bytes), not a zonesweep database: restore it from a backup, or remove it to start with an empty database",
        path.display()
    )]
    Empty { path: PathBuf },
    #[error(
        "database {} was not closed cleanly (its coordinator was killed or lost power) and needs a repair, which a query never makes: start the coordinator on it once (it repairs the file as it opens), then query it with --coordinator, or stop it and query the file again",
        path.display()
    )]
    NeedsRepair { path: PathBuf },
    #[error(
        "database {} is closed after an I/O error ({trouble}); the coordinator reopens it as soon as writing works again (free some disk space)",
        path.display()
    )]
    Closed { path: PathBuf, trouble: String },
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
    /// Stored bytes that do not decode or fail their checks, or a file redb
    /// finds damaged: trying again reads the same bytes.
    Corrupt,
    /// A file of another schema version, not a zonesweep database, empty,
    /// in need of a repair, or open read-only: an operator has to act.
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
            StoreError::InUse { .. } | StoreError::Closed { .. } => StoreCause::Transient,
            StoreError::Corrupt { .. } | StoreError::Damaged { .. } => StoreCause::Corrupt,
            StoreError::NotZonesweep { .. }
            | StoreError::SchemaVersion { .. }
            | StoreError::ReadOnly { .. }
            | StoreError::Empty { .. }
            | StoreError::NeedsRepair { .. } => StoreCause::Unusable,
            StoreError::Missing { .. } | StoreError::UnknownSweep { .. } => StoreCause::Missing,
            StoreError::SweepExists { .. } => StoreCause::Exists,
            StoreError::JobAlreadyDone { .. } | StoreError::JobOutOfRange { .. } => StoreCause::Refused,
        }
    }

    /// An input/output error of redb: after one, redb refuses every write
    /// until the database is reopened.
    fn is_io(&self) -> bool {
        matches!(self, StoreError::Database { source: redb::Error::Io(_) | redb::Error::PreviousIo, .. })
    }
}

fn redb_cause(error: &redb::Error) -> StoreCause {
    use redb::Error as E;
    match error {
        // After an IO error redb refuses every write until the database is
        // reopened, which the coordinator does once writing works again.
        E::Io(_) | E::PreviousIo | E::DatabaseAlreadyOpen | E::RepairAborted | E::DatabaseClosed => {
            StoreCause::Transient
        }
        // A poisoned lock follows a panic inside redb, which a damaged file causes.
        E::Corrupted(_)
        | E::LockPoisoned(_)
        | E::TableTypeMismatch { .. }
        | E::TypeDefinitionChanged { .. }
        | E::TableIsMultimap(_)
        | E::TableIsNotMultimap(_)
        | E::TableDoesNotExist(_) => StoreCause::Corrupt,
        E::UpgradeRequired(_) => StoreCause::Unusable,
        _ => StoreCause::Refused,
    }
}

fn damage_advice(error: &redb::Error) -> String {
    if redb_cause(error) == StoreCause::Corrupt {
        format!("; the file is damaged: {DAMAGED_ADVICE}")
    } else {
        String::new()
    }
}

fn version_advice(found: u64, supported: u64) -> &'static str {
    if found > supported {
        "it was written by a newer zonesweep; use that release"
    } else if found < FIRST_REGIONAL_VERSION {
        "it was written by an older zonesweep, whose aggregates lack the regional counts (the region's peak year \
         and the units per zone) this version keeps and cannot rebuild from them; query it with the release that \
         wrote it, or run its sweeps again into a new database"
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

thread_local! {
    /// Set while this thread runs a [`guarded`] body, whose panic becomes an error.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic of this thread happened.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keep panics caught by [`guarded`] off stderr (the error reports them);
/// any other panic is printed as before.
fn quiet_guarded_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                // The path inside redb's sources, without the registry's.
                let location = info.location().map(|l| {
                    let file = l.file();
                    let short = file.find("redb-").map_or(file, |at| &file[at..]);
                    format!("{short}:{}", l.line())
                });
                PANIC_LOCATION.with(|cell| *cell.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Run `body`, turning a panic (redb panics on some damaged files) into
/// [`StoreError::Damaged`].
fn guarded<T>(path: &Path, context: &str, body: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    quiet_guarded_panics();
    let outer = GUARDED.with(|flag| flag.replace(true));
    let result = catch_unwind(AssertUnwindSafe(body));
    GUARDED.with(|flag| flag.set(outer));
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "an unexpected value".to_owned());
        let location = PANIC_LOCATION.with(|cell| cell.borrow_mut().take());
        let detail = match location {
            Some(location) => format!("redb failed at {location}: {message}"),
            None => format!("redb failed: {message}"),
        };
        Err(StoreError::Damaged { path: path.to_path_buf(), context: context.to_owned(), detail })
    })
}

/// Close a database. redb's `Database` commits its allocator state when
/// dropped, and on some damaged files panics doing so: that panic is caught
/// here like any other of redb's, and what it says is dropped with it (the
/// operation that found the damage has already reported it).
fn close(path: &Path, handle: Option<Handle>) {
    let _ = guarded(path, "closing the database", || {
        drop(handle);
        Ok(())
    });
}

enum Handle {
    Writable(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// How the `sweeps` and `aggregates` tables store a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Since schema version 2: the SHA-256 of the value, then the value.
    Checksummed,
}

/// The coordinator's database. `Send + Sync`: share it in an `Arc` and call
/// it from `spawn_blocking`.
pub struct Store {
    path: PathBuf,
    /// `None` while the database is closed after an I/O error and could
    /// not be opened again yet.
    handle: RwLock<Option<Handle>>,
    format: Format,
    /// The I/O error that made writing fail, until the database is reopened.
    trouble: Mutex<Option<String>>,
    /// The sequence number of the next delta: above every stored one.
    next_delta: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("read_only", &self.is_read_only()).finish()
    }
}

/// Open (or create, with mode 0600) the coordinator's file for writing.
/// An empty file is refused: it is what a failed copy or a full disk
/// leaves, and taking it for a new database would hide the loss.
fn open_writable(path: &Path) -> Result<Database, StoreError> {
    guarded(path, "opening the database", || {
        let created = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path);
        let (file, new) = match created {
            Ok(file) => (file, true),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|error| open_error(path, error.into(), HINT_FOR_COORDINATOR))?;
                if file.metadata().context(&format!("reading the size of {}", path.display()))?.len() == 0 {
                    return Err(StoreError::Empty { path: path.to_path_buf() });
                }
                // A file written by an older zonesweep may be readable by
                // others; it holds every dataset submitted. Best effort: a
                // file of another owner keeps its mode.
                let _ = file.set_permissions(Permissions::from_mode(0o600));
                (file, false)
            }
            Err(error) => return Err(open_error(path, error.into(), HINT_FOR_COORDINATOR)),
        };
        let opened = Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_file(file)
            .map_err(|error| open_error(path, error, HINT_FOR_COORDINATOR));
        if opened.is_err() && new {
            // Do not leave an empty file behind, which the next start refuses.
            let _ = std::fs::remove_file(path);
        }
        opened
    })
}

/// The memory redb may keep of the file's pages (its default is 1 GiB, which
/// a coordinator that has stored many sweeps would fill and keep).
const CACHE_BYTES: usize = 64 << 20;

/// Open an existing file read-only; a file in need of a repair is refused.
fn open_read_only(path: &Path) -> Result<ReadOnlyDatabase, StoreError> {
    guarded(path, "opening the database", || {
        let file = File::open(path).map_err(|error| open_error(path, error.into(), HINT_FOR_QUERY))?;
        if file.metadata().context(&format!("reading the size of {}", path.display()))?.len() == 0 {
            return Err(StoreError::Empty { path: path.to_path_buf() });
        }
        drop(file);
        match Builder::new().set_cache_size(CACHE_BYTES).open_read_only(path) {
            Ok(database) => Ok(database),
            Err(DatabaseError::RepairAborted) => Err(StoreError::NeedsRepair { path: path.to_path_buf() }),
            Err(error) => Err(open_error(path, error, HINT_FOR_QUERY)),
        }
    })
}

impl Drop for Store {
    fn drop(&mut self) {
        let handle = self.handle.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        close(&self.path, handle);
    }
}

impl Store {
    /// Open the coordinator's database, creating the file (mode 0600) and
    /// its tables if they are missing; a file that was not closed cleanly is
    /// repaired by redb as it opens. A file of schema version 1 is migrated
    /// to version 2 (a checksum added to every stored aggregate, in one
    /// transaction). A file of another schema version, a redb file that is
    /// not a zonesweep database, an empty file or a damaged one is refused
    /// and left untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let database = open_writable(path)?;
        let store = Store {
            path: path.to_path_buf(),
            handle: RwLock::new(Some(Handle::Writable(database))),
            format: Format::Checksummed,
            trouble: Mutex::new(None),
            next_delta: AtomicU64::new(0),
        };
        store.prepare()?;
        Ok(store)
    }

    /// Check the schema version, create missing tables, migrate an older file.
    fn prepare(&self) -> Result<(), StoreError> {
        let path = &self.path;
        self.write("preparing the tables", |txn| {
            // A file with tables but no `meta` was written by something else;
            // giving it a schema version would claim it.
            let names: Vec<String> =
                txn.list_tables().context("listing tables")?.map(|table| table.name().to_string()).collect();
            let mut meta = txn.open_table(META).context("opening table `meta`")?;
            let found = meta.get(SCHEMA_VERSION_KEY).context("reading the schema version")?.map(|v| v.value());
            match found {
                Some(found) if found == SCHEMA_VERSION => {}
                // The same tables (but for the deltas, created below),
                // their aggregates listed, which this version reads as well.
                Some(VERSION_BEFORE_DELTAS | VERSION_BEFORE_PACKED) => {
                    meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION).context("recording the schema version")?;
                }
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
            let deltas = txn.open_table(DELTAS).context("creating table `deltas`")?;
            let mut next = 0;
            for entry in deltas.iter().context("reading table `deltas`")? {
                let (key, _) = entry.context("reading table `deltas`")?;
                next = next.max(key.value().1 + 1);
            }
            self.next_delta.fetch_max(next, Ordering::SeqCst);
            Ok(())
        })
    }

    /// Open an existing database read-only, for queries while no coordinator
    /// runs on it. Never writes: refuses (and creates nothing) when the file
    /// is missing or empty, says so when a coordinator holds it, and refuses
    /// a file that needs a repair (one whose coordinator was killed) rather
    /// than repairing it; the coordinator repairs it when it starts on it.
    /// Several queries may read at once. A file of schema version 1 is read
    /// as it is (its aggregates have no checksums; their other checks hold).
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.try_exists().unwrap_or(true) {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        let database = open_read_only(path)?;
        let store = Store {
            path: path.to_path_buf(),
            handle: RwLock::new(Some(Handle::ReadOnly(database))),
            format: Format::Checksummed,
            trouble: Mutex::new(None),
            next_delta: AtomicU64::new(0),
        };
        let found = store.guarded("reading the schema version", || {
            let txn = store.read()?;
            let meta = match txn.open_table(META) {
                Ok(meta) => meta,
                Err(TableError::TableDoesNotExist(_)) => {
                    return Err(StoreError::NotZonesweep { path: path.to_path_buf() });
                }
                Err(error) => return Err(error).context("opening table `meta`"),
            };
            let found = meta.get(SCHEMA_VERSION_KEY).context("reading the schema version")?.map(|v| v.value());
            Ok(found)
        })?;
        match found {
            // Version 3 and 4 files are read as they are (version 3 has no
            // deltas; both hold listed aggregates, which read the same).
            Some(found)
                if found == SCHEMA_VERSION || found == VERSION_BEFORE_DELTAS || found == VERSION_BEFORE_PACKED => {}
            Some(found) => {
                return Err(StoreError::SchemaVersion { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
            }
            None => return Err(StoreError::NotZonesweep { path: path.to_path_buf() }),
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opened by [`Store::open_existing`]: every write is refused.
    pub fn is_read_only(&self) -> bool {
        matches!(*self.handle.read().unwrap_or_else(PoisonError::into_inner), Some(Handle::ReadOnly(_)))
    }

    /// The I/O error that made a write fail, while the database has not been
    /// reopened since; `None` while writing works.
    pub fn trouble(&self) -> Option<String> {
        self.trouble.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Close the database and open it again (redb refuses every write after
    /// an I/O error until then), repairing it if it needs it; on success
    /// the trouble is cleared. While this fails the database stays closed
    /// and every call answers [`StoreError::Closed`], which is transient.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut handle = self.handle.write().unwrap_or_else(PoisonError::into_inner);
        if matches!(*handle, Some(Handle::ReadOnly(_))) {
            return Err(StoreError::ReadOnly { path: self.path.clone(), operation: "reopening" });
        }
        // Dropping the old handle closes the file and releases its lock.
        close(&self.path, handle.take());
        *handle = Some(Handle::Writable(open_writable(&self.path)?));
        drop(handle);
        // Writing a transaction is the proof that writing works again.
        self.prepare()?;
        *self.trouble.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    fn guarded<T>(&self, context: &str, body: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        guarded(&self.path, context, body)
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
                .insert(record.id.as_str(), encode_stored_aggregate(empty).as_slice())
                .context("writing table `aggregates`")?;
            Ok(())
        })
    }

    /// The sequence number for the next sweep: one more than the largest
    /// stored, 0 when there is none (records that do not decode are skipped).
    pub fn next_sequence(&self) -> Result<u64, StoreError> {
        let (records, _) = self.sweep_entries()?;
        Ok(records.iter().map(|record| record.sequence + 1).max().unwrap_or(0))
    }

    /// Store a blob under its content hash (kept as it is if stored).
    pub fn put_blob(&self, hash: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write("storing a blob", |txn| {
            let mut blobs = txn.open_table(BLOBS).context("opening table `blobs`")?;
            if blobs.get(hash).context("reading table `blobs`")?.is_none() {
                blobs.insert(hash, bytes).context("writing table `blobs`")?;
            }
            Ok(())
        })
    }

    /// A dataset or sweep specification by its content hash.
    pub fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.guarded("reading table `blobs`", || {
            let txn = self.read()?;
            let blobs = txn.open_table(BLOBS).context("opening table `blobs`")?;
            Ok(blobs.get(hash).context("reading table `blobs`")?.map(|bytes| bytes.value().to_vec()))
        })
    }

    /// Every sweep, in submission order; the first record that does not
    /// decode is an error.
    pub fn sweeps(&self) -> Result<Vec<SweepRecord>, StoreError> {
        let (records, unreadable) = self.sweep_entries()?;
        match unreadable.into_iter().next() {
            Some(Unreadable { error, .. }) => Err(error),
            None => Ok(records),
        }
    }

    /// Every sweep record that decodes, in submission order, and apart
    /// those that do not, so one damaged record hides no other sweep.
    pub fn sweep_entries(&self) -> Result<(Vec<SweepRecord>, Vec<Unreadable>), StoreError> {
        self.guarded("reading table `sweeps`", || {
            let txn = self.read()?;
            let sweeps = txn.open_table(SWEEPS).context("opening table `sweeps`")?;
            let mut records = Vec::new();
            let mut unreadable = Vec::new();
            for entry in sweeps.iter().context("reading table `sweeps`")? {
                let (key, value) = entry.context("reading table `sweeps`")?;
                match decode_record(self.format, key.value(), value.value()) {
                    Ok(record) => records.push(record),
                    Err(error) => unreadable.push(Unreadable { key: key.value().to_string(), error }),
                }
            }
            records.sort_by(|a, b| a.sequence.cmp(&b.sequence).then_with(|| a.id.cmp(&b.id)));
            Ok((records, unreadable))
        })
    }

    pub fn sweep(&self, id: &SweepId) -> Result<Option<SweepRecord>, StoreError> {
        self.guarded("reading table `sweeps`", || {
            let txn = self.read()?;
            let sweeps = txn.open_table(SWEEPS).context("opening table `sweeps`")?;
            let value = sweeps.get(id.as_str()).context("reading table `sweeps`")?;
            value.map(|value| decode_record(self.format, id.as_str(), value.value())).transpose()
        })
    }

    /// The sweep's results merged so far, checked against their checksum
    /// and their own invariants: a value that fails is
    /// [`StoreError::Corrupt`], never a different answer.
    pub fn aggregate(&self, id: &SweepId) -> Result<Option<Aggregate>, StoreError> {
        Ok(self.aggregate_and_deltas(id)?.map(|(aggregate, _)| aggregate))
    }

    /// The sweep's checkpoint with every one of its deltas merged in (one
    /// read transaction, so a commit cannot fall between them), and the
    /// number of deltas; each checked against its checksum and invariants.
    pub fn aggregate_and_deltas(&self, id: &SweepId) -> Result<Option<(Aggregate, u32)>, StoreError> {
        self.guarded("reading table `aggregates`", || {
            let txn = self.read()?;
            let aggregates = txn.open_table(AGGREGATES).context("opening table `aggregates`")?;
            let value = aggregates.get(id.as_str()).context("reading table `aggregates`")?;
            let Some(mut aggregate) = value
                .map(|value| decode_stored_aggregate(self.format, "aggregates", id.as_str(), value.value()))
                .transpose()?
            else {
                return Ok(None);
            };
            let deltas = match txn.open_table(DELTAS) {
                Ok(deltas) => deltas,
                // A version 3 file, read as it is by a query: no deltas.
                Err(TableError::TableDoesNotExist(_)) => return Ok(Some((aggregate, 0))),
                Err(error) => return Err(error).context("opening table `deltas`"),
            };
            let mut count = 0u32;
            let key = id.as_str();
            for entry in deltas.range((key, 0u64)..=(key, u64::MAX)).context("reading table `deltas`")? {
                let (k, value) = entry.context("reading table `deltas`")?;
                let name = format!("{key}/{}", k.value().1);
                let delta = decode_stored_aggregate(self.format, "deltas", &name, value.value())?;
                aggregate.merge(&delta).map_err(|error| StoreError::Corrupt {
                    table: "deltas",
                    key: name,
                    reason: format!("it does not merge into the sweep's checkpoint: {error}"),
                })?;
                count += 1;
            }
            Ok(Some((aggregate, count)))
        })
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

    /// A stored sweep's aggregate and done jobs, checked against each other
    /// and against its record: the aggregate has a row per unit and counts
    /// exactly the samples of the done jobs, and every done job exists.
    pub fn load_sweep(&self, record: &SweepRecord) -> Result<(Aggregate, Vec<u32>), StoreError> {
        let (aggregate, done, _) = self.load_sweep_with_deltas(record)?;
        Ok((aggregate, done))
    }

    /// [`Store::load_sweep`], and how many deltas its aggregate was
    /// replayed from.
    pub fn load_sweep_with_deltas(&self, record: &SweepRecord) -> Result<(Aggregate, Vec<u32>, u32), StoreError> {
        let id = &record.id;
        let (aggregate, deltas) = self.aggregate_and_deltas(id)?.ok_or_else(|| StoreError::Corrupt {
            table: "aggregates",
            key: id.to_string(),
            reason: "the sweep has no stored aggregate".to_string(),
        })?;
        let done = self.done_jobs(id)?;
        let corrupt = |table, reason| StoreError::Corrupt { table, key: id.to_string(), reason };
        if let Some(&job) = done.iter().find(|&&job| job >= record.jobs) {
            return Err(corrupt("done_jobs", format!("job {job} is done, but the sweep has {} jobs", record.jobs)));
        }
        if aggregate.shape.n_units != record.unit_ids.len() {
            let reason = format!(
                "the aggregate is shaped for {} units, but the sweep has {}",
                aggregate.shape.n_units,
                record.unit_ids.len()
            );
            return Err(corrupt("aggregates", reason));
        }
        let expected: u64 = done.iter().map(|&job| record.job_samples(job)).sum();
        if aggregate.samples_total() != expected {
            let reason = format!(
                "the aggregate counts {} samples, but the {} done jobs cover {expected}",
                aggregate.samples_total(),
                done.len()
            );
            return Err(corrupt("aggregates", reason));
        }
        Ok((aggregate, done, deltas))
    }

    /// The indices of the sweep's jobs whose results are merged, ascending.
    pub fn done_jobs(&self, id: &SweepId) -> Result<Vec<u32>, StoreError> {
        let id = id.as_str();
        self.guarded("reading table `done_jobs`", || {
            let txn = self.read()?;
            let done = txn.open_table(DONE_JOBS).context("opening table `done_jobs`")?;
            let mut jobs = Vec::new();
            for entry in done.range((id, 0u32)..=(id, u32::MAX)).context("reading table `done_jobs`")? {
                let (key, _) = entry.context("reading table `done_jobs`")?;
                jobs.push(key.value().1);
            }
            Ok(jobs)
        })
    }

    /// Record a batch of job results in one durable transaction (a group
    /// commit): for each entry, the sweep's new record, its newly done jobs
    /// and the delta of their results, after a new checkpoint when the
    /// entry brings one (replacing the sweep's deltas so far). When an entry
    /// names a sweep more than once, the last entry's record is kept.
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
            let mut deltas = txn.open_table(DELTAS).context("opening table `deltas`")?;
            let mut deleted = Vec::new();
            for entry in batch {
                let id = entry.record.id.as_str();
                if sweeps.get(id).context("reading table `sweeps`")?.is_none() {
                    return Err(StoreError::UnknownSweep { id: id.to_string() });
                }
                if entry.delete {
                    sweeps.remove(id).context("writing table `sweeps`")?;
                    aggregates.remove(id).context("writing table `aggregates`")?;
                    deltas.retain_in((id, 0u64)..=(id, u64::MAX), |_, _| false).context("writing table `deltas`")?;
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
                // A new checkpoint holds every delta stored so far: they go
                // in the same transaction, so none is ever replayed twice.
                if let Some(checkpoint) = entry.aggregate.as_ref().or(entry.base.as_deref()) {
                    aggregates
                        .insert(id, encode_stored_aggregate(checkpoint).as_slice())
                        .context("writing table `aggregates`")?;
                    deltas.retain_in((id, 0u64)..=(id, u64::MAX), |_, _| false).context("writing table `deltas`")?;
                }
                if let Some(delta) = &entry.delta {
                    let sequence = self.next_delta.fetch_add(1, Ordering::SeqCst);
                    deltas
                        .insert((id, sequence), encode_stored_aggregate(delta).as_slice())
                        .context("writing table `deltas`")?;
                }
            }
            if !deleted.is_empty() {
                // Blobs are shared by content: keep those a remaining sweep names.
                let mut used = std::collections::BTreeSet::new();
                // A record that does not decode names blobs we cannot know:
                // then every blob is kept.
                let mut all_known = true;
                for entry in sweeps.iter().context("reading table `sweeps`")? {
                    let (key, value) = entry.context("reading table `sweeps`")?;
                    match decode_record(Format::Checksummed, key.value(), value.value()) {
                        Ok(record) => used.extend([record.dataset_hash, record.config_hash, record.spec_hash]),
                        Err(_) => all_known = false,
                    }
                }
                let mut blobs = txn.open_table(BLOBS).context("opening table `blobs`")?;
                for record in deleted.into_iter().filter(|_| all_known) {
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

    /// Write a sweep's stored record and aggregate back as they are, in one
    /// durable transaction. Their bytes stay what they were (a quarantined
    /// sweep keeps its damaged data for inspection), but the pages holding
    /// them are written afresh, so redb's own page checksums are whole again:
    /// otherwise the repair that follows a crash would stop at the damaged
    /// page and refuse the whole file.
    pub fn reseal(&self, id: &SweepId) -> Result<(), StoreError> {
        self.write("rewriting a damaged sweep's pages", |txn| {
            for (definition, name) in [(SWEEPS, "sweeps"), (AGGREGATES, "aggregates")] {
                let mut table = txn.open_table(definition).context(&format!("opening table `{name}`"))?;
                let bytes = table
                    .get(id.as_str())
                    .context(&format!("reading table `{name}`"))?
                    .map(|value| value.value().to_vec());
                if let Some(bytes) = bytes {
                    table.insert(id.as_str(), bytes.as_slice()).context(&format!("writing table `{name}`"))?;
                }
            }
            let mut deltas = txn.open_table(DELTAS).context("opening table `deltas`")?;
            let key = id.as_str();
            let mut stored = Vec::new();
            for entry in deltas.range((key, 0u64)..=(key, u64::MAX)).context("reading table `deltas`")? {
                let (k, value) = entry.context("reading table `deltas`")?;
                stored.push((k.value().1, value.value().to_vec()));
            }
            for (sequence, bytes) in stored {
                deltas.insert((key, sequence), bytes.as_slice()).context("writing table `deltas`")?;
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

    fn closed(&self) -> StoreError {
        let trouble = self.trouble().unwrap_or_else(|| "an earlier I/O error".to_owned());
        StoreError::Closed { path: self.path.clone(), trouble }
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        let handle = self.handle.read().unwrap_or_else(PoisonError::into_inner);
        match &*handle {
            Some(Handle::Writable(database)) => database.begin_read(),
            Some(Handle::ReadOnly(database)) => database.begin_read(),
            None => return Err(self.closed()),
        }
        .context("beginning a read transaction")
    }

    /// Run `body` in one write transaction and commit it durably, or abort it
    /// (writing nothing) if `body` fails. An I/O error is remembered as the
    /// store's [`Store::trouble`].
    fn write<T>(
        &self,
        operation: &'static str,
        body: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = self.guarded(operation, || {
            // Held through the commit, so a reopen waits for it.
            let handle = self.handle.read().unwrap_or_else(PoisonError::into_inner);
            let database = match &*handle {
                Some(Handle::Writable(database)) => database,
                Some(Handle::ReadOnly(_)) => {
                    return Err(StoreError::ReadOnly { path: self.path.clone(), operation });
                }
                None => return Err(self.closed()),
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
        });
        if let Err(error) = &result
            && error.is_io()
        {
            let mut trouble = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
            trouble.get_or_insert_with(|| error.to_string());
        }
        result
    }
}

fn with_checksum(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Sha256::digest(payload).to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

/// An aggregate as the `aggregates` and `deltas` tables store it (schema
/// version 2), packed: a delta's cost is that of the bins it changed, not
/// of the sweep's shape. Aggregates stored in the listed form before read
/// the same.
fn encode_stored_aggregate(aggregate: &Aggregate) -> Vec<u8> {
    with_checksum(&encode_aggregate_packed(aggregate))
}

fn decode_stored_aggregate(
    format: Format,
    table: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<Aggregate, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { table, key: key.to_string(), reason };
    let payload = checked_payload(format, bytes).map_err(corrupt)?;
    let aggregate = decode_aggregate(payload).map_err(|error| corrupt(error.to_string()))?;
    aggregate.check_consistency().map_err(|error| corrupt(format!("the counts do not add up: {error}")))?;
    Ok(aggregate)
}

/// The payload of a stored value, its checksum checked (schema version 2).
fn checked_payload(format: Format, bytes: &[u8]) -> Result<&[u8], String> {
    match format {
        Format::Checksummed => {
            if bytes.len() < CHECKSUM_LEN {
                return Err(format!("the value has {} bytes, fewer than its checksum", bytes.len()));
            }
            let (checksum, payload) = bytes.split_at(CHECKSUM_LEN);
            if Sha256::digest(payload).as_slice() != checksum {
                return Err("the checksum does not match: the stored bytes changed after they were written".into());
            }
            Ok(payload)
        }
    }
}

fn open_error(path: &Path, error: DatabaseError, hint: &'static str) -> StoreError {
    match error {
        DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.to_path_buf(), hint },
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == ErrorKind::NotFound => {
            StoreError::Missing { path: path.to_path_buf() }
        }
        // redb's answer to a file that does not start with its header.
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == ErrorKind::InvalidData => StoreError::Damaged {
            path: path.to_path_buf(),
            context: "opening the database".into(),
            detail: "it does not start with a redb header".into(),
        },
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == ErrorKind::UnexpectedEof => StoreError::Damaged {
            path: path.to_path_buf(),
            context: "opening the database".into(),
            detail: "it is shorter than its header says (truncated?)".into(),
        },
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            StoreError::Damaged { path: path.to_path_buf(), context: "opening the database".into(), detail }
        }
        error => StoreError::Database { context: format!("opening {}", path.display()), source: error.into() },
    }
}

/// A record as the `sweeps` table stores it (schema version 2): the
/// checksum of its JSON, then the JSON.
fn encode_record(record: &SweepRecord) -> Vec<u8> {
    // Strings, integers, a unit enum and vectors of strings always serialize.
    with_checksum(&serde_json::to_vec(record).expect("a sweep record serializes to JSON"))
}

fn decode_record(format: Format, key: &str, bytes: &[u8]) -> Result<SweepRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { table: "sweeps", key: key.to_string(), reason };
    let json = checked_payload(format, bytes).map_err(corrupt)?;
    let record: SweepRecord = serde_json::from_slice(json).map_err(|error| corrupt(error.to_string()))?;
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
            nominal_zones: vec![1, 2],
            submitted_unix: None,
            ended_unix: None,
            request_id: None,
            provenance: crate::sweep::Provenance { chain: zonesweep_shared::CHAIN_REVISION, ..Default::default() },
            layout: Default::default(),
        }
    }

    /// An aggregate that differs from the empty one, as after merging jobs:
    /// `samples` samples, every one failed (so its counts add up).
    fn merged(samples: u64) -> Aggregate {
        let mut aggregate = Aggregate::empty(shape());
        for sample in 0..samples {
            aggregate.add_failure(sample, "singular", "ridge matrix is singular");
        }
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
                    base: None,
                    delta: None,
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
                base: None,
                delta: None,
                newly_done: vec![9],
                delete: false,
            }])
            .unwrap();
        store
            .commit_batch(&[BatchEntry {
                record: record("s10", 1),
                aggregate: Some(merged(1)),
                base: None,
                delta: None,
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
                base: None,
                delta: None,
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
                BatchEntry {
                    record: record("b", 1),
                    aggregate: Some(merged(50)),
                    base: None,
                    delta: None,
                    newly_done: vec![0],
                    delete: false,
                },
                BatchEntry {
                    record: changed_a,
                    aggregate: Some(merged(999)),
                    base: None,
                    delta: None,
                    newly_done: vec![2, 1],
                    delete: false,
                },
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
                base: None,
                delta: None,
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
                base: None,
                delta: None,
                newly_done: vec![10],
                delete: false,
            }])
            .unwrap_err();
        assert!(matches!(error, StoreError::JobOutOfRange { job: 10, jobs: 10, .. }), "{error}");
        let error = store
            .commit_batch(&[BatchEntry {
                record: record("ghost", 2),
                aggregate: Some(merged(1)),
                base: None,
                delta: None,
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
                base: None,
                delta: None,
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
                base: None,
                delta: None,
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
    fn a_query_never_repairs_a_database_whose_coordinator_was_killed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let crashed = dir.path().join("crashed.redb");
        let store = Store::open(&path).unwrap();
        create(&store, "a", 0);
        store
            .commit_batch(&[BatchEntry {
                record: record("a", 0),
                aggregate: Some(merged(7)),
                base: None,
                delta: None,
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
        let before = std::fs::read(&crashed).unwrap();
        let error = Store::open_existing(&crashed).unwrap_err();
        assert!(matches!(error, StoreError::NeedsRepair { .. }), "{error}");
        assert!(error.to_string().contains("start the coordinator on it"), "{error}");
        assert_eq!(std::fs::read(&crashed).unwrap(), before, "a query leaves the file byte for byte");

        // The coordinator's open repairs it; then queries read it.
        drop(Store::open(&crashed).unwrap());
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

    /// The stored bytes of a sweep's aggregate.
    fn stored_bytes(path: &Path, key: &str) -> Vec<u8> {
        let database = ReadOnlyDatabase::open(path).unwrap();
        let txn = database.begin_read().unwrap();
        txn.open_table(AGGREGATES).unwrap().get(key).unwrap().unwrap().value().to_vec()
    }

    fn replace_aggregate(path: &Path, key: &str, bytes: &[u8]) {
        poke(path, |txn| {
            txn.open_table(AGGREGATES).unwrap().insert(key, bytes).unwrap();
        });
    }

    #[test]
    fn every_bit_flip_in_a_stored_aggregate_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            create(&store, "a", 0);
            store
                .commit_batch(&[BatchEntry {
                    record: record("a", 0),
                    aggregate: Some(merged(30)),
                    base: None,
                    delta: None,
                    newly_done: vec![0],
                    delete: false,
                }])
                .unwrap();
        }
        let good = stored_bytes(&path, "a");
        let flip = |bit: usize| {
            let mut flipped = good.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            flipped
        };
        for bit in 0..good.len() * 8 {
            let error = decode_stored_aggregate(Format::Checksummed, "aggregates", "a", &flip(bit)).unwrap_err();
            assert!(matches!(&error, StoreError::Corrupt { table: "aggregates", .. }), "bit {bit}: {error}");
        }
        // Through the file, in the checksum and in the aggregate.
        for bit in [3, CHECKSUM_LEN * 8 + 5, good.len() * 8 - 1] {
            replace_aggregate(&path, "a", &flip(bit));
            let store = Store::open_existing(&path).unwrap();
            let error = store.aggregate(&id("a")).unwrap_err();
            assert!(
                matches!(&error, StoreError::Corrupt { table: "aggregates", key, .. } if key == "a"),
                "bit {bit}: {error}"
            );
            assert!(error.to_string().contains("checksum does not match"), "{error}");
            assert_eq!(error.cause(), StoreCause::Corrupt);
        }
        replace_aggregate(&path, "a", &good[..10]);
        let error = Store::open_existing(&path).unwrap().aggregate(&id("a")).unwrap_err();
        assert!(error.to_string().contains("fewer than its checksum"), "{error}");
        replace_aggregate(&path, "a", &good);
        assert_eq!(Store::open_existing(&path).unwrap().aggregate(&id("a")).unwrap(), Some(merged(30)));
    }

    /// Aggregates are stored packed; one stored in the listed form, as
    /// files written before hold them, reads as the same aggregate.
    #[test]
    fn an_aggregate_stored_packed_or_listed_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            create(&store, "a", 0);
        }
        let aggregate = merged(30);
        let (packed, listed) = (
            encode_stored_aggregate(&aggregate),
            with_checksum(&zonesweep_proto::convert::encode_aggregate(&aggregate)),
        );
        assert!(packed.len() < listed.len(), "packed {} bytes, listed {}", packed.len(), listed.len());
        for bytes in [packed, listed] {
            replace_aggregate(&path, "a", &bytes);
            assert_eq!(Store::open_existing(&path).unwrap().aggregate(&id("a")).unwrap(), Some(aggregate.clone()));
        }
    }

    #[test]
    fn an_aggregate_whose_counts_do_not_add_up_is_corrupt_even_with_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        drop(Store::open(&path).unwrap());
        {
            let store = Store::open(&path).unwrap();
            create(&store, "a", 0);
        }
        let mut inconsistent = merged(5);
        inconsistent.samples_ok = 3;
        inconsistent.zone_counts.row_mut(0)[1] = 3;
        replace_aggregate(&path, "a", &encode_stored_aggregate(&inconsistent));
        let error = Store::open(&path).unwrap().aggregate(&id("a")).unwrap_err();
        assert!(error.to_string().contains("zone_counts: row 1 counts 0 samples, not 3"), "{error}");
    }

    #[test]
    fn a_loaded_sweep_counts_exactly_the_samples_of_its_done_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        create(&store, "a", 0);
        // Jobs of 100 samples: jobs 2 and 5 are 200 samples.
        store
            .commit_batch(&[BatchEntry {
                record: record("a", 0),
                aggregate: Some(merged(200)),
                base: None,
                delta: None,
                newly_done: vec![2, 5],
                delete: false,
            }])
            .unwrap();
        assert_eq!(store.load_sweep(&record("a", 0)).unwrap(), (merged(200), vec![2, 5]));
        store
            .commit_batch(&[BatchEntry {
                record: record("a", 0),
                aggregate: Some(merged(250)),
                base: None,
                delta: None,
                newly_done: vec![7],
                delete: false,
            }])
            .unwrap();
        let error = store.load_sweep(&record("a", 0)).unwrap_err();
        assert!(error.to_string().contains("counts 250 samples, but the 3 done jobs cover 300"), "{error}");
        assert_eq!(error.cause(), StoreCause::Corrupt);
        let mut fewer_units = record("a", 0);
        fewer_units.unit_ids.pop();
        let error = store.load_sweep(&fewer_units).unwrap_err();
        assert!(error.to_string().contains("shaped for 2 units, but the sweep has 1"), "{error}");
        let mut fewer_jobs = record("a", 0);
        fewer_jobs.jobs = 6;
        let error = store.load_sweep(&fewer_jobs).unwrap_err();
        assert!(error.to_string().contains("job 7 is done, but the sweep has 6 jobs"), "{error}");
    }

    /// Jobs' results as a checkpoint or delta: samples `range`, all failed.
    fn failed(range: std::ops::Range<u64>) -> Aggregate {
        let mut aggregate = Aggregate::empty(shape());
        for sample in range {
            aggregate.add_failure(sample, "singular", &format!("sample {sample}"));
        }
        aggregate
    }

    fn sum(parts: &[&Aggregate]) -> Aggregate {
        let mut total = Aggregate::empty(shape());
        for part in parts {
            total.merge(part).unwrap();
        }
        total
    }

    fn delta_entry(job: u32, base: Option<Aggregate>) -> BatchEntry {
        let samples = u64::from(job) * 100..u64::from(job + 1) * 100;
        BatchEntry {
            record: record("a", 0),
            aggregate: None,
            base: base.map(Arc::new),
            delta: Some(failed(samples)),
            newly_done: vec![job],
            delete: false,
        }
    }

    #[test]
    fn deltas_replay_over_their_checkpoint_and_a_checkpoint_replaces_them_in_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let (first, second, third) = (failed(0..100), failed(100..200), failed(200..300));
        {
            let store = Store::open(&path).unwrap();
            create(&store, "a", 0);
            store.commit_batch(&[delta_entry(0, None)]).unwrap();
            store.commit_batch(&[delta_entry(1, None)]).unwrap();
            let (aggregate, done, deltas) = store.load_sweep_with_deltas(&record("a", 0)).unwrap();
            assert_eq!((aggregate, done, deltas), (sum(&[&first, &second]), vec![0, 1], 2));
            // A checkpoint of the first two, then the third's delta.
            store.commit_batch(&[delta_entry(2, Some(sum(&[&first, &second])))]).unwrap();
            let (aggregate, done, deltas) = store.load_sweep_with_deltas(&record("a", 0)).unwrap();
            assert_eq!((aggregate, done, deltas), (sum(&[&first, &second, &third]), vec![0, 1, 2], 1));
            // A job merged again is refused and changes nothing.
            let error = store.commit_batch(&[delta_entry(1, None)]).unwrap_err();
            assert!(matches!(error, StoreError::JobAlreadyDone { job: 1, .. }), "{error}");
        }
        let expected = sum(&[&first, &second, &third]);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.aggregate(&id("a")).unwrap(), Some(expected.clone()));
        drop(store);
        let query = Store::open_existing(&path).unwrap();
        assert_eq!(query.load_sweep_with_deltas(&record("a", 0)).unwrap(), (expected, vec![0, 1, 2], 1));
        drop(query);
        // A damaged delta is refused by name, never served as a smaller aggregate.
        poke(&path, |txn| {
            let mut deltas = txn.open_table(DELTAS).unwrap();
            let sequence = deltas.iter().unwrap().next().unwrap().unwrap().0.value().1;
            deltas.insert(("a", sequence), &b"not an aggregate, not its checksum either"[..]).unwrap();
        });
        let error = Store::open(&path).unwrap().aggregate(&id("a")).unwrap_err();
        assert!(matches!(&error, StoreError::Corrupt { table: "deltas", key, .. } if key.starts_with("a/")), "{error}");
        assert_eq!(error.cause(), StoreCause::Corrupt);
    }

    /// A version 4 file holds its checkpoints and deltas listed: read as it
    /// is, and upgraded (the version recorded, nothing rewritten) once a
    /// coordinator opens it, so that an older coordinator then refuses it
    /// rather than misreading the packed values it cannot decode.
    #[test]
    fn a_version_4_file_of_listed_aggregates_is_read_as_it_is_and_upgraded_by_the_coordinator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            create(&store, "a", 0);
            store.commit_batch(&[delta_entry(0, None)]).unwrap();
        }
        let listed = |aggregate: &Aggregate| with_checksum(&zonesweep_proto::convert::encode_aggregate(aggregate));
        // What version 4 wrote: the same tables, every aggregate listed.
        poke(&path, |txn| {
            txn.open_table(META).unwrap().insert(SCHEMA_VERSION_KEY, VERSION_BEFORE_PACKED).unwrap();
            txn.open_table(AGGREGATES).unwrap().insert("a", listed(&failed(0..0)).as_slice()).unwrap();
            let mut deltas = txn.open_table(DELTAS).unwrap();
            let sequence = deltas.iter().unwrap().next().unwrap().unwrap().0.value().1;
            deltas.insert(("a", sequence), listed(&failed(0..100)).as_slice()).unwrap();
        });
        let version = |path: &Path| {
            let database = ReadOnlyDatabase::open(path).unwrap();
            let txn = database.begin_read().unwrap();
            txn.open_table(META).unwrap().get(SCHEMA_VERSION_KEY).unwrap().unwrap().value()
        };
        let query = Store::open_existing(&path).unwrap();
        let before = failed(0..100);
        assert_eq!(query.load_sweep(&record("a", 0)).unwrap(), (before.clone(), vec![0]));
        drop(query);
        assert_eq!(version(&path), VERSION_BEFORE_PACKED, "a query writes nothing");
        let store = Store::open(&path).unwrap();
        store.commit_batch(&[delta_entry(1, None)]).unwrap();
        let after = sum(&[&before, &failed(100..200)]);
        assert_eq!(store.load_sweep(&record("a", 0)).unwrap(), (after, vec![0, 1]));
        drop(store);
        assert_eq!(version(&path), SCHEMA_VERSION);
    }

    #[test]
    fn a_version_3_file_is_read_as_it_is_and_upgraded_by_the_coordinator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            create(&store, "a", 0);
            store
                .commit_batch(&[BatchEntry {
                    record: record("a", 0),
                    aggregate: Some(failed(0..100)),
                    base: None,
                    delta: None,
                    newly_done: vec![0],
                    delete: false,
                }])
                .unwrap();
        }
        // What version 3 wrote: the same tables but `deltas`.
        poke(&path, |txn| {
            txn.delete_table(DELTAS).unwrap();
            txn.open_table(META).unwrap().insert(SCHEMA_VERSION_KEY, VERSION_BEFORE_DELTAS).unwrap();
        });
        let version = |path: &Path| {
            let database = ReadOnlyDatabase::open(path).unwrap();
            let txn = database.begin_read().unwrap();
            txn.open_table(META).unwrap().get(SCHEMA_VERSION_KEY).unwrap().unwrap().value()
        };
        let query = Store::open_existing(&path).unwrap();
        assert_eq!(query.load_sweep(&record("a", 0)).unwrap(), (failed(0..100), vec![0]));
        drop(query);
        assert_eq!(version(&path), VERSION_BEFORE_DELTAS, "a query writes nothing");
        let store = Store::open(&path).unwrap();
        store.commit_batch(&[delta_entry(1, None)]).unwrap();
        assert_eq!(store.load_sweep(&record("a", 0)).unwrap(), (failed(0..200), vec![0, 1]));
        drop(store);
        assert_eq!(version(&path), SCHEMA_VERSION);
    }

    #[test]
    fn files_of_versions_before_the_regional_counts_are_refused_and_left_as_they_are() {
        for version in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db.redb");
            {
                let store = Store::open(&path).unwrap();
                create(&store, "a", 0);
            }
            poke(&path, |txn| {
                txn.open_table(META).unwrap().insert(SCHEMA_VERSION_KEY, version).unwrap();
            });
            let before = stored_bytes(&path, "a");
            for error in [Store::open(&path).err().unwrap(), Store::open_existing(&path).err().unwrap()] {
                assert!(
                    matches!(error, StoreError::SchemaVersion { found, supported: SCHEMA_VERSION, .. } if found == version),
                    "{error}"
                );
                let text = error.to_string();
                assert!(text.contains("lack the regional counts") && text.contains("run its sweeps again"), "{text}");
                assert_eq!(error.cause(), StoreCause::Unusable);
            }
            // What it stores is left as it was, version and all.
            assert!(stored_bytes(&path, "a") == before, "the stored aggregate changed");
            let database = ReadOnlyDatabase::open(&path).unwrap();
            let txn = database.begin_read().unwrap();
            assert_eq!(txn.open_table(META).unwrap().get(SCHEMA_VERSION_KEY).unwrap().unwrap().value(), version);
        }
    }

    #[test]
    fn an_empty_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        std::fs::write(&path, b"").unwrap();
        for error in [Store::open(&path).unwrap_err(), Store::open_existing(&path).unwrap_err()] {
            assert!(matches!(error, StoreError::Empty { .. }), "{error}");
            assert!(error.to_string().contains("restore it from a backup"), "{error}");
            assert_eq!(error.cause(), StoreCause::Unusable);
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn the_database_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        drop(Store::open(&path).unwrap());
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        // A file an older release created readable by others is made private.
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, ["db.redb"], "the store creates no other file");
    }

    #[test]
    fn damaged_files_are_errors_that_say_what_to_do_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        {
            let store = Store::open(&path).unwrap();
            for (sequence, name) in ["a", "b", "c"].into_iter().enumerate() {
                create(&store, name, sequence as u64);
                let entry = BatchEntry {
                    record: record(name, sequence as u64),
                    aggregate: Some(merged(100)),
                    base: None,
                    delta: None,
                    newly_done: vec![1],
                    delete: false,
                };
                store.commit_batch(&[entry]).unwrap();
            }
        }
        let good = std::fs::read(&path).unwrap();
        let page = 4096;
        let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
        for cut in [1, 8, 100, 512, page, good.len() / 2, good.len() - page, good.len() - 1] {
            damaged.push((format!("truncated to {cut} bytes"), good[..cut].to_vec()));
        }
        for first in (0..good.len()).step_by(page) {
            let mut junk = good.clone();
            for (i, byte) in junk[first..(first + page).min(good.len())].iter_mut().enumerate() {
                *byte = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
            damaged.push((format!("page at {first} overwritten"), junk));
        }
        for (what, bytes) in damaged {
            let copy = dir.path().join("copy.redb");
            std::fs::write(&copy, &bytes).unwrap();
            // Each must return, whatever it says; a panic fails the test.
            let read_all = |store: &Store| -> Result<(), StoreError> {
                let (records, _) = store.sweep_entries()?;
                for record in records {
                    let _ = store.load_sweep(&record);
                }
                Ok(())
            };
            if let Ok(query) = Store::open_existing(&copy) {
                let _ = read_all(&query);
            }
            assert_eq!(std::fs::read(&copy).unwrap(), bytes, "{what}: a query wrote to the file");
            match Store::open(&copy) {
                Ok(store) => {
                    let _ = read_all(&store);
                }
                Err(error) => {
                    let message = error.to_string();
                    assert!(!message.is_empty(), "{what}");
                }
            }
        }
    }
}
