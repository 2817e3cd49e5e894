//! Reading a database file directly, with no coordinator running: the same
//! answers the coordinator would give for stored sweeps (no job is leased).
//! A sweep whose stored data cannot be read is shown as the coordinator
//! shows it, failed with the reason; its results are refused with
//! DATA_LOSS. Nothing here writes to the file.

use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::{SweepResults, SweepStatus};
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::aggregate::Aggregate;

use crate::error::CoordinatorError;
use crate::store::{Store, StoreCause, StoreError, Unreadable};
use crate::sweep::{SweepRecord, Tally, quarantine_reason};

fn not_found(id: &SweepId) -> CoordinatorError {
    CoordinatorError::NotFound(format!("sweep {id}"))
}

/// A sweep's status and aggregate, or for damaged data the quarantined
/// status and the error. A running sweep of another model chain revision
/// reads as failed, as the coordinator fails it when it starts
/// (nothing is written here).
fn load(store: &Store, mut record: SweepRecord) -> Result<(SweepStatus, Result<Aggregate, StoreError>), StoreError> {
    if record.is_running()
        && let Err(why) = record.check_chain()
    {
        record.stop(zonesweep_proto::status::SweepState::Failed, &why);
    }
    match store.load_sweep(&record) {
        Ok((aggregate, done)) => Ok((record.status(&Tally::of(&aggregate), done.len() as u32, 0), Ok(aggregate))),
        Err(error) if error.cause() == StoreCause::Corrupt => {
            record.quarantine(&error);
            Ok((record.status(&Tally::default(), 0, 0), Err(error)))
        }
        Err(error) => Err(error),
    }
}

pub fn status(store: &Store, id: &SweepId) -> Result<SweepStatus, CoordinatorError> {
    match store.sweep(id) {
        Ok(Some(record)) => Ok(load(store, record)?.0),
        Ok(None) => Err(not_found(id)),
        Err(error) if error.cause() == StoreCause::Corrupt => {
            Ok(SweepRecord::unreadable(id.clone(), &error).status(&Tally::default(), 0, 0))
        }
        Err(error) => Err(error.into()),
    }
}

/// Every sweep in submission order, the quarantined ones among them.
pub fn list(store: &Store) -> Result<Vec<SweepStatus>, CoordinatorError> {
    let (records, unreadable) = store.sweep_entries()?;
    let mut statuses = Vec::with_capacity(records.len() + unreadable.len());
    for record in records {
        statuses.push(load(store, record)?.0);
    }
    for Unreadable { key, error } in unreadable {
        // A key that is not a sweep id cannot be named in a status.
        if let Ok(id) = SweepId::parse(&key) {
            statuses.push(SweepRecord::unreadable(id, &error).status(&Tally::default(), 0, 0));
        }
    }
    Ok(statuses)
}

/// What a sweep was run from, read from its stored blobs: its effective
/// configuration (every key; a sweep stored with only its overrides gets
/// them applied to the defaults), its spec and its dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub config_toml: String,
    pub spec_toml: String,
    pub dataset: DatasetBlob,
}

impl Definition {
    pub fn of(store: &Store, record: &SweepRecord) -> Result<Definition, CoordinatorError> {
        let id = &record.id;
        let blob = |hash: &str, what: &str| -> Result<String, CoordinatorError> {
            let bytes = store.blob(hash)?.ok_or_else(|| {
                CoordinatorError::DataLoss(format!("sweep {id}: its {what} (blob {hash}) is not stored"))
            })?;
            String::from_utf8(bytes)
                .map_err(|_| CoordinatorError::DataLoss(format!("sweep {id}: its {what} is not UTF-8 text")))
        };
        let config =
            Config::from_toml_overrides(&blob(&record.config_hash, "configuration")?, "the stored configuration")
                .map_err(|e| CoordinatorError::DataLoss(format!("sweep {id}: {e}")))?;
        let dataset = DatasetBlob::from_bytes(blob(&record.dataset_hash, "dataset")?.as_bytes())
            .map_err(|e| CoordinatorError::DataLoss(format!("sweep {id}: {e}")))?;
        Ok(Definition { config_toml: config.to_toml(), spec_toml: blob(&record.spec_hash, "spec")?, dataset })
    }
}

impl Definition {
    /// The wire form.
    pub fn into_pb(self) -> zonesweep_proto::pb::DefinitionResponse {
        zonesweep_proto::pb::DefinitionResponse {
            config_toml: self.config_toml,
            spec_toml: self.spec_toml,
            units_csv: self.dataset.units_csv,
            panel_csv: self.dataset.panel_csv,
            units_geojson: self.dataset.units_geojson.unwrap_or_default(),
        }
    }
}

/// What sweep `id` was run from.
pub fn definition(store: &Store, id: &SweepId) -> Result<Definition, CoordinatorError> {
    match store.sweep(id)? {
        Some(record) => Definition::of(store, &record),
        None => Err(not_found(id)),
    }
}

/// A sweep's status, units and aggregate; DATA_LOSS for damaged data.
pub fn query(store: &Store, id: &SweepId) -> Result<SweepResults, CoordinatorError> {
    let record = match store.sweep(id)? {
        Some(record) => record,
        None => return Err(not_found(id)),
    };
    let (unit_ids, unit_names) = (record.unit_ids.clone(), record.unit_names.clone());
    let nominal_zones = record.nominal_zones.clone();
    let (status, aggregate) = load(store, record)?;
    match aggregate {
        Ok(aggregate) => Ok(SweepResults { status, unit_ids, unit_names, nominal_zones, aggregate }),
        Err(error) => Err(CoordinatorError::DataLoss(format!("sweep {id}: {}", quarantine_reason(&error)))),
    }
}
