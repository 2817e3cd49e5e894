//! The coordinator's database under damage and a full disk: a sweep whose
//! stored data is damaged is quarantined and the others are served
//! (invariant 2: nothing damaged is served as a result), and after the disk
//! fills up and is given space again the coordinator takes results again
//! without a restart, having lost nothing it acknowledged.
//!
//! The full-disk test mounts a small tmpfs, so it needs root; elsewhere it
//! prints that it is skipped.
//!
//! One sweep, one model chain revision: a coordinator refuses workers of
//! another revision, and a sweep it finds recorded under another revision
//! (accepted by another release) is failed when it starts, its results kept
//! and served, with resuming and extending it refused, so no sample of this
//! build is merged with samples of another.

// Progress notes go to the test runner, whose standard error stays open.
#![allow(clippy::disallowed_macros)]

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tonic::Code;
use zonesweep_coordinator::offline;
use zonesweep_coordinator::schema::AGGREGATES;
use zonesweep_coordinator::store::Store;
use zonesweep_coordinator::submission::Submission;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig, CoordinatorError};
use zonesweep_proto::ids::{SweepId, WorkerId};
use zonesweep_proto::status::SweepState;
use zonesweep_shared::CHAIN_REVISION;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::SweepRunner;

/// The longest any poll in these tests waits.
const DEADLINE: Duration = Duration::from_secs(90);

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

/// The honest result of samples `range` of a sweep of `samples` samples, seed 7.
fn honest(samples: u64, range: std::ops::Range<u64>) -> Aggregate {
    let (units_csv, panel_csv) = files();
    let dataset = DatasetBlob { units_csv, panel_csv, units_geojson: None }.parse().unwrap();
    let spec = SweepSpec { samples, seed: 7, ..SweepSpec::default() };
    SweepRunner::new(&dataset, &Config::default(), &spec).unwrap().run_range(range)
}

/// A worker registered with `coordinator`.
fn worker(coordinator: &Coordinator) -> WorkerId {
    coordinator.register("storage", 1, CHAIN_REVISION).expect("this build's chain").worker_id
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn start(db: &Path) -> Result<Coordinator, CoordinatorError> {
    Coordinator::start(CoordinatorConfig::new(db.to_path_buf(), "storage-token".into())).await
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
fn a_sweep_whose_stored_data_is_damaged_is_quarantined_and_the_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.redb");
    let runtime1 = runtime();
    let (damaged, healthy) = runtime1.block_on(async {
        let coordinator = start(&db).await.unwrap();
        let damaged = coordinator.submit(request(8, 4)).await.unwrap().id;
        let healthy = coordinator.submit(request(8, 4)).await.unwrap().id;
        // One job of the first sweep, so its aggregate holds results.
        let worker = worker(&coordinator);
        let job = coordinator.lease(&worker, 1, 0).unwrap().remove(0);
        assert_eq!(job.lease.sweep(), &damaged);
        assert!(coordinator.complete(&worker, &job.lease, honest(8, job.samples.clone())).await.unwrap());
        (damaged, healthy)
    });
    runtime1.shutdown_timeout(Duration::from_secs(5));

    // One flipped bit in the middle of the stored aggregate.
    let flipped = {
        let database = redb::Database::open(&db).unwrap();
        let txn = database.begin_write().unwrap();
        let flipped = {
            use redb::ReadableTable as _;
            let mut table = txn.open_table(AGGREGATES).unwrap();
            let mut bytes = table.get(damaged.as_str()).unwrap().unwrap().value().to_vec();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x04;
            table.insert(damaged.as_str(), bytes.as_slice()).unwrap();
            bytes
        };
        txn.commit().unwrap();
        flipped
    };

    let runtime2 = runtime();
    runtime2.block_on(async {
        let coordinator = start(&db).await.expect("the coordinator starts despite one damaged sweep");
        let listed = coordinator.list();
        assert_eq!(listed.len(), 2, "{listed:?}");
        let quarantined = coordinator.status(&damaged).unwrap();
        assert_eq!(quarantined.state, SweepState::Failed, "{quarantined:?}");
        assert!(quarantined.reason.starts_with("quarantined:"), "{}", quarantined.reason);
        assert!(quarantined.reason.contains("checksum does not match"), "{}", quarantined.reason);
        assert_refused(coordinator.query(&damaged).await, Code::DataLoss, "quarantined");

        // The other sweep runs to its end and is served.
        let worker = worker(&coordinator);
        let jobs = coordinator.lease(&worker, 1024, 0).unwrap();
        assert_eq!(jobs.len(), 2);
        assert!(jobs.iter().all(|job| job.lease.sweep() == &healthy), "nothing of the quarantined sweep is leased");
        for job in jobs {
            assert!(coordinator.complete(&worker, &job.lease, honest(8, job.samples.clone())).await.unwrap());
        }
        let results = coordinator.query(&healthy).await.unwrap();
        assert_eq!(results.status.state, SweepState::Done);
        assert_eq!(results.aggregate, honest(8, 0..8));
    });
    runtime2.shutdown_timeout(Duration::from_secs(5));

    // The quarantine is durable, the damaged bytes are kept, and a query of
    // the file shows the same.
    let store = Store::open_existing(&db).unwrap();
    let record = store.sweep(&damaged).unwrap().unwrap();
    assert_eq!(record.state, SweepState::Failed);
    assert!(record.reason.starts_with("quarantined:"), "{}", record.reason);
    let database = redb::ReadOnlyDatabase::open(&db).unwrap();
    let kept = {
        use redb::ReadableDatabase as _;
        let txn = database.begin_read().unwrap();
        txn.open_table(AGGREGATES).unwrap().get(damaged.as_str()).unwrap().unwrap().value().to_vec()
    };
    drop(database);
    assert_eq!(kept, flipped, "the damaged data is kept for inspection");
    let listed = offline::list(&store).unwrap();
    let offline_status = listed.iter().find(|s| s.id == damaged).unwrap();
    assert_eq!(offline_status.state, SweepState::Failed);
    assert!(offline_status.reason.contains("checksum does not match"), "{}", offline_status.reason);
    assert_refused(offline::query(&store, &damaged), Code::DataLoss, "checksum does not match");
    assert_eq!(offline::query(&store, &healthy).unwrap().aggregate, honest(8, 0..8));
}

/// A tmpfs mounted for the length of a test; unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let dir = dir.to_path_buf();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Tmpfs { dir })
    }

    fn resize(&self, size: &str) {
        let output = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .expect("mount runs");
        assert!(output.status.success(), "remount: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Write a filler file until the file system is full.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut file = File::create(&path).unwrap();
        let chunk = vec![0x5a_u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) => {
                    assert_eq!(error.raw_os_error(), Some(28), "the filler stops at ENOSPC: {error}");
                    break;
                }
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn after_a_full_disk_the_coordinator_takes_results_again_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = match Tmpfs::mount(dir.path(), "4M") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("SKIPPED: the full-disk test needs to mount a tmpfs (run it as root): {why}");
            return;
        }
    };
    let db = dir.path().join("db.redb");
    let samples = 40;
    let runtime = runtime();
    let acknowledged = runtime.block_on(async {
        let coordinator = start(&db).await.unwrap();
        let sweep: SweepId = coordinator.submit(request(samples, 2)).await.unwrap().id;
        let worker = worker(&coordinator);
        let jobs = coordinator.lease(&worker, 1024, 0).unwrap();
        assert_eq!(jobs.len(), 20);
        let results: Vec<Aggregate> = jobs.iter().map(|job| honest(samples, job.samples.clone())).collect();
        let mut acknowledged = Vec::new();
        assert!(coordinator.complete(&worker, &jobs[0].lease, results[0].clone()).await.unwrap());
        acknowledged.push(jobs[0].lease.index());

        // Fill the disk: completions fail with UNAVAILABLE from the first
        // one that needs a new page on.
        let filler = tmpfs.fill();
        let mut next = 1;
        let first_failure = loop {
            assert!(next < jobs.len(), "no completion failed on a full disk");
            match coordinator.complete(&worker, &jobs[next].lease, results[next].clone()).await {
                Ok(merged) => {
                    assert!(merged);
                    acknowledged.push(jobs[next].lease.index());
                    next += 1;
                }
                Err(error) => break error,
            }
        };
        assert_eq!(first_failure.code(), Code::Unavailable, "{first_failure}");
        // Meanwhile writes are UNAVAILABLE, and the status says why.
        assert_refused(
            coordinator.complete(&worker, &jobs[next].lease, results[next].clone()).await,
            Code::Unavailable,
            "",
        );
        assert_refused(coordinator.submit(request(4, 2)).await, Code::Unavailable, "");
        let status = coordinator.status(&sweep).unwrap();
        assert_eq!(status.state, SweepState::Running);
        assert!(status.reason.contains("results cannot be stored now"), "{status:?}");

        // Space again: the filler goes and the file system grows.
        fs::remove_file(filler).unwrap();
        tmpfs.resize("64M");
        let started = Instant::now();
        loop {
            match coordinator.complete(&worker, &jobs[next].lease, results[next].clone()).await {
                Ok(merged) => {
                    assert!(merged);
                    break;
                }
                Err(error) => {
                    assert_eq!(error.code(), Code::Unavailable, "{error}");
                    assert!(
                        started.elapsed() < DEADLINE,
                        "the coordinator did not recover within {DEADLINE:?}: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        acknowledged.push(jobs[next].lease.index());
        for (job, result) in jobs.iter().zip(&results).skip(next + 1) {
            assert!(coordinator.complete(&worker, &job.lease, result.clone()).await.unwrap());
            acknowledged.push(job.lease.index());
        }
        let results = coordinator.query(&sweep).await.unwrap();
        assert_eq!(results.status.state, SweepState::Done);
        assert!(!results.status.reason.contains("cannot be stored"), "{:?}", results.status);
        assert_eq!(results.aggregate, honest(samples, 0..samples));
        acknowledged.sort_unstable();
        acknowledged
    });
    runtime.shutdown_timeout(Duration::from_secs(5));

    // Every acknowledged result is in the file.
    let store = Store::open(&db).unwrap();
    let (records, _) = store.sweep_entries().unwrap();
    assert_eq!(store.load_sweep(&records[0]).unwrap().1, acknowledged);
    drop(store);
    drop(tmpfs);
}

#[test]
fn a_worker_of_another_chain_revision_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    runtime.block_on(async {
        let coordinator = start(&dir.path().join("db.redb")).await.unwrap();
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
        let coordinator = start(&db).await.unwrap();
        let worker = worker(&coordinator);
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
        // A query of the file answers as the coordinator will.
        let offline = offline::status(&store, &running).unwrap();
        assert_eq!(offline.state, SweepState::Failed, "{offline:?}");
        assert!(offline.reason.contains("its results so far are kept"), "{}", offline.reason);
    }

    let runtime2 = runtime();
    runtime2.block_on(async {
        let coordinator = start(&db).await.unwrap();
        let status = coordinator.status(&running).unwrap();
        assert_eq!(status.state, SweepState::Failed, "{status:?}");
        let expected = format!("model chain revision {} (zonesweep", CHAIN_REVISION + 1);
        assert!(status.reason.contains(&expected), "{}", status.reason);
        assert!(status.reason.contains("its results so far are kept"), "{}", status.reason);
        assert_eq!(status.samples_done, 4, "the results merged before are kept");
        let results = coordinator.query(&running).await.unwrap();
        assert_eq!(results.aggregate, honest(8, 0..4), "and served as they were");

        let worker = worker(&coordinator);
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
        let coordinator = start(&db).await.unwrap();
        let status = coordinator.status(&running).unwrap();
        assert_eq!(status.state, SweepState::Failed);
        assert_eq!(status.samples_done, 4);
    });
}
