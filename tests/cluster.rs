//! The cluster end to end: the real `zonesweep` binary as a coordinator and
//! workers on loopback, failures injected (kill -9 of a worker or of the
//! coordinator, duplicate and malformed results, bad specs, missing tokens),
//! and the invariants of ARCHITECTURE.md checked on what the programs store and
//! export.
//!
//! Sample counts are small in a debug build (the model is 10–30× slower
//! there); `ZONESWEEP_E2E_SAMPLES` overrides the main sweeps' size.

// Progress notes go to the test runner, whose standard error stays open.
#![allow(clippy::disallowed_macros)]

mod common;

use std::fs;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use tonic::Code;
use zonesweep_proto::convert::{aggregate_from_pb, aggregate_to_pb};
use zonesweep_proto::pb;
use zonesweep_proto::pb::sweeps_client::SweepsClient;
use zonesweep_proto::pb::workers_client::WorkersClient;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::SweepRunner;

/// The seed of the main sweeps.
const SEED: u64 = 7;

/// Samples of the main sweeps (tests 1–3): enough for many jobs, few
/// enough for a debug build.
fn samples() -> u64 {
    if let Ok(text) = std::env::var("ZONESWEEP_E2E_SAMPLES") {
        return text.parse().expect("ZONESWEEP_E2E_SAMPLES is a number");
    }
    if debug_build() { 400 } else { 6000 }
}

/// `zonesweep run` of the main sweep on one machine: the exports every
/// cluster run of the same sweep must reproduce byte for byte. Computed once
/// per test binary.
fn reference() -> &'static Exports {
    static REFERENCE: OnceLock<Exports> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("zonesweep-e2e-run-").tempdir().expect("a temporary directory");
        let (_, exports) = run_locally(dir.path(), "run.redb", samples(), SEED, 50, 2, &[]);
        assert_eq!(exported_samples(&exports.json), samples(), "`run` exports every sample");
        exports
    })
}

#[track_caller]
fn assert_same_exports(what: &str, expected: &Exports, actual: &Exports) {
    assert_same_text(&format!("JSON exports ({what})"), &expected.json, &actual.json);
    assert_same_text(&format!("CSV exports ({what})"), &expected.csv, &actual.csv);
}

/// The demonstration dataset as the repository ships it.
fn demo_files() -> (String, String) {
    let read = |name: &str| fs::read_to_string(demo_data_dir().join(name)).expect("the demo dataset");
    (read("units.csv"), read("panel.csv"))
}

fn demo_dataset() -> Dataset {
    let (units_csv, panel_csv) = demo_files();
    DatasetBlob { units_csv, panel_csv, units_geojson: None }.parse().expect("the demo dataset parses")
}

/// A complete, valid submission of the demo dataset with the default spec.
fn demo_submission(samples: u64) -> pb::SubmitRequest {
    let (units_csv, panel_csv) = demo_files();
    pb::SubmitRequest {
        units_csv,
        panel_csv,
        units_geojson: String::new(),
        config_toml: String::new(),
        spec_toml: String::new(),
        samples,
        seed: 1,
        has_seed: true,
        job_size: 0,
        request_id: String::new(),
        dataset_name: "demo".into(),
        until_ci: 0.0,
        check_every: 0,
    }
}

// ---------------------------------------------------------------- 1

/// Invariant 1: `run` on one machine and a cluster of three workers, with
/// different job sizes, store byte-identical results.
#[test]
fn run_and_a_three_worker_cluster_export_identical_results() {
    let n = samples();
    let reference = reference();
    let cluster = Cluster::start(3, CoordinatorOptions::default());
    let sweep = cluster.submit_default(n, SEED, 35);
    let status = cluster.wait_done(&sweep);
    assert_eq!(status.samples_done, n, "{status:?}");
    assert_eq!(status.jobs, n.div_ceil(35), "{status:?}");
    assert_eq!(status.jobs_done, status.jobs, "{status:?}");
    let exports = cluster.export(&sweep);
    assert_eq!(exported_samples(&exports.json), n);
    assert_same_exports("`run` with jobs of 50 vs 3 workers with jobs of 35", reference, &exports);
}

// ---------------------------------------------------------------- 2

/// Invariant 3: a worker killed with -9 in the middle of a sweep costs only
/// its lease; the sweep completes with the undisturbed result.
#[test]
fn a_worker_killed_mid_sweep_costs_only_its_lease() {
    let n = samples();
    let reference = reference();
    let mut cluster = Cluster::start(3, CoordinatorOptions::fast_leases());
    let sweep = cluster.submit_default(n, SEED, 20);
    // Kill worker 1 while it holds a lease, once some samples are done.
    let before = cluster.wait_for(&sweep, "some samples done and worker 1 holding a job", MAX_WAIT, |s| {
        s.is_final() || (s.samples_done >= n / 10 && cluster.job_held_by(1).is_some())
    });
    assert!(
        !before.is_final() && before.samples_done < n,
        "the sweep ended before a worker could be killed: {before:?}"
    );
    assert!(cluster.worker_running(1), "worker 1 is running before it is killed");
    cluster.kill_worker(1);
    eprintln!("killed worker 1 holding {:?} at {}/{n} samples", cluster.job_held_by(1), before.samples_done);

    let after = cluster.wait_done(&sweep);
    assert_eq!(after.samples_done, n, "{after:?}");
    assert_eq!(after.jobs_done, after.jobs, "{after:?}");
    assert_eq!(after.jobs_leased, 0, "{after:?}");
    assert!(cluster.worker_running(0) && cluster.worker_running(2), "the other workers are unaffected");
    let exports = cluster.export(&sweep);
    assert_eq!(exported_samples(&exports.json), n);
    assert_same_exports("undisturbed `run` vs a cluster that lost a worker", reference, &exports);
}

// ---------------------------------------------------------------- 3

/// Invariants 2 and 4: the coordinator killed with -9 in the middle of a
/// sweep (twice) and restarted on its database loses no acknowledged result,
/// merges none twice and carries the sweep to the undisturbed result.
#[test]
fn a_coordinator_killed_mid_sweep_restarts_and_completes_exactly() {
    let n = samples();
    let reference = reference();
    let mut cluster = Cluster::start(3, CoordinatorOptions::fast_leases());
    let sweep = cluster.submit_default(n, SEED, 25);

    let mut done_before_kill = 0;
    for fraction in [10, 2] {
        let threshold = (n / fraction).max(done_before_kill + 1);
        let before = cluster.wait_for(&sweep, &format!("{threshold} samples to be done"), MAX_WAIT, |s| {
            s.samples_done >= threshold || s.is_final()
        });
        assert!(
            !before.is_final() && before.samples_done < n,
            "the sweep ended before the coordinator could be killed: {before:?}"
        );
        cluster.kill_coordinator();
        let kept_port = cluster.restart_coordinator();
        eprintln!("coordinator killed at {}/{n} samples; restarted (same port: {kept_port})", before.samples_done);
        let first = cluster.status(&sweep);
        assert!(
            first.samples_done >= before.samples_done,
            "acknowledged results were lost by the kill: {} samples done before, {} after the restart",
            before.samples_done,
            first.samples_done
        );
        assert!(first.samples_done <= n, "{first:?}");
        assert_eq!(first.state, if first.samples_done == n { "done" } else { "running" }, "{first:?}");
        done_before_kill = first.samples_done;
    }

    let after = cluster.wait_done(&sweep);
    assert_eq!(after.samples_done, n, "every sample exactly once: {after:?}");
    assert_eq!(after.samples, n);
    assert_eq!(after.jobs_done, after.jobs, "{after:?}");
    let exports = cluster.export(&sweep);
    assert_eq!(exported_samples(&exports.json), n, "samples_ok + failures in the export");
    assert_same_exports("undisturbed `run` vs a cluster whose coordinator was killed twice", reference, &exports);
}

// ---------------------------------------------------------------- 4

/// Invariants 2 and 5 through the raw worker protocol: a result is merged
/// exactly once however often it is sent, and a result that does not fit
/// its job is refused with INVALID_ARGUMENT and changes nothing.
#[test]
fn a_completion_sent_twice_is_merged_once_and_misfits_are_refused() {
    let cluster = Cluster::start(0, CoordinatorOptions::default());
    let (samples, seed) = (20, 11);
    let sweep = cluster.submit_default(samples, seed, 10);
    let dataset = demo_dataset();
    let config = Config::default();
    let spec = SweepSpec { samples, seed, ..SweepSpec::default() };
    let runner = SweepRunner::new(&dataset, &config, &spec).expect("the default spec runs");
    // Computed before leasing, so the raw client's leases (which it does not
    // heartbeat) are still current when the results arrive.
    let good: Vec<Aggregate> = vec![runner.run_range(0..10), runner.run_range(10..20)];
    let short = runner.run_range(0..9);
    let mut other_shape = runner.shape();
    other_shape.n_units += 1;
    let mut outside = runner.run_range(1..10);
    outside.add_failure(10, "fabricated", "sample 10: not in this job");
    let rt = runtime();

    let (worker_id, jobs) = rt.block_on(async {
        let mut client = WorkersClient::with_interceptor(channel(&cluster.url).await, bearer(&cluster.token()));
        let registered = client
            .register(pb::RegisterRequest {
                hostname: "e2e-raw-client".into(),
                threads: 1,
                chain: zonesweep_shared::CHAIN_REVISION,
            })
            .await
            .expect("register")
            .into_inner();
        // A worker of another model chain revision, or of none (older), is
        // refused at the door.
        for chain in [0, zonesweep_shared::CHAIN_REVISION + 1] {
            let refused = client
                .register(pb::RegisterRequest { hostname: "e2e-other-chain".into(), threads: 1, chain })
                .await
                .expect_err("a worker of another chain revision is refused");
            assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
            assert!(refused.message().contains("model chain revision"), "{}", refused.message());
        }
        let jobs = client
            .lease(pb::LeaseRequest { worker_id: registered.worker_id.clone(), capacity: 4, call: 0, wait_ms: 0 })
            .await
            .expect("lease")
            .into_inner()
            .jobs;
        (registered.worker_id, jobs)
    });
    assert_eq!(jobs.len(), 2, "a sweep of 20 samples in jobs of 10 has two jobs: {jobs:?}");
    for (index, job) in jobs.iter().enumerate() {
        assert_eq!(job.sweep_id, sweep);
        assert_eq!(job.job_index, index as u32);
        assert_eq!((job.sample_start, job.sample_end), (index as u64 * 10, index as u64 * 10 + 10));
        assert_eq!((job.samples, job.seed), (samples, seed));
    }
    let lease_of = |job: &pb::Job| pb::LeaseRef {
        sweep_id: job.sweep_id.clone(),
        job_index: job.job_index,
        lease_id: job.lease_id,
    };
    let completion = |job: &pb::Job, aggregate: pb::Aggregate| pb::CompleteRequest {
        worker_id: worker_id.clone(),
        lease: Some(lease_of(job)),
        aggregate: Some(aggregate),
        lease_capacity: 0,
        call: 0,
    };

    // Results that do not fit job 0, each refused before anything is merged.
    let mut truncated = aggregate_to_pb(&good[0]);
    truncated.zone_counts.as_mut().expect("zone counts").len -= 1;
    let misfits: Vec<(&str, pb::Aggregate, &str)> = vec![
        ("9 samples for a job of 10", aggregate_to_pb(&short), "covers samples 0..10"),
        ("another dataset's shape", aggregate_to_pb(&Aggregate::empty(other_shape)), "shape"),
        ("a sample outside the job", aggregate_to_pb(&outside), "outside"),
        ("arrays shorter than the shape", truncated, "zone"),
    ];
    let query_before = rt.block_on(async {
        let mut client = WorkersClient::with_interceptor(channel(&cluster.url).await, bearer(&cluster.token()));
        for (what, aggregate, expected) in misfits {
            let status = client
                .complete(completion(&jobs[0], aggregate))
                .await
                .expect_err(&format!("a result with {what} is refused"));
            assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
            assert!(status.message().contains(expected), "{what}: {status:?}");
        }
        let mut sweeps = SweepsClient::with_interceptor(channel(&cluster.url).await, bearer(&cluster.token()));
        sweeps.query(pb::SweepRef { sweep_id: sweep.clone() }).await.expect("query").into_inner()
    });
    let status = cluster.status(&sweep);
    assert_eq!(
        (status.state.as_str(), status.samples_done, status.jobs_done, status.jobs_leased),
        ("running", 0, 0, 2),
        "refused results changed nothing: {status:?}"
    );
    let aggregate = aggregate_from_pb(query_before.aggregate.as_ref().expect("an aggregate")).expect("decodes");
    assert_eq!(aggregate, Aggregate::empty(runner.shape()), "refused results changed nothing");

    // Job 0 completed twice in a row; job 1 twice at once.
    let (first, second, concurrent, late) = rt.block_on(async {
        let mut client = WorkersClient::with_interceptor(channel(&cluster.url).await, bearer(&cluster.token()));
        let first =
            client.complete(completion(&jobs[0], aggregate_to_pb(&good[0]))).await.expect("complete").into_inner();
        let second = client
            .complete(completion(&jobs[0], aggregate_to_pb(&good[0])))
            .await
            .expect("complete again")
            .into_inner();
        let mut other = client.clone();
        let (a, b) = tokio::join!(
            client.complete(completion(&jobs[1], aggregate_to_pb(&good[1]))),
            other.complete(completion(&jobs[1], aggregate_to_pb(&good[1]))),
        );
        let concurrent =
            [a.expect("complete job 1").into_inner().merged, b.expect("complete job 1").into_inner().merged];
        let late =
            client.complete(completion(&jobs[1], aggregate_to_pb(&good[1]))).await.expect("a late repeat").into_inner();
        (first, second, concurrent, late)
    });
    assert!(first.merged, "the first completion is merged");
    assert!(!second.merged, "the repeated completion is not merged again");
    assert_eq!(
        concurrent.iter().filter(|m| **m).count(),
        1,
        "of two simultaneous completions one is merged: {concurrent:?}"
    );
    assert!(!late.merged);

    let status = cluster.status(&sweep);
    assert_eq!(status.state, "done", "{status:?}");
    assert_eq!(status.samples_done, samples, "merged exactly once: {status:?}");
    assert_eq!((status.jobs_done, status.jobs), (2, 2), "{status:?}");
    let exports = cluster.export(&sweep);
    assert_eq!(exported_samples(&exports.json), samples);
    let stored = rt.block_on(async {
        let mut sweeps = SweepsClient::with_interceptor(channel(&cluster.url).await, bearer(&cluster.token()));
        sweeps.query(pb::SweepRef { sweep_id: sweep.clone() }).await.expect("query").into_inner()
    });
    let stored = aggregate_from_pb(stored.aggregate.as_ref().expect("an aggregate")).expect("decodes");
    let mut expected = Aggregate::empty(runner.shape());
    expected.merge(&runner.run_range(0..samples)).unwrap();
    assert_eq!(stored, expected, "the stored aggregate is the whole sweep's, each sample once");
}

// ---------------------------------------------------------------- 5

const DIVERGING_SPEC: &str = r#"
k = { dist = "uniform", low = 0.01, high = 0.05 }

[[rate]]
multiplier = { dist = "truncated-normal", mean = 1.0, sd = 0.1, low = 0.5, high = 1.5 }

# A huge spread of the low-carbon TI rate: about half the projections diverge.
[[rate]]
scenario = "low"
variable = "TI"
period = "first"
multiplier = { dist = "uniform", low = -300.0, high = 300.0 }
"#;

const NEGATIVE_CARBON_SPEC: &str = r#"
# Negative energy carbon coefficients: CEI is never positive, every sample fails.
[[coefficient]]
name = "energy.*.carbon"
multiplier = { dist = "fixed", value = -1.0 }
"#;

const INVALID_SPEC: &str = r#"
[[rate]]
multiplier = { dist = "uniform", low = 2.0, high = 1.0 }
"#;

/// Failing samples end a sweep with a reason, never a hang: some failing
/// leaves it done with the failure kinds named, all failing fails it, and a
/// spec that does not validate is refused at submission.
#[test]
fn failing_samples_end_the_sweep_with_a_reason() {
    let cluster = Cluster::start(2, CoordinatorOptions::default());
    let write = |name: &str, text: &str| {
        let path = cluster.dir().join(name);
        fs::write(&path, text).unwrap();
        path
    };

    let diverging = write("diverging.toml", DIVERGING_SPEC);
    let some_fail =
        cluster.submit(&["--spec", path_str(&diverging), "--samples", "40", "--seed", "5", "--job-size", "10"]);
    let negative = write("negative.toml", NEGATIVE_CARBON_SPEC);
    let all_fail =
        cluster.submit(&["--spec", path_str(&negative), "--samples", "12", "--seed", "3", "--job-size", "4"]);

    let status = cluster.wait_final(&some_fail);
    assert_eq!(status.state, "done", "some failed samples do not fail the sweep: {status:?}");
    assert_eq!(status.samples_done, 40, "{status:?}");
    assert!(status.samples_failed > 0 && status.samples_failed < 40, "{status:?}");
    assert!(status.reason.contains("sample(s) failed"), "{status:?}");
    assert!(status.reason.contains("projection diverges"), "the reason names the failure kind: {status:?}");
    let exports = cluster.export(&some_fail);
    assert_eq!(exported_samples(&exports.json), 40);
    let document = json(&exports.json);
    let failures = document["aggregate"]["failures"].as_object().expect("failures");
    let failed: u64 = failures.values().map(|f| f["count"].as_u64().unwrap()).sum();
    assert_eq!(failed, status.samples_failed);
    let diverged = &failures["projection diverges"];
    assert!(diverged["example"].as_str().unwrap().contains("diverges"), "{diverged}");
    assert!(exports.csv.contains("samples_failed,,,projection diverges,"), "the CSV names the failure kind");

    let status = cluster.wait_final(&all_fail);
    assert_eq!(status.state, "failed", "a sweep whose every sample fails fails: {status:?}");
    assert_eq!((status.samples_done, status.samples_failed), (12, 12), "{status:?}");
    assert!(status.reason.contains("every sample failed"), "{status:?}");
    assert!(status.reason.contains("CEI"), "the reason says what failed: {status:?}");

    // A spec that does not validate never becomes a sweep.
    let invalid = write("invalid.toml", INVALID_SPEC);
    let remote = cluster.remote();
    let mut args = vec!["submit", "--spec", path_str(&invalid), "--samples", "10"];
    args.extend(remote.iter().map(String::as_str));
    let stderr = fails(&args);
    assert!(stderr.contains("greater than"), "the validation message is shown: {stderr}");
    assert!(stderr.contains("rate"), "the message names the entry: {stderr}");
    let unknown = write("unknown.toml", "samplez = 10\n");
    let mut args = vec!["submit", "--spec", path_str(&unknown)];
    args.extend(remote.iter().map(String::as_str));
    let stderr = fails(&args);
    assert!(stderr.contains("samplez"), "the unknown key is named: {stderr}");

    let listed = cluster.cli_ok(&["list"]).stdout;
    let sweeps: Vec<&str> = listed.lines().filter(|l| l.starts_with("sw-")).collect();
    assert_eq!(sweeps.len(), 2, "refused specs store no sweep:\n{listed}");
}

/// Horizons and dataset years outside the documented bounds are refused by
/// the coordinator with the key or line, the value and the allowed range;
/// nothing is stored, the coordinator goes on serving, and its database
/// still opens, for `list --db` and for a restart.
#[test]
fn submissions_outside_the_bounds_are_refused_and_the_coordinator_keeps_serving() {
    let mut cluster = Cluster::start(0, CoordinatorOptions::default());
    let remote = cluster.remote();
    let submit_fails = |extra: &[&str]| {
        let mut args = vec!["submit", "--samples", "10"];
        args.extend_from_slice(extra);
        args.extend(remote.iter().map(String::as_str));
        let stderr = fails(&args);
        assert!(stderr.contains("InvalidArgument") || stderr.contains("invalid"), "{stderr}");
        stderr
    };
    for (horizon, milestone, message) in [
        (3100, 2030, "scenarios.horizon is 3100; it must be a year 1900–2200"),
        (2010, 2005, "scenarios.horizon is 2010; with the data's base year 2020 it must be 2021–2200"),
        (2_147_483_647, 2030, "scenarios.horizon is 2147483647; it must be a year 1900–2200"),
        (3_000_000, 2030, "scenarios.horizon is 3000000; it must be a year 1900–2200"),
        (-2_147_483_000, -2_147_483_600, "scenarios.horizon is -2147483000; it must be a year 1900–2200"),
    ] {
        let config = cluster.dir().join(format!("horizon{horizon}.toml"));
        fs::write(&config, format!("[scenarios]\nhorizon = {horizon}\nmilestone = {milestone}\n")).unwrap();
        let stderr = submit_fails(&["--config", path_str(&config)]);
        assert!(stderr.contains(&format!("the configuration: {message}")), "{stderr}");
        assert_eq!(cluster.cli_ok(&["list"]).stdout.trim(), "no sweeps", "horizon {horizon} stored nothing");
    }
    let (units_csv, panel_csv) = demo_files();
    for first in [10, 3050, 9979] {
        let data = cluster.dir().join(format!("from{first}"));
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("units.csv"), &units_csv).unwrap();
        let mut lines = panel_csv.lines();
        let mut panel = format!("{}\n", lines.next().unwrap());
        for line in lines {
            let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
            cells[1] = (cells[1].parse::<i64>().unwrap() - 2000 + first).to_string();
            panel.push_str(&cells.join(","));
            panel.push('\n');
        }
        fs::write(data.join("panel.csv"), panel).unwrap();
        let stderr = submit_fails(&["--data", path_str(&data)]);
        let message = format!("column `year`, value `{first}`: not a year in the allowed range 1900–2200");
        assert!(stderr.contains(&message), "{stderr}");
        assert_eq!(cluster.cli_ok(&["list"]).stdout.trim(), "no sweeps", "years from {first} stored nothing");
    }

    // Still serving: a valid sweep is taken, and the database opens after a stop.
    let sweep = cluster.submit(&["--samples", "10"]);
    let stopped = cluster.terminate_coordinator(Duration::from_secs(30));
    assert!(stopped.success(), "{stopped:?}");
    let listed = ok(&["list", "--db", path_str(&cluster.db)]).stdout;
    assert!(listed.contains(&sweep), "{listed}");
    cluster.restart_coordinator();
    assert!(cluster.cli_ok(&["list"]).stdout.contains(&sweep));
}

// ---------------------------------------------------------------- 6

/// Invariant 5: without the token, or with a wrong one, every call is
/// refused with UNAUTHENTICATED and changes nothing.
#[test]
fn calls_without_the_right_token_are_refused_and_change_nothing() {
    let cluster = Cluster::start(0, CoordinatorOptions::default());
    let token = cluster.token();
    let rt = runtime();
    rt.block_on(async {
        let channel = channel(&cluster.url).await;
        let expect_refused = |what: &str, result: Result<(), tonic::Status>| {
            let status = result.expect_err(&format!("{what} is refused"));
            assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
        };
        // No token at all.
        let mut sweeps = SweepsClient::new(channel.clone());
        let mut workers = WorkersClient::new(channel.clone());
        expect_refused("submit without a token", sweeps.submit(demo_submission(10)).await.map(drop));
        expect_refused("list without a token", sweeps.list(pb::ListRequest {}).await.map(drop));
        expect_refused(
            "register without a token",
            workers
                .register(pb::RegisterRequest {
                    hostname: "intruder".into(),
                    threads: 1,
                    chain: zonesweep_shared::CHAIN_REVISION,
                })
                .await
                .map(drop),
        );
        expect_refused(
            "lease without a token",
            workers
                .lease(pb::LeaseRequest { worker_id: "wk-intruder-1".into(), capacity: 1, call: 0, wait_ms: 0 })
                .await
                .map(drop),
        );
        // Wrong tokens: another one, the right one with a suffix, a prefix of it.
        for wrong in ["wrong-token".to_owned(), format!("{token}x"), token[..token.len() - 1].to_owned()] {
            let mut sweeps = SweepsClient::with_interceptor(channel.clone(), bearer(&wrong));
            let mut workers = WorkersClient::with_interceptor(channel.clone(), bearer(&wrong));
            expect_refused("submit with a wrong token", sweeps.submit(demo_submission(10)).await.map(drop));
            expect_refused("list with a wrong token", sweeps.list(pb::ListRequest {}).await.map(drop));
            expect_refused(
                "lease with a wrong token",
                workers
                    .lease(pb::LeaseRequest { worker_id: "wk-intruder-1".into(), capacity: 1, call: 0, wait_ms: 0 })
                    .await
                    .map(drop),
            );
        }
        // The right token is taken on the same connection, and nothing was stored.
        let mut sweeps = SweepsClient::with_interceptor(channel.clone(), bearer(&token));
        let listed = sweeps.list(pb::ListRequest {}).await.expect("list with the token").into_inner();
        assert!(listed.sweeps.is_empty(), "refused submissions stored nothing: {:?}", listed.sweeps);
    });
    let listed = cluster.cli_ok(&["list"]).stdout;
    assert_eq!(listed.trim(), "no sweeps", "refused submissions stored nothing");

    // The CLI with a wrong token, or none, fails with a message and no panic.
    let wrong_file = cluster.dir().join("wrong-token");
    fs::write(&wrong_file, "not-the-token\n").unwrap();
    let wrong = ["--coordinator", cluster.url.as_str(), "--token-file", path_str(&wrong_file)];
    let mut list = vec!["list"];
    list.extend(wrong);
    let stderr = fails(&list);
    assert!(stderr.contains("Unauthenticated") || stderr.contains("token"), "{stderr}");
    let mut submit = vec!["submit", "--samples", "10"];
    submit.extend(wrong);
    let stderr = fails(&submit);
    assert!(stderr.contains("Unauthenticated") || stderr.contains("token"), "{stderr}");
    let stderr = fails(&["list", "--coordinator", cluster.url.as_str()]);
    assert!(stderr.contains("no access token"), "{stderr}");

    // A worker with a wrong token stops with a message instead of retrying forever.
    let mut worker = zonesweep_command(&["worker", "--coordinator", &cluster.url, "--threads", "1"]);
    worker.args(["--token-file", path_str(&wrong_file)]);
    let output = run_with_timeout(worker, Duration::from_secs(60));
    assert!(output.status.code().is_some_and(|c| c != 0), "a worker with a wrong token fails: {output:?}");
    assert!(output.stderr.contains("token") && !output.stderr.contains("panicked"), "{}", output.stderr);

    let listed = cluster.cli_ok(&["list"]).stdout;
    assert_eq!(listed.trim(), "no sweeps");
}

// ---------------------------------------------------------------- 7

/// Invariant 4 for queries: a finished sweep reads the same from the
/// coordinator before and after a clean (SIGTERM) and a hard (kill -9)
/// restart, and from the stopped coordinator's database file (after a kill
/// -9, once a coordinator start repaired it).
#[test]
fn queries_after_a_restart_return_the_stored_results() {
    let mut cluster = Cluster::start(2, CoordinatorOptions::default());
    let n = if debug_build() { 120 } else { 2000 };
    let sweep = cluster.submit_default(n, SEED, 40);
    let done = cluster.wait_done(&sweep);
    assert_eq!(done.samples_done, n);

    let zones = cluster.cli_ok(&["zones", &sweep]).stdout;
    let peaking = cluster.cli_ok(&["peaking", &sweep]).stdout;
    let exports = cluster.export(&sweep);
    assert!(zones.contains(&sweep), "{zones}");
    assert_eq!(exported_samples(&exports.json), n);

    let check_db = |cluster: &Cluster, when: &str| {
        let db = path_str(&cluster.db);
        assert_same_text(
            &format!("zones from the database {when}"),
            &zones,
            &ok(&["zones", &sweep, "--db", db]).stdout,
        );
        assert_same_text(
            &format!("peaking from the database {when}"),
            &peaking,
            &ok(&["peaking", &sweep, "--db", db]).stdout,
        );
        assert_same_exports(
            &format!("the coordinator's vs the database's {when}"),
            &exports,
            &cluster.export_from_db(&sweep),
        );
        let status = cluster.status_from_db(&sweep);
        assert_eq!(
            (status.state.as_str(), status.samples_done, status.jobs_done),
            ("done", n, done.jobs),
            "{status:?}"
        );
        assert!(ok(&["list", "--db", db]).stdout.contains(&sweep));
    };
    let check_coordinator = |cluster: &Cluster, when: &str| {
        assert_same_text(&format!("zones {when}"), &zones, &cluster.cli_ok(&["zones", &sweep]).stdout);
        assert_same_text(&format!("peaking {when}"), &peaking, &cluster.cli_ok(&["peaking", &sweep]).stdout);
        assert_same_exports(&format!("exports {when}"), &exports, &cluster.export(&sweep));
        let status = cluster.status(&sweep);
        assert_eq!((status.state.as_str(), status.samples_done), ("done", n), "{status:?}");
    };

    // While the coordinator holds the database, a direct query says so.
    let out = cluster.dir().join("refused.json");
    let stderr = fails(&["export", &sweep, "--db", path_str(&cluster.db), "--format", "json", "--out", path_str(&out)]);
    assert!(stderr.contains("in use") && stderr.contains("--coordinator"), "{stderr}");
    assert!(!out.exists());

    let stopped = cluster.terminate_coordinator(Duration::from_secs(30));
    assert!(stopped.success(), "SIGTERM stops the coordinator cleanly: {stopped:?}");
    check_db(&cluster, "after SIGTERM");
    cluster.restart_coordinator();
    check_coordinator(&cluster, "after a clean restart");

    // After a kill -9 the file needs a repair, which only the coordinator
    // makes: a query says so and leaves the file as it is.
    cluster.kill_coordinator();
    let stderr = fails(&["list", "--db", path_str(&cluster.db)]);
    assert!(stderr.contains("needs a repair") && stderr.contains("start the coordinator on it"), "{stderr}");
    cluster.restart_coordinator();
    check_coordinator(&cluster, "after a restart from kill -9");
    let stopped = cluster.terminate_coordinator(Duration::from_secs(30));
    assert!(stopped.success(), "SIGTERM stops the coordinator cleanly: {stopped:?}");
    check_db(&cluster, "after the restart from kill -9 repaired it");
}

// ---------------------------------------------------------------- resume

/// An interrupted `run` (SIGINT, as Ctrl-C sends) keeps what it has and says
/// how to continue; `run --resume` continues the same sweep and ends with
/// exactly the results of an uninterrupted run. `resume` of a done sweep
/// is refused by name.
#[test]
fn an_interrupted_run_resumes_to_the_uninterrupted_results() {
    use std::io::BufRead as _;
    let n = samples();
    let reference = reference();
    let dir = tempfile::Builder::new().prefix("zonesweep-e2e-resume-").tempdir().expect("a temporary directory");
    let db = dir.path().join("resume.redb");
    let (n_text, seed) = (n.to_string(), SEED.to_string());
    let args =
        ["run", "--db", path_str(&db), "--samples", &n_text, "--seed", &seed, "--job-size", "50", "--threads", "1"];
    let mut command = zonesweep_command(&args);
    command.current_dir(dir.path()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("zonesweep run starts");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).expect("run says which sweep it runs");
    assert!(first.starts_with("sweep sw-"), "{first}");
    // Interrupt once some jobs are done.
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = wait_timeout(&mut child, Duration::from_secs(60)).expect("run stops on SIGINT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let sweep = first["sweep ".len()..].split(':').next().unwrap().trim().to_owned();
    assert!(!status.success(), "the run ended before the interrupt (make the sweep longer):\n{rest}");
    let advice = format!("--resume {sweep}");
    assert!(rest.contains(&advice), "the interrupted run names how to continue:\n{rest}");

    let mut resume_args = vec!["run", "--db", path_str(&db), "--resume", &sweep, "--threads", "2"];
    let mut command = zonesweep_command(&resume_args);
    command.current_dir(dir.path());
    let output = run_with_timeout(command, Duration::from_secs(600));
    assert!(output.status.success(), "run --resume failed:\n{}\n{}", output.stdout, output.stderr);
    assert!(output.stderr.contains(&format!("sweep {sweep} resumed with")), "{}", output.stderr);
    assert_eq!(output.last_line(), sweep);
    let exports = export_from(dir.path(), &sweep, &["--db", path_str(&db)]);
    assert_same_exports("an uninterrupted `run` vs an interrupted and resumed one", reference, &exports);

    resume_args[4] = "sw-unknown";
    let refused = fails(&resume_args);
    assert!(refused.contains("sweep sw-unknown not found"), "{refused}");
    resume_args[4] = &sweep;
    let refused = fails(&resume_args);
    assert!(refused.contains("is done; there is nothing to resume"), "{refused}");
}

// ---------------------------------------------------------------- batch-system workers

/// Workers that behave in batch systems: `workers` lists the connected
/// ones; a worker with `--exit-when-idle` runs the sweep and exits 0 once
/// nothing is offered; one with `--max-disconnect` pointed at a coordinator
/// that is not there gives up with an error naming the limit. Standalone
/// workers log connecting and each sweep started without `--verbose`.
#[test]
fn workers_are_listed_exit_when_idle_and_give_up_when_disconnected() {
    let cluster = Cluster::start(1, CoordinatorOptions::default());
    let remote = cluster.remote();
    let source: Vec<&str> = remote.iter().map(String::as_str).collect();
    let listed = poll_until("the worker is listed", Duration::from_secs(30), || {
        let mut args = vec!["workers"];
        args.extend_from_slice(&source);
        let out = ok(&args).stdout;
        if out.contains("wk-") { Ok(out) } else { Err(out) }
    });
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one worker:\n{listed}");
    assert!(lines[0].contains("threads") && lines[0].contains("leases"), "{listed}");

    let sweep = cluster.submit_default(60, 3, 20);
    let mut idle_worker = zonesweep_command(&[
        "worker",
        "--coordinator",
        &cluster.url,
        "--token-file",
        path_str(&cluster.token_file),
        "--threads",
        "1",
        "--exit-when-idle",
        "1.5",
    ]);
    idle_worker.stderr(std::process::Stdio::piped());
    let output = run_with_timeout(idle_worker, Duration::from_secs(120));
    assert!(output.status.success(), "the idle worker exits 0:\n{}", output.stderr);
    assert!(output.stderr.contains(" INFO connected: registered as wk-"), "{}", output.stderr);
    assert!(output.stderr.contains("exiting (--exit-when-idle)"), "{}", output.stderr);
    assert!(!output.stderr.contains("leased job"), "job lines only with --verbose:\n{}", output.stderr);
    cluster.wait_done(&sweep);

    // Nothing listens on this port: the worker gives up after about a second.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut lost = zonesweep_command(&["worker", "--coordinator", &url, "--max-disconnect", "1"]);
    lost.env("ZONESWEEP_TOKEN", "some-token").stderr(std::process::Stdio::piped());
    let output = run_with_timeout(lost, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1), "{}", output.stderr);
    assert!(output.stderr.contains("the limit set by --max-disconnect"), "{}", output.stderr);
    let refused = fails(&["worker", "--coordinator", &url, "--max-disconnect", "1e300"]);
    assert!(refused.contains("is not between 0 and"), "{refused}");
}

// ---------------------------------------------------------------- clients through outages

/// Clients ride out a coordinator restart: `watch` follows a sweep through
/// a kill -9 and restart of its coordinator and exits 0 when the sweep is
/// done, printing plain progress lines (its stderr is not a terminal);
/// `status` started while the coordinator is down waits for it; a stalled
/// (SIGSTOPped) coordinator is given up on after `--connect-timeout` with
/// a message that says so.
#[test]
fn clients_follow_a_sweep_through_a_coordinator_restart() {
    let mut cluster = Cluster::start(1, CoordinatorOptions::fast_leases());
    let sweep = cluster.submit_default(samples(), SEED, 20);
    let mut args = vec!["watch", sweep.as_str(), "--progress-interval", "0.5"];
    let remote = cluster.remote();
    args.extend(remote.iter().map(String::as_str));
    let mut watch = zonesweep_command(&args);
    watch.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let watch = watch.spawn().expect("watch starts");
    std::thread::sleep(Duration::from_millis(500));
    cluster.kill_coordinator();
    // While it is down, a status call waits for it.
    let mut status_args = vec!["status", sweep.as_str()];
    status_args.extend(remote.iter().map(String::as_str));
    let status = zonesweep_command(&status_args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(cluster.restart_coordinator(), "the coordinator restarts on its port");
    let status = status.wait_with_output().expect("status ends");
    let (status_out, status_err) = (String::from_utf8_lossy(&status.stdout), String::from_utf8_lossy(&status.stderr));
    assert!(status.status.success(), "status waits for the coordinator:\n{status_err}");
    assert!(status_out.starts_with(&sweep), "{status_out}");
    assert!(status_err.contains("cannot answer now") && status_err.contains("answered again"), "{status_err}");

    let output = watch.wait_with_output().expect("watch ends");
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "watch exits 0 once the sweep is done:\n{err}");
    assert!(out.contains(&format!("{sweep}  done")), "{out}");
    assert!(err.contains(&format!("following sweep {sweep} again")), "{err}");
    let progress =
        err.lines().filter(|l| l.starts_with(&format!("sweep {sweep}: ")) && l.contains(" samples (")).count();
    assert!(progress >= 2, "plain progress lines:\n{err}");
    assert!(!err.contains("ETA 0 s") || err.contains(" done "), "{err}");

    // A stalled coordinator: given up on after --connect-timeout.
    let pid = cluster.coordinator_pid().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let mut stalled = status_args.clone();
    stalled.extend(["--connect-timeout", "1"]);
    let refused = fails(&stalled);
    assert!(std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    assert!(refused.contains("did not answer for") && refused.contains("--connect-timeout"), "{refused}");
}

// ---------------------------------------------------------------- convergence and extension

/// `--until-ci` stops after the same block of jobs on one thread, two
/// threads and a cluster of three workers, and their exports are
/// byte-identical: the check sees whole blocks in job order only.
#[test]
fn until_ci_stops_at_the_same_job_everywhere_and_exports_identically() {
    let dir = tempfile::Builder::new().prefix("zonesweep-until-ci-").tempdir().unwrap();
    let seed = SEED.to_string();
    let sweep_args =
        ["--samples", "3000", "--seed", &seed, "--job-size", "20", "--until-ci", "0.1", "--check-every", "40"];
    // `run` takes --samples and --seed itself; the rest are extra.
    let extra = &sweep_args[6..];
    let (one, one_exports) = run_locally(dir.path(), "one.redb", 3000, SEED, 20, 1, extra);
    let (two, two_exports) = run_locally(dir.path(), "two.redb", 3000, SEED, 20, 2, extra);
    let cluster = Cluster::start(3, CoordinatorOptions::default());
    let three = cluster.submit(&sweep_args);
    let status = cluster.wait_done(&three);
    let exports = cluster.export(&three);

    let db_status = |db: &str, sweep: &str| {
        SweepStatus::parse(&ok(&["status", sweep, "--db", path_str(&dir.path().join(db))]).stdout)
    };
    let (one_status, two_status) = (db_status("one.redb", &one), db_status("two.redb", &two));
    // ±0.1 at P = 0.5 needs about 96 samples: a few blocks of 40, far from 3,000.
    assert!(status.samples < 3000 && status.samples % 40 == 0, "{status:?}");
    assert!(status.reason.contains("stopped after") && status.reason.contains("target ±0.1"), "{status:?}");
    for other in [&one_status, &two_status] {
        assert_eq!(
            (other.samples, other.jobs, other.jobs_done),
            (status.samples, status.jobs, status.jobs),
            "{other:?}"
        );
    }
    assert_eq!(exported_samples(&exports.json), status.samples);
    assert_same_exports("--until-ci on 1 thread vs a 3-worker cluster", &one_exports, &exports);
    assert_same_exports("--until-ci on 1 thread vs 2 threads", &one_exports, &two_exports);
}

/// `extend` gives, byte for byte, the sweep of the combined size with the
/// same seed, even when the first sweep ended in a partial job.
#[test]
fn extend_gives_the_sweep_of_the_combined_size_byte_for_byte() {
    let dir = tempfile::Builder::new().prefix("zonesweep-extend-").tempdir().unwrap();
    // 2,000 + 3,000 = 5,000 in a release build; 120 + 180 = 300 in a debug one.
    let (first, added) = if debug_build() { (120, 180) } else { (2000, 3000) };
    let (sweep, _) = run_locally(dir.path(), "extended.redb", first, SEED, 50, 2, &[]);
    let db = dir.path().join("extended.redb");
    let added_text = added.to_string();
    let output = ok(&["extend", &sweep, "--samples", &added_text, "--db", path_str(&db), "--threads", "2"]);
    assert!(output.stdout.contains(&format!("{sweep}  done")), "{}", output.stdout);
    let extended = export_from(dir.path(), &sweep, &["--db", path_str(&db)]);
    let total = first + added;
    let (_, whole) = run_locally(dir.path(), "whole.redb", total, SEED, 50, 2, &[]);
    assert_eq!(exported_samples(&extended.json), total);
    assert_same_exports(&format!("{first} samples extended by {added} vs one sweep of {total}"), &whole, &extended);
    let shown = ok(&["show", &sweep, "--db", path_str(&db)]).stdout;
    assert!(shown.contains(&format!("samples            {total} ({total} done, 0 failed)")), "{shown}");
    assert!(shown.contains("workers            embedded/"), "{shown}");

    // What cannot be extended, each with a message that names it.
    let zero = fails(&["extend", &sweep, "--samples", "0", "--db", path_str(&db)]);
    assert!(zero.contains("--samples must be at least 1"), "{zero}");
    let unknown = fails(&["extend", "sw-0123456789abcdef", "--samples", "5", "--db", path_str(&db)]);
    assert!(unknown.contains("sw-0123456789abcdef") && unknown.contains("not found"), "{unknown}");
    let spec = dir.path().join("lhs.toml");
    fs::write(&spec, "design = \"latin-hypercube\"\n").unwrap();
    let (lhs, _) = run_locally(dir.path(), "lhs.redb", 20, SEED, 10, 2, &["--spec", path_str(&spec)]);
    let lhs_db = dir.path().join("lhs.redb");
    let refused = fails(&["extend", &lhs, "--samples", "5", "--db", path_str(&lhs_db)]);
    assert!(refused.contains("Latin hypercube"), "{refused}");
    let until =
        fails(&["run", "--db", path_str(&lhs_db), "--spec", path_str(&spec), "--samples", "20", "--until-ci", "0.1"]);
    assert!(until.contains("Latin-hypercube sweep cannot stop early"), "{until}");
    for bad in ["0.7", "0", "-0.1", "x"] {
        let flag = format!("--until-ci={bad}");
        let refused = fails(&["run", "--db", path_str(&lhs_db), "--samples", "20", &flag]);
        assert!(refused.contains("--until-ci") && refused.contains("0.5"), "{bad}: {refused}");
    }
    // Nothing stored changed: the Latin-hypercube sweep is still done with its 20 samples.
    let status = SweepStatus::parse(&ok(&["status", &lhs, "--db", path_str(&lhs_db)]).stdout);
    assert_eq!((status.state.as_str(), status.samples_done), ("done", 20));
}

/// The Robustness RPC answers what `zones --format json` prints, unit by
/// unit, with the nominal zone kept at submission; a threshold outside
/// (0, 1] is refused.
#[test]
fn the_robustness_rpc_answers_what_zones_prints() {
    let cluster = Cluster::start(1, CoordinatorOptions::default());
    let sweep = cluster.submit_default(60, SEED, 20);
    cluster.wait_done(&sweep);
    let mut zones = vec!["zones", sweep.as_str(), "--format", "json"];
    let remote = cluster.remote();
    zones.extend(remote.iter().map(String::as_str));
    let printed = json(&ok(&zones).stdout);
    let rt = runtime();
    let (answer, refused) = rt.block_on(async {
        let mut sweeps = SweepsClient::with_interceptor(channel(&cluster.url).await, bearer(&cluster.token()));
        let answer = sweeps
            .robustness(pb::RobustnessRequest { sweep_id: sweep.clone(), threshold: None })
            .await
            .expect("robustness")
            .into_inner();
        let refused = sweeps
            .robustness(pb::RobustnessRequest { sweep_id: sweep.clone(), threshold: Some(1.5) })
            .await
            .expect_err("a threshold above 1");
        (answer, refused)
    });
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("threshold is 1.5"), "{refused:?}");
    assert_eq!(answer.threshold, 0.8);
    let units = printed["units"].as_array().expect("units");
    assert_eq!(answer.units.len(), units.len());
    for (wire, cli) in answer.units.iter().zip(units) {
        assert_eq!(wire.unit_id, cli["id"].as_str().unwrap());
        assert_eq!(u64::from(wire.modal_zone), cli["modal_zone"].as_u64().unwrap(), "{cli}");
        assert_eq!(wire.robust, cli["robust"].as_bool().unwrap(), "{cli}");
        let modal = wire.modal.as_ref().expect("a modal share");
        // Counts exactly; shares to the last digits JSON keeps.
        assert_eq!((modal.count, modal.samples), (cli["modal"]["count"].as_u64().unwrap(), 60), "{cli}");
        assert!((modal.p - cli["modal"]["p"].as_f64().unwrap()).abs() < 1e-12, "{cli}");
        assert!((modal.low - cli["modal"]["low"].as_f64().unwrap()).abs() < 1e-12, "{cli}");
        assert_eq!(wire.zones.len(), 5);
        assert!((1..=5).contains(&wire.nominal_zone), "the nominal zone is known: {wire:?}");
        assert_eq!(u64::from(wire.nominal_zone), cli["nominal_zone"].as_u64().unwrap(), "{cli}");
    }
}

/// A worker whose standard error goes away (its log collector died; here a
/// pipe whose reader is closed) keeps working: log events it cannot write
/// are dropped, and the sweep completes with the worker still running.
#[test]
fn a_worker_outlives_its_log_reader() {
    use std::io::BufRead as _;
    let cluster = Cluster::start(0, CoordinatorOptions::fast_leases());
    let sweep = cluster.submit_default(200, SEED, 1);
    let mut worker = std::process::Command::new(binary())
        .args(["worker", "--coordinator", cluster.address(), "--threads", "1", "--verbose"])
        .env("ZONESWEEP_TOKEN", cluster.token())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a worker");
    // Read its first line (it has connected), then close the pipe: every
    // job it runs from now on logs two lines into nowhere.
    let mut first = String::new();
    std::io::BufReader::new(worker.stderr.take().expect("a piped stderr")).read_line(&mut first).unwrap();
    assert!(first.contains("connected"), "{first}");
    let done = cluster.wait_done(&sweep);
    assert_eq!(done.samples_done, 200, "{done:?}");
    let exited = worker.try_wait().expect("the worker's state");
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(exited.is_none(), "the worker exited ({exited:?}) once its standard error was gone");
}

/// `zonesweep run | head`: the reader stops early, closing both standard
/// output and standard error. The run still ends with its database closed,
/// so queries read it without a repair (an exit from inside the failed
/// write used to leave it needing one).
#[test]
fn a_run_whose_reader_stops_early_leaves_its_database_closed() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.redb");
    let db_arg = db.to_str().expect("a UTF-8 path");
    let mut run = zonesweep_command(&["run", "--samples", "400", "--threads", "1", "--db", db_arg])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a run");
    // Its first line (the sweep was submitted), then both pipes closed.
    let mut first = String::new();
    std::io::BufReader::new(run.stderr.take().expect("a piped stderr")).read_line(&mut first).unwrap();
    assert!(first.contains("samples"), "{first}");
    drop(run.stdout.take());
    let deadline = std::time::Instant::now() + MAX_WAIT;
    let status = loop {
        if let Some(status) = run.try_wait().expect("the run's state") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the run did not end");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let listed = ok(&["list", "--db", db_arg]);
    assert!(listed.stdout.contains("400/400 samples"), "{listed:?}");
}
