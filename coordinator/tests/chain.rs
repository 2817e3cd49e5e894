//! One sweep, one model chain revision: a coordinator refuses workers of
//! another revision, and a sweep it finds recorded under another revision
//! (accepted by another release) is failed when it starts, its results kept
//! and served, with resuming and extending it refused, so no sample of this
//! build is merged with samples of another.

use std::path::Path;
use std::time::Duration;

use tonic::Code;
use zonesweep_coordinator::store::Store;
use zonesweep_coordinator::submission::Submission;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig, CoordinatorError};
use zonesweep_proto::status::SweepState;
use zonesweep_shared::CHAIN_REVISION;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::SweepRunner;

fn files() -> (String, String) {
    demo::generate(6, 3).expect("demo dataset").to_csv()
}

fn request(samples: u64, job_size: u64) -> Submission {
    let (units_csv, panel_csv) = files();
    Submission {
        units_csv,
        panel_csv,
        samples: Some(samples),
        seed: Some(7),
        job_size: Some(job_size),
        ..Submission::default()
    }
}

fn honest(samples: u64, range: std::ops::Range<u64>) -> Aggregate {
    let (units_csv, panel_csv) = files();
    let dataset = DatasetBlob { units_csv, panel_csv, units_geojson: None }.parse().unwrap();
    let spec = SweepSpec { samples, seed: 7, ..SweepSpec::default() };
    SweepRunner::new(&dataset, &Config::default(), &spec).unwrap().run_range(range)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn start(db: &Path) -> Coordinator {
    Coordinator::start(CoordinatorConfig::new(db.to_path_buf(), "chain-token".into())).await.unwrap()
}

#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, CoordinatorError>, code: Code, message: &str) {
    match result {
        Err(error) => {
            assert_eq!(error.code(), code, "{error}");
            assert!(error.to_string().contains(message), "`{error}` does not say `{message}`");
        }
        Ok(value) => panic!("expected {code:?} ({message}), got {value:?}"),
    }
}

#[test]
fn a_worker_of_another_chain_revision_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    runtime.block_on(async {
        let coordinator = start(&dir.path().join("db.redb")).await;
        assert_refused(
            coordinator.register("newer", 1, CHAIN_REVISION + 1),
            Code::FailedPrecondition,
            &format!("model chain revision {}, and this coordinator", CHAIN_REVISION + 1),
        );
        assert_refused(coordinator.register("older", 1, 0), Code::FailedPrecondition, "sends no model chain revision");
        assert!(coordinator.workers().is_empty(), "a refused worker is not registered");
        let worker = coordinator.register("same", 2, CHAIN_REVISION).expect("a worker of this revision joins");
        assert_eq!(coordinator.workers().len(), 1);
        assert_eq!(coordinator.workers()[0].0.id, worker.worker_id);
    });
}

#[test]
fn a_sweep_recorded_under_another_chain_revision_is_failed_with_its_results_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.redb");
    let runtime1 = runtime();
    let (running, done) = runtime1.block_on(async {
        let coordinator = start(&db).await;
        let worker = coordinator.register("chain", 1, CHAIN_REVISION).unwrap().worker_id;
        let running = coordinator.submit(request(8, 4)).await.unwrap().id;
        let job = coordinator.lease(&worker, 1, 0).unwrap().remove(0);
        assert_eq!(job.lease.sweep(), &running);
        assert!(coordinator.complete(&worker, &job.lease, honest(8, job.samples.clone())).await.unwrap());
        let done = coordinator.submit(request(4, 4)).await.unwrap().id;
        // The rest of the running sweep stays pending; the second finishes.
        let mut jobs = coordinator.lease(&worker, 2, 0).unwrap();
        jobs.retain(|job| job.lease.sweep() == &done);
        let job = jobs.remove(0);
        assert!(coordinator.complete(&worker, &job.lease, honest(4, job.samples.clone())).await.unwrap());
        assert_eq!(coordinator.status(&running).unwrap().provenance.chain, CHAIN_REVISION);
        (running, done)
    });
    runtime1.shutdown_timeout(Duration::from_secs(5));

    // As if another release, of the next revision, had accepted both.
    {
        let store = Store::open(&db).unwrap();
        let (records, unreadable) = store.sweep_entries().unwrap();
        assert!(unreadable.is_empty());
        for mut record in records {
            record.provenance.chain = CHAIN_REVISION + 1;
            store.update_sweep(&record).unwrap();
        }
    }

    let runtime2 = runtime();
    runtime2.block_on(async {
        let coordinator = start(&db).await;
        let status = coordinator.status(&running).unwrap();
        assert_eq!(status.state, SweepState::Failed, "{status:?}");
        let expected = format!("model chain revision {} (zonesweep", CHAIN_REVISION + 1);
        assert!(status.reason.contains(&expected), "{}", status.reason);
        assert!(status.reason.contains("its results so far are kept"), "{}", status.reason);
        assert_eq!(status.samples_done, 4, "the results merged before are kept");
        let results = coordinator.query(&running).await.unwrap();
        assert_eq!(results.aggregate, honest(8, 0..4), "and served as they were");

        let worker = coordinator.register("chain", 1, CHAIN_REVISION).unwrap().worker_id;
        assert!(coordinator.lease(&worker, 4, 0).unwrap().is_empty(), "none of its jobs is handed out");
        assert_refused(coordinator.resume(&running).await, Code::FailedPrecondition, &expected);
        assert_eq!(coordinator.status(&done).unwrap().state, SweepState::Done, "a done sweep stays done");
        assert_refused(coordinator.extend(&done, 4).await, Code::FailedPrecondition, &expected);
        assert_eq!(coordinator.status(&done).unwrap().samples, 4);
    });
    runtime2.shutdown_timeout(Duration::from_secs(5));

    // The failure was stored: a third start finds it as it was left.
    let runtime3 = runtime();
    runtime3.block_on(async {
        let coordinator = start(&db).await;
        let status = coordinator.status(&running).unwrap();
        assert_eq!(status.state, SweepState::Failed);
        assert_eq!(status.samples_done, 4);
    });
}
