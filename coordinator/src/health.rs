//! The coordinator's care of its database: sweeps whose stored data cannot
//! be read are quarantined when it starts ([`load_sweeps`]), and after an
//! I/O error (a full disk) the store-health task reopens the database as
//! soon as writing works again, without a restart ([`Coordinator::store_health`]).
//! Events are logged through `tracing`.

use std::collections::BTreeMap;
use std::time::Duration;

use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::{SweepState, SweepStatus};

use crate::error::CoordinatorError;
use crate::service::{Coordinator, blocking};
use crate::state::SweepRuntime;
use crate::store::{Store, StoreCause, StoreError, Unreadable};
use crate::sweep::{SweepRecord, no_results};

/// Every stored sweep, ready to run, and the quarantined ones: id → reason.
pub(crate) struct Loaded {
    pub sweeps: Vec<SweepRuntime>,
    pub quarantined: BTreeMap<SweepId, String>,
}

/// Load every stored sweep with its aggregate and done jobs. A sweep whose
/// data is damaged ([`StoreCause::Corrupt`]) is quarantined: failed with
/// the reason, durably when its record can be read and written (its data
/// stays in the file), so that it blocks no other sweep. Other errors (the
/// file cannot be read at all) are returned.
/// Rewrite a quarantined sweep's pages as they are ([`Store::reseal`]), so
/// that a crash later cannot leave a file redb refuses to repair.
fn reseal(store: &Store, id: &SweepId) {
    if let Err(error) = store.reseal(id) {
        tracing::warn!(
            "sweep {id}: its damaged pages could not be rewritten ({error}); a crash may leave the file in need of a restore"
        );
    }
}

pub(crate) fn load_sweeps(store: &Store) -> Result<Loaded, StoreError> {
    let (records, unreadable) = store.sweep_entries()?;
    let mut loaded = Loaded { sweeps: Vec::new(), quarantined: BTreeMap::new() };
    for mut record in records {
        match store.load_sweep_with_deltas(&record) {
            Ok((aggregate, done, deltas)) => {
                if record.is_running()
                    && let Err(why) = record.check_chain()
                {
                    tracing::warn!("sweep {} is failed: {why}", record.id);
                    record.stop(SweepState::Failed, &why);
                    store.update_sweep(&record)?;
                }
                loaded.sweeps.push(SweepRuntime::new(record, aggregate, &done).with_stored_deltas(deltas))
            }
            Err(error) if error.cause() == StoreCause::Corrupt => {
                tracing::warn!("sweep {} is quarantined: {error}", record.id);
                if record.quarantine(&error)
                    && let Err(write) = store.update_sweep(&record)
                {
                    tracing::warn!("sweep {}: its quarantine could not be stored: {write}", record.id);
                }
                reseal(store, &record.id);
                loaded.quarantined.insert(record.id.clone(), record.reason.clone());
                loaded.sweeps.push(SweepRuntime::new(record, no_results(), &[]));
            }
            Err(error) => return Err(error),
        }
    }
    for Unreadable { key, error } in unreadable {
        let Ok(id) = SweepId::parse(&key) else {
            tracing::warn!("a sweep record under the key {key:?} is skipped: {error}");
            continue;
        };
        tracing::warn!("sweep {id} is quarantined: {error}");
        reseal(store, &id);
        let record = SweepRecord::unreadable(id, &error);
        loaded.quarantined.insert(record.id.clone(), record.reason.clone());
        loaded.sweeps.push(SweepRuntime::new(record, no_results(), &[]));
    }
    Ok(loaded)
}

/// The first wait before reopening the database after an I/O error; it
/// doubles after every failed attempt, up to [`REOPEN_MAX_WAIT`].
const REOPEN_FIRST_WAIT: Duration = Duration::from_millis(500);
const REOPEN_MAX_WAIT: Duration = Duration::from_secs(30);
/// How often the task looks for trouble.
const HEALTH_TICK: Duration = Duration::from_millis(250);

impl Coordinator {
    /// The store-health task: once a write failed with an I/O error, say
    /// so, and reopen the database (with growing waits) until that works.
    /// Meanwhile every write is answered UNAVAILABLE by the store, so
    /// workers keep their results and send them again.
    pub(crate) async fn store_health(self) {
        let store = self.store();
        loop {
            tokio::time::sleep(HEALTH_TICK).await;
            let Some(trouble) = store.trouble() else { continue };
            tracing::warn!(
                "writing to the database {} failed: {trouble}; results are not acknowledged until it is reopened",
                store.path().display()
            );
            self.changed();
            let mut wait = REOPEN_FIRST_WAIT;
            loop {
                tokio::time::sleep(wait).await;
                let reopening = store.clone();
                match blocking(move || Ok(reopening.reopen()?)).await {
                    Ok(()) => {
                        tracing::info!("the database {} is open and writable again", store.path().display());
                        self.changed();
                        break;
                    }
                    Err(error) => {
                        if wait == REOPEN_FIRST_WAIT {
                            tracing::warn!("reopening the database failed ({error}); trying again");
                        }
                        wait = (wait * 2).min(REOPEN_MAX_WAIT);
                    }
                }
            }
        }
    }

    /// A running sweep's status while results cannot be stored says so.
    pub(crate) fn with_store_health(&self, mut status: SweepStatus) -> SweepStatus {
        if status.state.is_final() {
            return status;
        }
        if let Some(trouble) = self.store().trouble() {
            let note = format!(
                "results cannot be stored now ({trouble}); workers keep them and send them again once the database is writable"
            );
            status.reason = if status.reason.is_empty() { note } else { format!("{note}; {}", status.reason) };
        }
        status
    }

    /// A quarantined sweep's results are not served: DATA_LOSS, with why.
    pub(crate) fn check_not_quarantined(
        quarantined: &BTreeMap<SweepId, String>,
        id: &SweepId,
    ) -> Result<(), CoordinatorError> {
        match quarantined.get(id) {
            Some(reason) => Err(CoordinatorError::DataLoss(format!("sweep {id}: {reason}"))),
            None => Ok(()),
        }
    }
}
