//! Reading a database file directly, with no coordinator running: the same
//! answers the coordinator would give for stored sweeps.

use zonesweep_proto::convert::aggregate_to_pb;
use zonesweep_proto::pb;

use crate::error::CoordinatorError;
use crate::service::status_from;
use crate::store::{Store, SweepRecord};

fn record(store: &Store, id: &str) -> Result<SweepRecord, CoordinatorError> {
    store.sweep(id)?.ok_or_else(|| CoordinatorError::NotFound(format!("sweep {id}")))
}

fn status_of(store: &Store, record: &SweepRecord) -> Result<(pb::SweepStatus, pb::Aggregate), CoordinatorError> {
    let aggregate = store.stored_aggregate(&record.id)?;
    let done = store.done_jobs(&record.id)?.len() as u32;
    Ok((status_from(record, &aggregate, done, 0), aggregate_to_pb(&aggregate)))
}

pub fn status(store: &Store, id: &str) -> Result<pb::SweepStatus, CoordinatorError> {
    Ok(status_of(store, &record(store, id)?)?.0)
}

pub fn list(store: &Store) -> Result<Vec<pb::SweepStatus>, CoordinatorError> {
    store.sweeps()?.iter().map(|r| Ok(status_of(store, r)?.0)).collect()
}

pub fn query(store: &Store, id: &str) -> Result<pb::QueryResponse, CoordinatorError> {
    let record = record(store, id)?;
    let (status, aggregate) = status_of(store, &record)?;
    Ok(pb::QueryResponse {
        status: Some(status),
        unit_ids: record.unit_ids,
        unit_names: record.unit_names,
        aggregate: Some(aggregate),
    })
}
