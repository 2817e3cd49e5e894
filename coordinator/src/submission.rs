//! A submission, from what a client sent to what is stored: the dataset,
//! configuration and spec parsed and checked, the sweep planned into jobs,
//! the inputs hashed. All of it is CPU work on possibly large inputs, so
//! [`prepare`] is synchronous and the coordinator runs it on a blocking
//! thread, never on the runtime's.

use std::time::SystemTime;

use sha2::{Digest, Sha256};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::SweepState;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::SweepRunner;

use crate::error::CoordinatorError;
use crate::sweep::SweepRecord;

/// The largest number of jobs one sweep may have.
pub const MAX_JOBS: u64 = 10_000_000;
/// The most samples one sweep may have: far beyond any real sweep, and low
/// enough that no count of a merged aggregate can overflow.
pub const MAX_SAMPLES: u64 = 1_000_000_000_000;

/// What a client submits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
}

/// A checked submission, ready to store: its record (sequence 0 until the
/// store numbers it), its empty aggregate, and its input blobs by hash.
#[derive(Debug)]
pub struct Prepared {
    pub record: SweepRecord,
    pub empty: Aggregate,
    pub blobs: Vec<(String, Vec<u8>)>,
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn invalid(error: impl ToString) -> CoordinatorError {
    CoordinatorError::InvalidArgument(error.to_string())
}

/// Parse, check, plan and hash a submission; every refusal is
/// INVALID_ARGUMENT and names what is wrong. CPU-bound: call it from a
/// blocking thread.
pub fn prepare(submission: Submission, default_job_size: u64) -> Result<Prepared, CoordinatorError> {
    let blob = DatasetBlob {
        units_csv: submission.units_csv,
        panel_csv: submission.panel_csv,
        units_geojson: submission.units_geojson,
    };
    let dataset = blob.parse().map_err(invalid)?;
    let config = Config::from_toml_overrides(&submission.config_toml, "the configuration").map_err(invalid)?;
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
    let job_size = submission.job_size.unwrap_or(default_job_size);
    if job_size == 0 {
        return Err(invalid("the job size must be at least 1"));
    }
    let jobs = spec.samples.div_ceil(job_size);
    if jobs > MAX_JOBS {
        return Err(invalid(format!(
            "{} samples in jobs of {job_size} make {jobs} jobs; at most {MAX_JOBS} are allowed (use a larger job size)",
            spec.samples
        )));
    }
    let empty = Aggregate::empty(runner.shape());
    let dataset_bytes = blob.to_bytes();
    let config_bytes = submission.config_toml.into_bytes();
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
    };
    let blobs = vec![(dataset_hash, dataset_bytes), (config_hash, config_bytes), (spec_hash, spec_bytes)];
    Ok(Prepared { record, empty, blobs })
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
        let prepared = prepare(submission(25, 10), 100).unwrap();
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
        let by_default = prepare(Submission { job_size: None, ..submission(25, 10) }, 100).unwrap();
        assert_eq!((by_default.record.job_size, by_default.record.jobs), (100, 1));
        assert_ne!(by_default.record.id, prepared.record.id);
        assert_eq!(by_default.record.spec_hash, prepared.record.spec_hash, "the same spec hashes the same");
    }

    #[test]
    fn bad_submissions_are_invalid_arguments_that_say_why() {
        let refusal = |submission: Submission| {
            let error = prepare(submission, 100).unwrap_err();
            assert_eq!(error.code(), Code::InvalidArgument, "{error}");
            error.to_string()
        };
        assert!(refusal(submission(u64::MAX, 1 << 63)).contains("samples is more than"));
        assert!(refusal(submission(MAX_SAMPLES, 1)).contains("at most 10000000 are allowed"));
        assert!(refusal(submission(10, 0)).contains("job size"));
        assert!(refusal(Submission { spec_toml: "samplez = 3".into(), ..submission(10, 10) }).contains("samplez"));
        assert!(refusal(Submission { panel_csv: "id,year\n".into(), ..submission(10, 10) }).contains("problem"));
    }

    /// A horizon whose results the wire refuses, or at which every sample
    /// fails, is refused at submission instead of making a sweep that never
    /// ends (the demonstration data end in 2020).
    #[test]
    fn horizons_no_result_could_carry_are_refused() {
        let with_horizon = |horizon: i32| Submission {
            config_toml: format!("[scenarios]\nhorizon = {horizon}\nmilestone = {}\n", horizon.min(2020)),
            ..submission(10, 10)
        };
        for horizon in [4090, 2020, 2019, i32::MAX] {
            let error = prepare(with_horizon(horizon), 100).unwrap_err();
            assert_eq!(error.code(), Code::InvalidArgument, "{error}");
            assert!(error.to_string().contains(&format!("projection horizon {horizon}")), "{error}");
        }
        assert_eq!(prepare(with_horizon(3020), 100).unwrap().empty.shape.horizon, 3020);
    }
}
