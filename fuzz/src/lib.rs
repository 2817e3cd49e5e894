//! What the fuzz targets share: how an input is cut into texts, the small
//! dataset the configuration and spec targets run the chain on, the sweep the
//! result target completes jobs of, and the checks every target makes of what
//! a worker computes.
//!
//! The seed corpora under `fuzz/corpus/` are written by
//! `cargo +nightly run --example write_seeds` (from `fuzz/`), from these
//! same fixtures.

use std::sync::OnceLock;

use prost::Message;
use zonesweep_coordinator::state::{State, SweepRuntime};
use zonesweep_coordinator::sweep::SweepRecord;
use zonesweep_proto::convert::{aggregate_to_pb, result_from_pb, result_to_pb};
use zonesweep_proto::ids::{LeaseRef, SweepId};
use zonesweep_proto::pb;
use zonesweep_proto::status::SweepState;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::{Aggregate, Shape};
use zonesweep_shared::sweep::runner::SweepRunner;

/// The texts of an input whose parts are separated by NUL bytes (no text
/// the targets take may hold one); `None` when a part is not UTF-8, as a
/// file read with `read_to_string` or a protobuf string would be refused
/// before any parsing.
pub fn texts(data: &[u8]) -> Option<Vec<&str>> {
    data.split(|&b| b == 0).map(|part| std::str::from_utf8(part).ok()).collect()
}

/// Units of the small dataset the configuration, spec and result targets use.
pub const FIXTURE_UNITS: usize = 6;
/// Its generator seed.
pub const FIXTURE_SEED: u64 = 3;

/// A small synthetic dataset (6 units, 2000–2020), made once.
pub fn fixture_dataset() -> &'static Dataset {
    static DATASET: OnceLock<Dataset> = OnceLock::new();
    DATASET.get_or_init(|| demo::generate(FIXTURE_UNITS, FIXTURE_SEED).expect("the demonstration generator works"))
}

/// The fixture dataset's files (`units.csv`, `panel.csv`), as a client submits them.
pub fn fixture_csv() -> &'static (String, String) {
    static CSV: OnceLock<(String, String)> = OnceLock::new();
    CSV.get_or_init(|| fixture_dataset().to_csv())
}

/// What a worker does with a sweep the coordinator accepted: run samples
/// `samples` into an aggregate. That aggregate must pass the coordinator's
/// own checks: consistent, of the sweep's shape, and decodable against that
/// shape after a trip over the wire. Panics otherwise (a finding).
pub fn run_as_worker(dataset: &Dataset, config: &Config, spec: &SweepSpec, samples: &[u64]) -> Option<Aggregate> {
    let runner = SweepRunner::new(dataset, config, spec).ok()?;
    let shape = runner.shape();
    assert_eq!(shape, Shape::new(dataset.n_units(), dataset.base_year(), config));
    let mut aggregate = runner.empty_aggregate();
    for &k in samples {
        runner.add_sample(&mut aggregate, k);
    }
    assert_eq!(aggregate.samples_total(), samples.len() as u64);
    if let Err(e) = aggregate.check_consistency() {
        panic!("a worker's own result is inconsistent: {e}");
    }
    match result_from_pb(&aggregate_to_pb(&aggregate), &shape) {
        Ok(decoded) => {
            assert_eq!(decoded.to_aggregate().as_ref(), Ok(&aggregate), "a worker's result changes on the wire")
        }
        Err(e) => panic!("a worker's own result is refused at the wire: {e}"),
    }
    Some(aggregate)
}

/// The sweep of the result target: id, samples and job size.
pub const SWEEP: &str = "sw-fuzz";
pub const SWEEP_SAMPLES: u64 = 10;
pub const SWEEP_JOB_SIZE: u64 = 4;

/// The coordinator's state for the result target: sweep [`SWEEP`] over the
/// fixture dataset with the default configuration, 10 samples in jobs of 4;
/// job 0 is merged, jobs 1 and 2 are not. `results[j]` is job j's real result.
pub struct ResultFixture {
    pub state: State,
    pub shape: Shape,
    pub results: Vec<Aggregate>,
}

pub fn result_fixture() -> &'static ResultFixture {
    static FIXTURE: OnceLock<ResultFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dataset = fixture_dataset();
        let config = Config::default();
        let spec = SweepSpec { samples: SWEEP_SAMPLES, seed: 7, ..SweepSpec::default() };
        let runner = SweepRunner::new(dataset, &config, &spec).expect("the default sweep runs");
        let jobs = SWEEP_SAMPLES.div_ceil(SWEEP_JOB_SIZE);
        let results: Vec<Aggregate> = (0..jobs)
            .map(|j| runner.run_range(j * SWEEP_JOB_SIZE..((j + 1) * SWEEP_JOB_SIZE).min(SWEEP_SAMPLES)))
            .collect();
        let record = SweepRecord {
            id: sweep_id(),
            sequence: 1,
            dataset_hash: String::new(),
            config_hash: String::new(),
            spec_hash: String::new(),
            samples: SWEEP_SAMPLES,
            seed: spec.seed,
            job_size: SWEEP_JOB_SIZE,
            jobs: jobs as u32,
            state: SweepState::Running,
            reason: String::new(),
            unit_ids: dataset.units().iter().map(|u| u.id.clone()).collect(),
            unit_names: dataset.units().iter().map(|u| u.name.clone()).collect(),
            nominal_zones: Vec::new(),
            submitted_unix: None,
            ended_unix: None,
            request_id: None,
            provenance: Default::default(),
            layout: Default::default(),
        };
        let mut state = State::new(1);
        state.insert(SweepRuntime::new(record, results[0].clone(), &[0]));
        ResultFixture { state, shape: runner.shape(), results }
    })
}

pub fn sweep_id() -> SweepId {
    SweepId::parse(SWEEP).expect("a valid sweep id")
}

/// The bytes of a worker's `CompleteRequest` for job `job` of [`SWEEP`]
/// carrying `aggregate`.
pub fn complete_request(job: u32, aggregate: &Aggregate) -> Vec<u8> {
    request_with(job, aggregate_to_pb(aggregate))
}

/// [`complete_request`] with the result packed, as workers send it.
pub fn complete_request_packed(job: u32, aggregate: &Aggregate) -> Vec<u8> {
    request_with(job, result_to_pb(aggregate))
}

fn request_with(job: u32, aggregate: pb::Aggregate) -> Vec<u8> {
    pb::CompleteRequest {
        worker_id: "wk-fuzz".to_owned(),
        lease: Some(LeaseRef::new(sweep_id(), job, 1).to_pb()),
        aggregate: Some(aggregate),
        lease_capacity: 0,
        call: 0,
    }
    .encode_to_vec()
}
