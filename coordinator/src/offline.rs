//! Reading a database file directly, with no coordinator running: the same
//! answers the coordinator would give for stored sweeps (no job is leased).

use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::{SweepResults, SweepStatus};
use zonesweep_shared::sweep::aggregate::Aggregate;

use crate::error::CoordinatorError;
use crate::store::Store;
use crate::sweep::{SweepRecord, Tally};

fn record(store: &Store, id: &SweepId) -> Result<SweepRecord, CoordinatorError> {
    store.sweep(id)?.ok_or_else(|| CoordinatorError::NotFound(format!("sweep {id}")))
}

fn status_of(store: &Store, record: &SweepRecord) -> Result<(SweepStatus, Aggregate), CoordinatorError> {
    let aggregate = store.stored_aggregate(&record.id)?;
    let done = store.done_jobs(&record.id)?.len() as u32;
    Ok((record.status(&Tally::of(&aggregate), done, 0), aggregate))
}

pub fn status(store: &Store, id: &SweepId) -> Result<SweepStatus, CoordinatorError> {
    Ok(status_of(store, &record(store, id)?)?.0)
}

pub fn list(store: &Store) -> Result<Vec<SweepStatus>, CoordinatorError> {
    store.sweeps()?.iter().map(|r| Ok(status_of(store, r)?.0)).collect()
}

pub fn query(store: &Store, id: &SweepId) -> Result<SweepResults, CoordinatorError> {
    let record = record(store, id)?;
    let (status, aggregate) = status_of(store, &record)?;
    Ok(SweepResults { status, unit_ids: record.unit_ids, unit_names: record.unit_names, aggregate })
}
