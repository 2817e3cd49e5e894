//! What the coordinator says about a sweep, as domain values: its state and
//! counts ([`SweepStatus`]), and its results ([`SweepResults`]). The wire
//! forms are converted in [`crate::convert`] only.

use std::fmt;

use zonesweep_shared::sweep::aggregate::Aggregate;

use crate::ids::SweepId;

/// Where a sweep is in its life. Only a running sweep hands out jobs and
/// takes results; the other three are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SweepState {
    Running,
    Done,
    Failed,
    Cancelled,
}

impl SweepState {
    pub const ALL: [SweepState; 4] = [SweepState::Running, SweepState::Done, SweepState::Failed, SweepState::Cancelled];

    /// The lowercase name the CLI prints and messages use.
    pub fn name(self) -> &'static str {
        match self {
            SweepState::Running => "running",
            SweepState::Done => "done",
            SweepState::Failed => "failed",
            SweepState::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        self != SweepState::Running
    }
}

impl fmt::Display for SweepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A sweep's state, counts and inputs, as `status`, `list` and `watch` show it.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepStatus {
    pub id: SweepId,
    pub state: SweepState,
    /// Why the sweep failed or was cancelled, or a summary of failed
    /// samples; empty when there is nothing to say.
    pub reason: String,
    /// Submission order.
    pub sequence: u64,
    pub seed: u64,
    pub samples: u64,
    /// Samples merged so far, failed ones included.
    pub samples_done: u64,
    pub samples_failed: u64,
    pub jobs: u32,
    pub jobs_done: u32,
    pub jobs_leased: u32,
    pub units: u32,
    pub dataset_hash: String,
    pub config_hash: String,
    pub spec_hash: String,
    pub provenance: Provenance,
    /// The largest 95 % Wilson half-width over every zone probability so far.
    pub largest_half_width: f64,
    /// The half-width at which the sweep stops early, if it does.
    pub until_ci: Option<f64>,
    /// The samples asked for, when the sweep stopped before them.
    pub samples_max: Option<u64>,
}

/// Where a sweep came from and who ran it (never part of an export: it
/// differs between equal runs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    /// The coordinator's version when the sweep was submitted.
    pub version: String,
    /// The model chain revision its samples are computed with
    /// ([`zonesweep_shared::CHAIN_REVISION`]); 0 when not recorded.
    pub chain: u32,
    pub dataset_name: String,
    /// Seconds since 1970.
    pub submitted_unix: Option<u64>,
    pub ended_unix: Option<u64>,
    /// The workers whose results were merged (`host/worker-id`), and how
    /// many results came from workers beyond those named.
    pub workers: Vec<String>,
    pub more_workers: u64,
    /// (successful samples, largest zone half-width) as results were merged.
    pub history: Vec<(u64, f64)>,
}

/// A sweep's status with its units and its merged aggregate.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepResults {
    pub status: SweepStatus,
    pub unit_ids: Vec<String>,
    pub unit_names: Vec<String>,
    /// Each unit's zone (1-based) in the deterministic run at the nominal
    /// parameters (the paper's single run); empty when not known.
    pub nominal_zones: Vec<u8>,
    pub aggregate: Aggregate,
}

impl SweepResults {
    /// The index of the unit with this id.
    pub fn unit_index(&self, id: &str) -> Option<usize> {
        self.unit_ids.iter().position(|u| u == id)
    }
}
