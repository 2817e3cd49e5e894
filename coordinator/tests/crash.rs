//! Invariant 2 under kill -9 of the commit format: a coordinator process
//! killed with SIGKILL while it commits deltas and writes checkpoints
//! recovers exactly the acknowledged state: every result it acknowledged is
//! in the recovered aggregate, once, and nothing else is but results it was
//! sent (a batch stored whole, just before the kill, that it had no time to
//! acknowledge), and the recovered aggregate is bit-identical to those jobs'
//! results merged in job order (invariant 1).
//!
//! The coordinator runs in a child process: this test binary again, told by
//! an environment variable to run a coordinator with a checkpoint every two
//! deltas and eight fake workers, printing each job it sends and each one
//! acknowledged. The parent kills it after a number of acknowledgements that
//! grows every round, and checks the database after every kill.

// Progress notes go to the test runner, whose standard error stays open.
#![allow(clippy::disallowed_macros)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use zonesweep_coordinator::store::Store;
use zonesweep_coordinator::submission::Submission;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig};
use zonesweep_proto::status::SweepState;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::SweepRunner;

/// Set in the child: the database it runs on.
const CHILD_DB: &str = "ZONESWEEP_CRASH_TEST_DB";
/// The sweep: one sample per job, so every result differs.
const SAMPLES: u64 = 600;
const WORKERS: usize = 8;
/// The longest the parent waits for a line of the child.
const DEADLINE: Duration = Duration::from_secs(120);

fn files() -> (String, String) {
    demo::generate(6, 3).expect("demo dataset").to_csv()
}

/// The result of every job (one sample each), as an honest worker sends it.
fn results() -> Vec<Aggregate> {
    let (units_csv, panel_csv) = files();
    let dataset = DatasetBlob { units_csv, panel_csv, units_geojson: None }.parse().unwrap();
    let spec = SweepSpec { samples: SAMPLES, seed: 7, ..SweepSpec::default() };
    let config = Config::default();
    let runner = SweepRunner::new(&dataset, &config, &spec).unwrap();
    (0..SAMPLES).map(|k| runner.run_range(k..k + 1)).collect()
}

/// The child: a coordinator on `db` (the sweep submitted if the database has
/// none), fed by fake workers, printing `sent J` before job J's result is
/// sent and `acked J` once the coordinator acknowledged it merged.
fn child(db: &Path) {
    // The test harness has printed the test's name without a line end.
    println!();
    let results = Arc::new(results());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let mut config = CoordinatorConfig::new(db.to_path_buf(), "crash-token".into());
        config.checkpoint_every = 2;
        config.max_batch = 8;
        let coordinator = Coordinator::start(config).await.unwrap();
        if coordinator.list().is_empty() {
            let (units_csv, panel_csv) = files();
            let request = Submission {
                units_csv,
                panel_csv,
                samples: Some(SAMPLES),
                seed: Some(7),
                job_size: Some(1),
                ..Submission::default()
            };
            coordinator.submit(request).await.unwrap();
        }
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..WORKERS {
            let coordinator = coordinator.clone();
            let results = results.clone();
            tasks.spawn(async move {
                let worker = coordinator
                    .register("crash", 1, zonesweep_shared::CHAIN_REVISION)
                    .expect("this build's chain")
                    .worker_id;
                loop {
                    let Some(job) = coordinator.lease(&worker, 1, 0).unwrap().pop() else { return };
                    let index = job.lease.index();
                    println!("sent {index}");
                    std::io::stdout().flush().unwrap();
                    let result = results[index as usize].clone();
                    if coordinator.complete(&worker, &job.lease, result).await.unwrap() {
                        println!("acked {index}");
                        std::io::stdout().flush().unwrap();
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        println!("finished");
    });
}

/// Run a child on `db` until it has acknowledged `acks` results (or
/// finished), kill it with SIGKILL, and return the jobs it sent and those
/// it acknowledged.
fn run_child_and_kill(db: &Path, acks: usize) -> (BTreeSet<u32>, BTreeSet<u32>, bool) {
    let test = "a_coordinator_killed_while_committing_recovers_exactly_what_it_acknowledged";
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, receive) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let (mut sent, mut acked, mut finished) = (BTreeSet::new(), BTreeSet::new(), false);
    let mut note = |line: &str, sent: &mut BTreeSet<u32>, acked: &mut BTreeSet<u32>| {
        if let Some(job) = line.strip_prefix("sent ") {
            sent.insert(job.parse().unwrap());
        } else if let Some(job) = line.strip_prefix("acked ") {
            acked.insert(job.parse().unwrap());
        } else if line == "finished" {
            finished = true;
        }
    };
    let mut acked_now = 0;
    while acked_now < acks {
        match receive.recv_timeout(DEADLINE) {
            Ok(line) => {
                acked_now += usize::from(line.starts_with("acked "));
                note(&line, &mut sent, &mut acked);
            }
            // The child ended (the sweep is done) or hung.
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // What it printed before it died.
    while let Ok(line) = receive.recv_timeout(Duration::from_secs(5)) {
        note(&line, &mut sent, &mut acked);
    }
    reader.join().unwrap();
    (sent, acked, finished)
}

/// The jobs' results merged in job order.
fn merged(results: &[Aggregate], jobs: &BTreeSet<u32>) -> Aggregate {
    let mut total = Aggregate::empty(results[0].shape);
    for &job in jobs {
        total.merge(&results[job as usize]).unwrap();
    }
    total
}

#[test]
fn a_coordinator_killed_while_committing_recovers_exactly_what_it_acknowledged() {
    if let Some(db) = std::env::var_os(CHILD_DB) {
        child(&PathBuf::from(db));
        return;
    }
    let results = results();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.redb");
    let mut acked_total = BTreeSet::new();
    let mut sent_total = BTreeSet::new();
    let mut kills = 0;
    for round in 1..=8usize {
        let (sent, acked, finished) = run_child_and_kill(&db, 15 * round);
        kills += usize::from(!finished);
        sent_total.extend(sent);
        acked_total.extend(acked);
        // What a restarted coordinator recovers: its checkpoint and deltas.
        let store = Store::open(&db).unwrap();
        let record = store.sweeps().unwrap().pop().expect("the sweep is stored");
        let (aggregate, done, deltas) = store.load_sweep_with_deltas(&record).unwrap();
        drop(store);
        let done: BTreeSet<u32> = done.into_iter().collect();
        let lost: Vec<_> = acked_total.difference(&done).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged jobs {lost:?} were lost");
        let unsent: Vec<_> = done.difference(&sent_total).collect();
        assert!(unsent.is_empty(), "round {round}: jobs {unsent:?} are done but were never sent");
        assert!(
            aggregate == merged(&results, &done),
            "round {round}: the recovered aggregate is not the merge of its {} done jobs' results",
            done.len()
        );
        assert!(deltas <= 3, "round {round}: {deltas} deltas follow the checkpoint (one every 2 is written)");
        eprintln!(
            "round {round}: killed after {} acknowledgements in all; {} jobs done, {deltas} deltas after the checkpoint",
            acked_total.len(),
            done.len()
        );
        if finished || record.state == SweepState::Done {
            break;
        }
    }
    assert!(kills >= 3, "the coordinator was killed only {kills} times before the sweep ended");
}
