//! A sweep's durable record and its life: how a record and its merged
//! aggregate read as a [`SweepStatus`], and how a sweep whose jobs are all
//! done ends ([`SweepRecord::finish`]).

use serde::{Deserialize, Serialize};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::{SweepState, SweepStatus};
use zonesweep_shared::sweep::aggregate::Aggregate;

/// Everything the coordinator keeps about a sweep besides its results. Its
/// JSON form is the value of the `sweeps` table ([`crate::schema::SWEEPS`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRecord {
    #[serde(with = "sweep_id_text")]
    pub id: SweepId,
    /// Submission order: the coordinator hands out jobs of older sweeps first.
    pub sequence: u64,
    pub dataset_hash: String,
    pub config_hash: String,
    pub spec_hash: String,
    pub samples: u64,
    pub seed: u64,
    pub job_size: u64,
    pub jobs: u32,
    #[serde(with = "state_text")]
    pub state: SweepState,
    /// Why the sweep failed or was cancelled; empty otherwise.
    pub reason: String,
    pub unit_ids: Vec<String>,
    pub unit_names: Vec<String>,
    /// Each unit's zone in the deterministic run at the nominal parameters;
    /// empty when that run failed (or in records written before it was kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nominal_zones: Vec<u8>,
    /// When the sweep was submitted and when it last became final, in
    /// seconds since 1970 (absent in records written before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_unix: Option<u64>,
    /// The client's id of the submission that created the sweep, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Where the sweep came from and who ran it.
    #[serde(default)]
    pub provenance: Provenance,
    /// How the sweep's samples are laid out in jobs beyond one run of
    /// `samples` in jobs of `job_size`: extensions, and when it may stop early.
    #[serde(default)]
    pub layout: Layout,
}

/// What a sweep's results came from, beyond its inputs' hashes: shown by
/// `status` and `show`, never written into an export (it differs between
/// equal runs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The coordinator's zonesweep version when the sweep was submitted.
    #[serde(default)]
    pub version: String,
    /// The model chain revision the sweep's samples are computed with
    /// ([`zonesweep_shared::CHAIN_REVISION`] of the coordinator that
    /// accepted it); 0 in records written before revisions were kept. Only
    /// a coordinator of this revision runs the sweep's jobs.
    #[serde(default)]
    pub chain: u32,
    /// The dataset's name as the client gave it (its folder's name).
    #[serde(default)]
    pub dataset_name: String,
    /// The workers whose results were merged (`host/worker-id`), sorted,
    /// at most [`MAX_NAMED_WORKERS`]; `more_workers` counts the results
    /// merged from workers beyond them (a record cannot name them all).
    #[serde(default)]
    pub workers: Vec<String>,
    #[serde(default)]
    pub more_workers: u64,
    /// How the largest zone half-width fell as results were merged:
    /// (successful samples, half-width), a point each time the samples grew
    /// by [`HISTORY_STEP`] or more, and at the end; in merge order, so it
    /// differs between equal runs (the end point does not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<(u64, f64)>,
}

/// The growth of the successful samples between two points of a sweep's
/// convergence history: about 200 points from 1 to 10¹² samples.
pub const HISTORY_STEP: f64 = 1.15;

/// The most times a sweep can be extended.
pub const MAX_EXTENSIONS: usize = 1_000;

/// The most workers a sweep's record names.
pub const MAX_NAMED_WORKERS: usize = 256;

impl Provenance {
    /// Note the aggregate's largest zone half-width when its successful
    /// samples grew by [`HISTORY_STEP`] since the last point, or `last`
    /// says the sweep ends here.
    pub fn record_convergence(&mut self, aggregate: &Aggregate, last: bool) {
        if self.convergence_due(aggregate.samples_ok, last) {
            self.history.push((aggregate.samples_ok, aggregate.largest_zone_half_width()));
        }
    }

    /// Whether [`Provenance::record_convergence`] would note a point at
    /// `n` successful samples.
    pub fn convergence_due(&self, n: u64, last: bool) -> bool {
        match self.history.last() {
            None => n > 0,
            Some(&(m, _)) => n > m && (last || n as f64 >= m as f64 * HISTORY_STEP),
        }
    }

    /// Note a worker whose result was merged.
    pub fn contributed(&mut self, worker: &str) {
        if let Err(at) = self.workers.binary_search_by(|w| w.as_str().cmp(worker)) {
            if self.workers.len() < MAX_NAMED_WORKERS {
                self.workers.insert(at, worker.to_owned());
            } else {
                self.more_workers += 1;
            }
        }
    }
}

/// How jobs map to samples, and when a sweep stops early.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Extensions: (first job, first sample) of each run of jobs added by
    /// `extend`, in order; job j of an extension covers job_size samples
    /// from its first sample on, the last up to the next extension's first
    /// sample (or the sweep's `samples`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<(u32, u64)>,
    /// Stop as soon as every zone probability's 95 % Wilson half-width is
    /// at most this, checked after each whole block of jobs in job order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ci: Option<f64>,
    /// Jobs per block of a sweep with `until_ci`: a block is leased only
    /// once every job before it is merged, so the check sees exactly the
    /// samples of the blocks before it, whatever the cluster.
    #[serde(default)]
    pub block_jobs: u32,
    /// The samples asked for, when the sweep stopped before them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_max: Option<u64>,
}

/// What a status tells of a sweep's merged results: all a finished sweep
/// keeps in memory (its aggregate is read from the store when asked for).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    pub samples_done: u64,
    pub samples_failed: u64,
    /// "N sample(s) failed: kind (count), …", or empty.
    pub failures: String,
    /// [`Aggregate::largest_zone_half_width`].
    pub largest_half_width: f64,
}

impl Tally {
    pub fn of(aggregate: &Aggregate) -> Tally {
        Tally {
            samples_done: aggregate.samples_total(),
            samples_failed: aggregate.samples_failed(),
            failures: failure_summary(aggregate),
            largest_half_width: aggregate.largest_zone_half_width(),
        }
    }
}

/// Seconds since 1970 now (0 on a clock set before it).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl SweepRecord {
    /// The status of this sweep with these results merged and these job counts.
    pub fn status(&self, tally: &Tally, jobs_done: u32, jobs_leased: u32) -> SweepStatus {
        let reason = if self.reason.is_empty() { tally.failures.clone() } else { self.reason.clone() };
        SweepStatus {
            id: self.id.clone(),
            state: self.state,
            reason,
            sequence: self.sequence,
            seed: self.seed,
            samples: self.samples,
            samples_done: tally.samples_done,
            samples_failed: tally.samples_failed,
            jobs: self.jobs,
            jobs_done,
            jobs_leased,
            units: self.unit_ids.len() as u32,
            dataset_hash: self.dataset_hash.clone(),
            config_hash: self.config_hash.clone(),
            spec_hash: self.spec_hash.clone(),
            provenance: zonesweep_proto::status::Provenance {
                version: self.provenance.version.clone(),
                chain: self.provenance.chain,
                dataset_name: self.provenance.dataset_name.clone(),
                submitted_unix: self.submitted_unix,
                ended_unix: self.ended_unix,
                workers: self.provenance.workers.clone(),
                more_workers: self.provenance.more_workers,
                history: self.provenance.history.clone(),
            },
            largest_half_width: tally.largest_half_width,
            until_ci: self.layout.until_ci,
            samples_max: self.layout.samples_max,
        }
    }

    pub fn is_running(&self) -> bool {
        self.state == SweepState::Running
    }

    /// Every job is done: the sweep is done, or failed if no sample succeeded.
    pub fn finish(&mut self, aggregate: &Aggregate) {
        if !self.is_running() {
            return;
        }
        let failed = aggregate.samples_failed();
        if aggregate.samples_ok == 0 && failed > 0 {
            let example = aggregate.failures.values().next().map(|f| f.example.clone()).unwrap_or_default();
            self.state = SweepState::Failed;
            self.reason = format!("every sample failed; for example {example}");
        } else {
            self.state = SweepState::Done;
            self.reason = failure_summary(aggregate);
            if let Some(target) = self.layout.until_ci {
                let half_width = aggregate.largest_zone_half_width();
                if half_width > target {
                    let note = format!(
                        "the target ±{target} was not reached: after all {} samples the widest zone probability is ±{half_width:.4}",
                        self.samples
                    );
                    self.reason = if self.reason.is_empty() { note } else { format!("{note}; {}", self.reason) };
                }
            }
        }
        self.ended_unix = Some(now_unix());
    }

    /// How many samples job `index` covers (0 for an index past the end).
    pub fn job_samples(&self, index: u32) -> u64 {
        let range = self.job_range(index);
        range.end - range.start
    }

    /// The samples of job `index` (empty past the end).
    pub fn job_range(&self, index: u32) -> std::ops::Range<u64> {
        // The extension holding the job, or the first run of jobs.
        let at = self.layout.extensions.partition_point(|(first_job, _)| *first_job <= index);
        let (first_job, first_sample) = if at == 0 { (0, 0) } else { self.layout.extensions[at - 1] };
        let end = self.layout.extensions.get(at).map_or(self.samples, |(_, next)| *next).min(self.samples);
        // Saturating: the submission bounds samples, but this must never panic.
        let start = first_sample.saturating_add(u64::from(index - first_job).saturating_mul(self.job_size)).min(end);
        start..start.saturating_add(self.job_size).min(end)
    }

    /// The jobs of the block job `index` is in: all jobs when the sweep has
    /// no blocks.
    pub fn block_end(&self, index: u32) -> u32 {
        match self.layout.block_jobs {
            0 => self.jobs,
            size => (index / size).saturating_add(1).saturating_mul(size).min(self.jobs),
        }
    }

    /// After `jobs_done` jobs, all of them in the blocks before the next:
    /// whether the sweep has reached its target half-width, so it stops
    /// there. Called when a block's last job is merged.
    pub fn reached_target(&self, aggregate: &Aggregate) -> Option<f64> {
        let target = self.layout.until_ci?;
        let half_width = aggregate.largest_zone_half_width();
        (aggregate.samples_ok > 0 && half_width <= target).then_some(half_width)
    }

    /// End a sweep early after its first `jobs` jobs (whose results are
    /// all merged into `aggregate`), its target half-width reached.
    pub fn stop_early(&mut self, jobs: u32, aggregate: &Aggregate, half_width: f64) {
        let samples = self.job_range(jobs.saturating_sub(1)).end;
        if jobs < self.jobs {
            self.layout.samples_max = Some(self.samples);
            self.jobs = jobs;
            self.samples = samples;
        }
        self.finish(aggregate);
        let note = format!(
            "stopped after {samples} samples: every zone probability is known to ±{half_width:.4} (target ±{})",
            self.layout.until_ci.unwrap_or_default()
        );
        self.reason = if self.reason.is_empty() { note } else { format!("{note}; {}", self.reason) };
    }

    /// Fail a sweep whose stored data cannot be read, whatever its state,
    /// with the reason; returns whether the record changed (and so should be
    /// stored again).
    pub fn quarantine(&mut self, error: &impl std::fmt::Display) -> bool {
        let reason = quarantine_reason(error);
        let changed = self.state != SweepState::Failed || self.reason != reason;
        self.state = SweepState::Failed;
        self.reason = reason;
        changed
    }

    /// The stand-in for a stored record that does not decode: only its id
    /// is known; it is failed with the reason and listed last.
    pub fn unreadable(id: SweepId, error: &impl std::fmt::Display) -> SweepRecord {
        SweepRecord {
            id,
            sequence: u64::MAX,
            dataset_hash: String::new(),
            config_hash: String::new(),
            spec_hash: String::new(),
            samples: 0,
            seed: 0,
            job_size: 0,
            jobs: 0,
            state: SweepState::Failed,
            reason: quarantine_reason(error),
            unit_ids: Vec::new(),
            unit_names: Vec::new(),
            nominal_zones: Vec::new(),
            submitted_unix: None,
            ended_unix: None,
            request_id: None,
            provenance: Provenance::default(),
            layout: Layout::default(),
        }
    }

    /// Stop a running sweep (cancelled or failed); a final one keeps its end.
    pub fn stop(&mut self, state: SweepState, reason: &str) {
        if self.is_running() {
            self.state = state;
            self.reason = reason.to_owned();
            self.ended_unix = Some(now_unix());
        }
    }

    /// Whether a final sweep can run again: it failed or was cancelled,
    /// and some of its jobs are not done. `Err` says why not.
    pub fn check_resumable(&self, jobs_done: u32) -> Result<(), String> {
        let id = &self.id;
        match self.state {
            SweepState::Running => Err(format!("sweep {id} is running")),
            SweepState::Done => Err(format!("sweep {id} is done; there is nothing to resume")),
            SweepState::Failed | SweepState::Cancelled if jobs_done >= self.jobs => Err(format!(
                "every job of sweep {id} is done (it is {} because: {}); running it again changes nothing",
                self.state, self.reason
            )),
            SweepState::Failed | SweepState::Cancelled => self.check_chain(),
        }
    }

    /// Whether this coordinator may run the sweep's jobs: they must be
    /// computed with the model chain revision its other results were
    /// ([`Provenance::chain`]), or one sweep would mix samples that differ
    /// in their last bits. `Err` says why not and what to do.
    pub fn check_chain(&self) -> Result<(), String> {
        let ours = zonesweep_shared::CHAIN_REVISION;
        let (id, chain, version) = (&self.id, self.provenance.chain, &self.provenance.version);
        if chain == ours {
            return Ok(());
        }
        let recorded = if chain == 0 {
            format!("was accepted by zonesweep {version}, before model chain revisions were recorded,")
        } else {
            format!("was accepted under model chain revision {chain} (zonesweep {version})")
        };
        Err(format!(
            "sweep {id} {recorded} and this coordinator computes samples with revision {ours}: the two may differ in \
             the last bit of a sample, so no more of its jobs run here; its results so far are kept (query and export \
             them), and a new submission of the same inputs and seed runs it whole under revision {ours}"
        ))
    }

    /// Add `samples` samples to a done sweep, in new jobs after its last,
    /// so that its results become those of one sweep of the new total with
    /// the same seed (sample k depends on the seed and k alone); it runs
    /// again, to the end (a target half-width no longer applies), with the
    /// spec rewritten for the new total stored under `spec_hash`.
    pub fn extend(&mut self, samples: u64, spec_hash: &str) -> Result<(), String> {
        use crate::submission::{MAX_JOBS, MAX_SAMPLES};
        let id = &self.id;
        let total = self.samples.checked_add(samples).filter(|t| (1..=MAX_SAMPLES).contains(t));
        let Some(total) = total.filter(|_| samples > 0) else {
            return Err(format!(
                "sweep {id} has {} samples; adding {samples} must give 1–{MAX_SAMPLES} in all, and add at least 1",
                self.samples
            ));
        };
        let jobs = u64::from(self.jobs) + samples.div_ceil(self.job_size.max(1));
        if jobs > MAX_JOBS || self.layout.extensions.len() >= MAX_EXTENSIONS {
            return Err(format!(
                "sweep {id} would have {jobs} jobs in {} extensions; at most {MAX_JOBS} jobs and {MAX_EXTENSIONS} extensions are allowed",
                self.layout.extensions.len() + 1
            ));
        }
        self.layout.extensions.push((self.jobs, self.samples));
        self.layout.until_ci = None;
        self.layout.block_jobs = 0;
        self.layout.samples_max = None;
        self.samples = total;
        self.jobs = jobs as u32;
        self.spec_hash = spec_hash.to_owned();
        self.resume();
        Ok(())
    }

    /// Run again from what is stored (see [`SweepRecord::check_resumable`]).
    pub fn resume(&mut self) {
        self.state = SweepState::Running;
        self.reason.clear();
        self.ended_unix = None;
    }
}

/// The reason a quarantined sweep is failed with: its stored data cannot be
/// read, and what to do.
pub fn quarantine_reason(error: &impl std::fmt::Display) -> String {
    format!(
        "quarantined: its stored data cannot be read ({error}); the data is kept in the database for inspection, and restoring the database from a backup brings the results back"
    )
}

/// The stand-in aggregate of a quarantined sweep: no samples, no units.
pub fn no_results() -> Aggregate {
    Aggregate::empty(zonesweep_shared::sweep::aggregate::Shape {
        n_units: 0,
        n_zones: 0,
        base_year: 0,
        milestone: 0,
        horizon: 0,
    })
}

/// "N sample(s) failed: kind (count), …" or empty.
pub fn failure_summary(aggregate: &Aggregate) -> String {
    if aggregate.failures.is_empty() {
        return String::new();
    }
    let kinds: Vec<String> = aggregate.failures.iter().map(|(k, f)| format!("{k} ({})", f.count)).collect();
    format!("{} sample(s) failed: {}", aggregate.samples_failed(), kinds.join(", "))
}

/// A sweep id as JSON text; a stored id that does not parse is corrupt.
mod sweep_id_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use zonesweep_proto::ids::SweepId;

    pub fn serialize<S: Serializer>(id: &SweepId, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(id.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SweepId, D::Error> {
        let text = String::deserialize(deserializer)?;
        SweepId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A sweep state as the JSON text schema version 1 stores: the variant's
/// name, `"Running"`, `"Done"`, `"Failed"` or `"Cancelled"`.
mod state_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use zonesweep_proto::status::SweepState;

    fn text(state: SweepState) -> &'static str {
        match state {
            SweepState::Running => "Running",
            SweepState::Done => "Done",
            SweepState::Failed => "Failed",
            SweepState::Cancelled => "Cancelled",
        }
    }

    pub fn serialize<S: Serializer>(state: &SweepState, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(text(*state))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SweepState, D::Error> {
        let stored = String::deserialize(deserializer)?;
        SweepState::ALL
            .into_iter()
            .find(|&state| text(state) == stored)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown sweep state `{stored}`")))
    }
}

#[cfg(test)]
mod tests {
    use zonesweep_shared::sweep::aggregate::Shape;

    use super::*;

    fn record() -> SweepRecord {
        SweepRecord {
            id: SweepId::parse("sw-1").unwrap(),
            sequence: 3,
            dataset_hash: "d".repeat(64),
            config_hash: "c".repeat(64),
            spec_hash: "5".repeat(64),
            samples: 20,
            seed: 7,
            job_size: 10,
            jobs: 2,
            state: SweepState::Running,
            reason: String::new(),
            unit_ids: vec!["a".into()],
            unit_names: vec!["A".into()],
            nominal_zones: Vec::new(),
            submitted_unix: None,
            ended_unix: None,
            request_id: None,
            provenance: Provenance { chain: zonesweep_shared::CHAIN_REVISION, ..Default::default() },
            layout: Default::default(),
        }
    }

    fn aggregate(ok: u64, failed: u64) -> Aggregate {
        let mut aggregate =
            Aggregate::empty(Shape { n_units: 1, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 });
        aggregate.samples_ok = ok;
        for sample in 0..failed {
            aggregate.add_failure(sample, "diverges", "projection diverges");
        }
        aggregate
    }

    /// The stored form is schema version 1's: changing it is a migration.
    #[test]
    fn the_stored_json_keeps_schema_version_1() {
        let json = serde_json::to_string(&record()).unwrap();
        assert!(json.starts_with(r#"{"id":"sw-1","sequence":3,"#), "{json}");
        assert!(json.contains(r#""state":"Running","reason":"""#), "{json}");
        let mut cancelled = record();
        cancelled.state = SweepState::Cancelled;
        let back: SweepRecord = serde_json::from_str(&serde_json::to_string(&cancelled).unwrap()).unwrap();
        assert_eq!(back, cancelled);
        let unknown = json.replace("\"Running\"", "\"Paused\"");
        assert!(serde_json::from_str::<SweepRecord>(&unknown).unwrap_err().to_string().contains("Paused"));
        let bad_id = json.replace("\"sw-1\"", "\"a/b\"");
        assert!(serde_json::from_str::<SweepRecord>(&bad_id).is_err());
    }

    #[test]
    fn a_finished_sweep_is_done_unless_every_sample_failed() {
        let mut done = record();
        done.finish(&aggregate(18, 2));
        assert_eq!((done.state, done.reason.as_str()), (SweepState::Done, "2 sample(s) failed: diverges (2)"));
        let mut failed = record();
        failed.finish(&aggregate(0, 20));
        assert_eq!(failed.state, SweepState::Failed);
        assert!(failed.reason.starts_with("every sample failed; for example"), "{}", failed.reason);
        // A cancelled sweep stays cancelled.
        let mut cancelled = record();
        cancelled.stop(SweepState::Cancelled, "cancelled by request");
        cancelled.finish(&aggregate(20, 0));
        cancelled.stop(SweepState::Failed, "too late");
        assert_eq!((cancelled.state, cancelled.reason.as_str()), (SweepState::Cancelled, "cancelled by request"));
    }

    #[test]
    fn only_a_failed_or_cancelled_sweep_with_jobs_left_resumes() {
        let mut record = record();
        assert!(record.check_resumable(0).unwrap_err().contains("is running"));
        record.stop(SweepState::Cancelled, "cancelled by request");
        assert!(record.ended_unix.is_some());
        assert_eq!(record.check_resumable(1), Ok(()));
        assert!(record.check_resumable(2).unwrap_err().contains("every job of sweep sw-1 is done"));
        // Accepted under another revision of the chain, or before revisions.
        for chain in [zonesweep_shared::CHAIN_REVISION + 1, 0] {
            let mut other = record.clone();
            other.provenance.chain = chain;
            assert!(other.check_resumable(1).unwrap_err().contains("this coordinator computes samples with revision"));
        }
        record.resume();
        assert_eq!((record.state, record.reason.as_str(), record.ended_unix), (SweepState::Running, "", None));
        record.finish(&aggregate(20, 0));
        assert!(record.check_resumable(2).unwrap_err().contains("is done; there is nothing to resume"));
    }

    #[test]
    fn a_status_counts_the_merged_samples() {
        let status = record().status(&Tally::of(&aggregate(5, 1)), 1, 1);
        assert_eq!((status.samples_done, status.samples_failed, status.units), (6, 1, 1));
        assert_eq!(status.reason, "1 sample(s) failed: diverges (1)", "a running sweep shows its failures");
    }
}
