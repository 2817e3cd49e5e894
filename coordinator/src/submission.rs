//! A submission, from what a client sent to what is stored: the dataset,
//! configuration and spec parsed and checked, the sweep planned into jobs,
//! the inputs hashed. All of it is CPU work on possibly large inputs, so
//! [`prepare`] is synchronous and the coordinator runs it on a blocking
//! thread, never on the runtime's, and [`Admission`] bounds how many run at
//! once and how many bytes they hold.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::SweepState;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::chain::{self, Detail, Parameters};
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::fast::Scratch;
use zonesweep_shared::sweep::runner::SweepRunner;
use zonesweep_shared::sweep::{Design, SweepSpec};

use crate::error::CoordinatorError;
use crate::sweep::{Layout, Provenance, SweepRecord};

/// How many of a refused dataset's problems the answer lists.
pub const SHOWN_PROBLEMS: usize = 20;

/// The largest number of jobs one sweep may have.
pub const MAX_JOBS: u64 = 10_000_000;
/// The most samples one sweep may have: far beyond any real sweep, and low
/// enough that no count of a merged aggregate can overflow.
pub const MAX_SAMPLES: u64 = 1_000_000_000_000;
// A sensitivity sweep's integer sums cannot overflow within this limit.
const _: () = assert!(MAX_SAMPLES <= zonesweep_shared::sweep::sensitivity::MAX_SENSITIVITY_SAMPLES);

/// Admission of submissions to preparation: at most `at_once` are prepared
/// at a time (the others wait for a turn), and the request bytes of those
/// admitted, waiting or being prepared, stay within a budget; a submission
/// that would pass it is refused at once with RESOURCE_EXHAUSTED rather
/// than held in memory.
#[derive(Debug)]
pub struct Admission {
    turns: tokio::sync::Semaphore,
    budget: u64,
    admitted: Mutex<u64>,
}

/// A submission's share of the byte budget, given back when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    admission: &'a Admission,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        *self.admission.lock() -= self.bytes;
    }
}

/// A byte count as a person reads it: bytes below 1 MiB, MiB above.
fn size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes < MIB { format!("{bytes} bytes") } else { format!("{:.1} MiB", bytes as f64 / MIB as f64) }
}

impl Admission {
    pub fn new(at_once: usize, budget: u64) -> Admission {
        Admission { turns: tokio::sync::Semaphore::new(at_once), budget, admitted: Mutex::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // The count is one integer, consistent whatever panicked.
        self.admitted.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserve `bytes` of the budget for a submission, or say why not.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation<'_>, CoordinatorError> {
        let mut admitted = self.lock();
        if bytes > self.budget {
            return Err(CoordinatorError::ResourceExhausted(format!(
                "the submission is {}; the coordinator prepares at most {} of submissions at once",
                size(bytes),
                size(self.budget)
            )));
        }
        if *admitted + bytes > self.budget {
            return Err(CoordinatorError::ResourceExhausted(format!(
                "the coordinator is already preparing {} of submissions; this one's {} would pass its budget \
                 of {}: try again once they are stored",
                size(*admitted),
                size(bytes),
                size(self.budget)
            )));
        }
        *admitted += bytes;
        Ok(Reservation { admission: self, bytes })
    }

    /// Wait for a turn to prepare a submission.
    pub async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, CoordinatorError> {
        self.turns.acquire().await.map_err(|_| CoordinatorError::Unavailable("the coordinator is shutting down".into()))
    }
}

/// What a client submits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Submission {
    pub units_csv: String,
    pub panel_csv: String,
    pub units_geojson: Option<String>,
    /// Overrides of the default model configuration (TOML; may be empty).
    pub config_toml: String,
    /// The sweep spec (TOML); the default spec when blank.
    pub spec_toml: String,
    /// Overrides the spec's sample count.
    pub samples: Option<u64>,
    /// Overrides the spec's seed.
    pub seed: Option<u64>,
    /// Samples per job; the coordinator's default when `None`.
    pub job_size: Option<u64>,
    /// The client's id of this submission (see [`check_request_id`]).
    pub request_id: Option<String>,
    /// The dataset's name, for provenance.
    pub dataset_name: String,
    /// Stop once every zone probability is known to this 95 % half-width.
    pub until_ci: Option<f64>,
    /// Samples between two checks of `until_ci` ([`BLOCK_SAMPLES`] when `None`).
    pub check_every: Option<u64>,
}

/// The longest dataset name kept.
pub const MAX_DATASET_NAME: usize = 200;

/// Samples between two checks of a sweep that stops at a target
/// half-width, unless the submission says: its blocks are this many
/// samples, rounded up to whole jobs.
pub const BLOCK_SAMPLES: u64 = 1_000;

/// A client's submission id: 1–64 ASCII letters, digits and `-`.
pub fn check_request_id(id: &str) -> Result<(), CoordinatorError> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(())
    } else {
        Err(invalid(format!(
            "the request id must be 1–64 letters, digits and `-`, not {:?}",
            id.chars().take(80).collect::<String>()
        )))
    }
}

impl Submission {
    /// The bytes of its text: the dataset, the configuration and the spec.
    pub fn bytes(&self) -> u64 {
        let geojson = self.units_geojson.as_ref().map_or(0, String::len);
        [self.units_csv.len(), self.panel_csv.len(), geojson, self.config_toml.len(), self.spec_toml.len()]
            .iter()
            .map(|&n| n as u64)
            .sum()
    }
}

/// A checked submission, ready to store: its record (sequence 0 until the
/// store numbers it), its empty aggregate, and its input blobs by hash.
#[derive(Debug)]
pub struct Prepared {
    pub record: SweepRecord,
    pub empty: Aggregate,
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// The content hash blobs are stored under: SHA-256 in hex.
pub(crate) fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn invalid(error: impl ToString) -> CoordinatorError {
    CoordinatorError::InvalidArgument(error.to_string())
}

/// How a submission that does not say how many samples a job has gets its
/// job size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum JobSizing {
    /// Always this many samples.
    Fixed(u64),
    /// Jobs of about this many seconds of one thread: the coordinator times
    /// the sweep's first samples as it checks the submission
    /// ([`timed_job_size`]).
    Seconds(f64),
}

/// A sweep sized by time has at least this many jobs when it has that many
/// samples, so that it keeps many threads busy to its end and a lost job
/// costs little of it.
pub const MIN_JOBS_BY_TIME: u64 = 64;

/// Timing a sweep's samples stops after this long, or after
/// [`TIMED_SAMPLES`] samples, whichever comes first (and never before one
/// sample).
const TIMING_BUDGET: Duration = Duration::from_millis(50);
const TIMED_SAMPLES: u64 = 256;

/// The job size for jobs of about `seconds` of one thread: the sweep's first
/// samples are run (the same work a worker does, sensitivity runs and data
/// noise included) and timed on this machine. Then it is kept to
/// `samples ÷` [`MIN_JOBS_BY_TIME`] or less, and to enough that the sweep
/// has at most [`MAX_JOBS`] jobs. Only the plan depends on the timing: a
/// sweep's results are the same whatever its job size (invariant 1).
pub fn timed_job_size(runner: &SweepRunner, samples: u64, seconds: f64) -> u64 {
    let mut scratch = Scratch::default();
    let mut accumulator = runner.accumulator();
    let most_timed = TIMED_SAMPLES.min(samples).max(1);
    let started = Instant::now();
    let mut timed = 0;
    // The first sample also grows the buffers a thread reuses; counting it
    // errs toward shorter jobs.
    while timed < most_timed && (timed == 0 || started.elapsed() < TIMING_BUDGET) {
        runner.run_into(timed..timed + 1, &mut scratch, &mut accumulator);
        timed += 1;
    }
    job_size_by_time(started.elapsed().as_secs_f64() / timed as f64, samples, seconds)
}

/// The job size of [`timed_job_size`] for samples that take `per_sample`
/// seconds each.
fn job_size_by_time(per_sample: f64, samples: u64, seconds: f64) -> u64 {
    // A float to integer cast saturates: a sample timed at zero seconds
    // gives the largest size, which the bounds below then cut.
    let by_time = (seconds / per_sample).round() as u64;
    by_time.min(samples.div_ceil(MIN_JOBS_BY_TIME)).max(samples.div_ceil(MAX_JOBS)).max(1)
}

/// The job size of a sweep that stops early (`--until-ci`), sized by time:
/// it checks after blocks of whole jobs, so a size that divides the block
/// makes every block exactly `block` samples, and where the sweep stops does
/// not depend on the timing. The largest divisor at or below `timed`, if it
/// is at least half of it; otherwise (a block with no divisor near, a prime
/// say) `timed` itself, and the stopping point then depends on it (a
/// `--job-size` fixes it).
fn block_job_size(block: u64, timed: u64) -> u64 {
    largest_divisor_at_most(block, timed).filter(|&d| d >= timed.div_ceil(2)).unwrap_or(timed)
}

/// The largest divisor of `n` that is at most `most`, if any (none when
/// either is 0); by the divisors up to √n.
fn largest_divisor_at_most(n: u64, most: u64) -> Option<u64> {
    let mut best = None;
    let mut d = 1;
    while d <= n / d {
        if n % d == 0 {
            for divisor in [d, n / d] {
                if divisor <= most && best.is_none_or(|b| divisor > b) {
                    best = Some(divisor);
                }
            }
        }
        d += 1;
    }
    best
}

/// Parse, check, plan and hash a submission; every refusal is
/// INVALID_ARGUMENT and names what is wrong. CPU-bound (it may time the
/// sweep's samples for [`JobSizing::Seconds`]): call it from a blocking
/// thread.
pub fn prepare(submission: Submission, sizing: JobSizing) -> Result<Prepared, CoordinatorError> {
    let blob = DatasetBlob {
        units_csv: submission.units_csv,
        panel_csv: submission.panel_csv,
        units_geojson: submission.units_geojson,
    };
    let dataset = blob.parse().map_err(CoordinatorError::InvalidDataset)?;
    let config = Config::from_toml_overrides(&submission.config_toml, "the configuration").map_err(invalid)?;
    // The configuration against the dataset (the horizon after the data's
    // base year, at most 200 years ahead), before anything is sized by it.
    config.check_for(&dataset, "the configuration").map_err(invalid)?;
    let mut spec = if submission.spec_toml.trim().is_empty() {
        SweepSpec::default()
    } else {
        SweepSpec::from_toml(&submission.spec_toml, "the sweep spec").map_err(invalid)?
    };
    if let Some(samples) = submission.samples {
        spec.samples = samples;
    }
    if let Some(seed) = submission.seed {
        spec.seed = seed;
    }
    let runner = SweepRunner::new(&dataset, &config, &spec).map_err(invalid)?;
    if spec.samples > MAX_SAMPLES {
        return Err(invalid(format!("{} samples is more than the {MAX_SAMPLES} a sweep may have", spec.samples)));
    }
    if let Some(target) = submission.until_ci {
        if !(target > 0.0 && target < 0.5) {
            return Err(invalid(format!(
                "the target half-width (--until-ci) is {target}; it must be between 0 and 0.5, e.g. 0.01"
            )));
        }
        if submission.check_every.is_some_and(|n| n == 0 || n > spec.samples) {
            return Err(invalid(format!(
                "the samples between checks (--check-every) must be 1–{} (the sweep's samples)",
                spec.samples
            )));
        }
        if spec.design == Design::LatinHypercube {
            return Err(invalid(
                "a Latin-hypercube sweep cannot stop early (its strata are cut for all its samples); \
                 use design = \"monte-carlo\" or \"sobol\" with --until-ci",
            ));
        }
    }
    let job_size = match (submission.job_size, sizing) {
        (Some(size), _) | (None, JobSizing::Fixed(size)) => size,
        (None, JobSizing::Seconds(seconds)) => {
            let timed = timed_job_size(&runner, spec.samples, seconds);
            match submission.until_ci {
                Some(_) => block_job_size(submission.check_every.unwrap_or(BLOCK_SAMPLES), timed),
                None => timed,
            }
            // However the time came out, never more than MAX_JOBS jobs.
            .max(spec.samples.div_ceil(MAX_JOBS))
        }
    };
    if !(1..=MAX_SAMPLES).contains(&job_size) {
        return Err(invalid(format!("the job size is {job_size}; it must be 1–{MAX_SAMPLES}")));
    }
    let jobs = spec.samples.div_ceil(job_size);
    if jobs > MAX_JOBS {
        return Err(invalid(format!(
            "{} samples in jobs of {job_size} make {jobs} jobs; at most {MAX_JOBS} are allowed (use a larger job size)",
            spec.samples
        )));
    }
    if submission.dataset_name.len() > MAX_DATASET_NAME || submission.dataset_name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the dataset name must be at most {MAX_DATASET_NAME} bytes without control characters, not {:?}",
            submission.dataset_name.chars().take(80).collect::<String>()
        )));
    }
    let empty = runner.empty_aggregate();
    let dataset_bytes = blob.to_bytes();
    // The effective configuration, every key written out: its hash changes
    // when a default does, and `show --config` prints what was run.
    let config_bytes = config.to_toml().into_bytes();
    let spec_bytes = spec.to_toml().into_bytes();
    let (dataset_hash, config_hash, spec_hash) = (hash(&dataset_bytes), hash(&config_bytes), hash(&spec_bytes));
    let id_seed = format!("{dataset_hash}{spec_hash}{:?}{}", SystemTime::now(), rand::random::<u64>());
    let id = SweepId::parse(&format!("sw-{}", &hash(id_seed.as_bytes())[..16]))?;
    let record = SweepRecord {
        id,
        sequence: 0,
        dataset_hash: dataset_hash.clone(),
        config_hash: config_hash.clone(),
        spec_hash: spec_hash.clone(),
        samples: spec.samples,
        seed: spec.seed,
        job_size,
        jobs: jobs as u32,
        state: SweepState::Running,
        reason: String::new(),
        unit_ids: dataset.units().iter().map(|u| u.id.clone()).collect(),
        unit_names: dataset.units().iter().map(|u| u.name.clone()).collect(),
        nominal_zones: nominal_zones(&dataset, &config),
        submitted_unix: Some(crate::sweep::now_unix()),
        request_id: submission.request_id,
        ended_unix: None,
        provenance: Provenance {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            chain: zonesweep_shared::CHAIN_REVISION,
            dataset_name: submission.dataset_name,
            ..Provenance::default()
        },
        layout: Layout {
            until_ci: submission.until_ci,
            block_jobs: if submission.until_ci.is_some() {
                submission.check_every.unwrap_or(BLOCK_SAMPLES).div_ceil(job_size).clamp(1, u64::from(u32::MAX)) as u32
            } else {
                0
            },
            ..Layout::default()
        },
    };
    let blobs = vec![(dataset_hash, dataset_bytes), (config_hash, config_bytes), (spec_hash, spec_bytes)];
    Ok(Prepared { record, empty, blobs })
}

/// Each unit's zone in one run of the chain at the configuration's nominal
/// parameters (what `evaluate` prints); empty when that run fails, which
/// does not stop a sweep whose samples may still succeed.
fn nominal_zones(dataset: &Dataset, config: &Config) -> Vec<u8> {
    chain::run(dataset, config, &Parameters::nominal(config), Detail::Sample).map_or_else(|_| Vec::new(), |r| r.zone)
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use zonesweep_shared::data::demo;

    use super::*;

    fn submission(samples: u64, job_size: u64) -> Submission {
        let (units_csv, panel_csv) = demo::generate(6, 3).unwrap().to_csv();
        Submission {
            units_csv,
            panel_csv,
            samples: Some(samples),
            seed: Some(7),
            job_size: Some(job_size),
            ..Default::default()
        }
    }

    #[test]
    fn a_submission_is_planned_into_jobs_and_hashed() {
        let prepared = prepare(submission(25, 10), JobSizing::Fixed(100)).unwrap();
        let record = &prepared.record;
        assert_eq!((record.samples, record.seed, record.job_size, record.jobs), (25, 7, 10, 3));
        assert_eq!(record.unit_ids.len(), 6);
        assert_eq!(prepared.empty.shape.n_units, 6);
        assert!(record.id.as_str().starts_with("sw-") && record.id.as_str().len() == 19, "{}", record.id);
        let hashes: Vec<&str> = prepared.blobs.iter().map(|(hash, _)| hash.as_str()).collect();
        assert_eq!(hashes, [&record.dataset_hash, &record.config_hash, &record.spec_hash]);
        for (hash, bytes) in &prepared.blobs {
            assert_eq!(*hash, super::hash(bytes), "a blob is stored under its content's hash");
        }
        // Without a job size, the coordinator's default; two submissions get two ids.
        let by_default = prepare(Submission { job_size: None, ..submission(25, 10) }, JobSizing::Fixed(100)).unwrap();
        assert_eq!((by_default.record.job_size, by_default.record.jobs), (100, 1));
        assert_ne!(by_default.record.id, prepared.record.id);
        assert_eq!(by_default.record.spec_hash, prepared.record.spec_hash, "the same spec hashes the same");
        // Sized by time: 25 samples make at most 64 jobs of one sample, so
        // at least 25 jobs whatever the timing.
        let by_time = prepare(Submission { job_size: None, ..submission(25, 10) }, JobSizing::Seconds(1.0)).unwrap();
        assert_eq!((by_time.record.job_size, by_time.record.jobs), (1, 25));
        // Stopping early, the size divides the block: 10,000 samples make
        // jobs of at most 157 by time, and 1,000-sample blocks then jobs of 125.
        let stopping =
            Submission { until_ci: Some(0.1), check_every: Some(1_000), job_size: None, ..submission(10_000, 1) };
        let stopping = prepare(stopping, JobSizing::Seconds(1.0)).unwrap();
        assert_eq!((stopping.record.job_size, stopping.record.layout.block_jobs), (125, 8));
        assert_eq!(largest_divisor_at_most(1_000, 157), Some(125));
        assert_eq!(largest_divisor_at_most(1_000, 5_000), Some(1_000));
        assert_eq!(largest_divisor_at_most(997, 500), Some(1));
        assert_eq!(largest_divisor_at_most(0, 5), None);
        assert_eq!(largest_divisor_at_most(12, 0), None);
        assert_eq!(largest_divisor_at_most(1_000_000_000_000, 1_000_000_000), Some(1_000_000_000));
        // A block with no divisor near the timed size: the timed size.
        assert_eq!(block_job_size(1_000, 157), 125);
        assert_eq!(block_job_size(10_007, 157), 157);
        assert_eq!(block_job_size(10_007, 20_000), 10_007);
        // A prime block beyond MAX_JOBS one-sample jobs is not refused.
        let prime = Submission { until_ci: Some(0.1), check_every: Some(10_007), job_size: None, ..submission(1, 1) };
        let prime = Submission { samples: Some(20_000_000), ..prime };
        let prime = prepare(prime, JobSizing::Seconds(1.0)).unwrap();
        assert!(prime.record.job_size >= 2, "{} samples a job", prime.record.job_size);
        // A size the submission gives is kept.
        let given = prepare(submission(25, 10), JobSizing::Seconds(1.0)).unwrap();
        assert_eq!(given.record.job_size, 10);
    }

    #[test]
    fn jobs_sized_by_time_follow_the_time_within_their_bounds() {
        let Submission { units_csv, panel_csv, .. } = submission(1, 1);
        let dataset = DatasetBlob { units_csv, panel_csv, units_geojson: None }.parse().unwrap();
        let config = Config::default();
        let runner = SweepRunner::new(&dataset, &config, &SweepSpec::default()).unwrap();
        // A sample of 6 units takes microseconds: a second's worth of them is
        // more than 10,000 ÷ 64, so the least number of jobs decides.
        assert_eq!(timed_job_size(&runner, 10_000, 1.0), 10_000u64.div_ceil(MIN_JOBS_BY_TIME));
        // Next to nothing: one sample a job, unless that makes too many jobs.
        assert_eq!(timed_job_size(&runner, 10_000, 1e-12), 1);
        assert_eq!(timed_job_size(&runner, 3 * MAX_JOBS, 1e-12), 3);
        // Between the bounds, the size follows the time (given, so that the
        // test does not depend on how fast this machine is just now): a
        // hundred times the seconds, a hundred times the samples.
        let samples = 10_000_000;
        assert_eq!(job_size_by_time(1e-4, samples, 0.01), 100);
        assert_eq!(job_size_by_time(1e-4, samples, 1.0), 10_000);
        assert_eq!(job_size_by_time(0.0, samples, 1.0), samples.div_ceil(MIN_JOBS_BY_TIME));
        assert_eq!(job_size_by_time(10.0, 3 * MAX_JOBS, 1.0), 3);
        // Timed here: within its bounds.
        let timed = timed_job_size(&runner, samples, 0.01);
        assert!((samples.div_ceil(MAX_JOBS)..=samples.div_ceil(MIN_JOBS_BY_TIME)).contains(&timed), "{timed}");
    }

    #[test]
    fn bad_submissions_are_invalid_arguments_that_say_why() {
        let refusal = |submission: Submission| {
            let error = prepare(submission, JobSizing::Fixed(100)).unwrap_err();
            assert_eq!(error.code(), Code::InvalidArgument, "{error}");
            error.to_string()
        };
        assert!(refusal(submission(u64::MAX, 1 << 63)).contains("samples is more than"));
        assert!(refusal(submission(MAX_SAMPLES, 1)).contains("at most 10000000 are allowed"));
        assert!(refusal(submission(10, 0)).contains("the job size is 0; it must be 1–1000000000000"));
        assert!(refusal(submission(10, MAX_SAMPLES + 1)).contains("the job size is 1000000000001"));
        assert!(refusal(Submission { spec_toml: "samplez = 3".into(), ..submission(10, 10) }).contains("samplez"));
        assert!(refusal(Submission { panel_csv: "id,year\n".into(), ..submission(10, 10) }).contains("problem"));
    }

    #[test]
    fn horizons_outside_the_bounds_are_refused_before_anything_is_sized() {
        let with_years = |horizon: i64, milestone: i64| Submission {
            config_toml: format!("[scenarios]\nhorizon = {horizon}\nmilestone = {milestone}\n"),
            ..submission(10, 10)
        };
        for (horizon, milestone, message) in [
            (3100, 2030, "the configuration: scenarios.horizon is 3100; it must be a year 1900–2200"),
            (
                2010,
                2005,
                "the configuration: scenarios.horizon is 2010; with the data's base year 2020 it must be 2021–2200",
            ),
            (2_147_483_647, 2030, "scenarios.horizon is 2147483647; it must be a year 1900–2200"),
            (3_000_000, 2030, "scenarios.horizon is 3000000; it must be a year 1900–2200"),
            (-2_147_483_000, -2_147_483_600, "scenarios.horizon is -2147483000; it must be a year 1900–2200"),
        ] {
            let error = prepare(with_years(horizon, milestone), JobSizing::Fixed(100)).unwrap_err();
            assert_eq!(error.code(), Code::InvalidArgument, "{error}");
            assert!(error.to_string().contains(message), "{error}");
        }
        let farthest = prepare(with_years(2200, 2030), JobSizing::Fixed(100)).unwrap();
        assert_eq!(farthest.empty.shape.check(), Ok(()));
    }

    #[tokio::test]
    async fn admission_bounds_turns_and_bytes() {
        let admission = Admission::new(2, 100);
        let first = admission.reserve(60).unwrap();
        let error = admission.reserve(41).unwrap_err();
        assert_eq!(error.code(), Code::ResourceExhausted);
        assert_eq!(
            error.to_string(),
            "the coordinator is already preparing 60 bytes of submissions; this one's 41 bytes would pass its budget \
             of 100 bytes: try again once they are stored"
        );
        let second = admission.reserve(40).unwrap();
        let error = admission.reserve(101).unwrap_err();
        assert!(error.to_string().contains("the submission is 101 bytes; the coordinator prepares at most 100 bytes"));
        drop(first);
        let third = admission.reserve(60).unwrap();
        drop((second, third));
        assert_eq!(*admission.lock(), 0, "every reservation is given back");

        let turns = [admission.turn().await.unwrap(), admission.turn().await.unwrap()];
        assert!(admission.turns.try_acquire().is_err(), "a third submission waits for a turn");
        drop(turns);
        assert!(admission.turns.try_acquire().is_ok());
    }
}
