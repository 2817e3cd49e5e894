//! Robustness of the coordinator against hostile or unlucky input: results
//! that do not fit their job, hostile results that reach the committer
//! mixed with honest ones, extreme shapes and job sizes, oversized messages,
//! watch streams at shutdown and after their client left, and submissions
//! dropped mid-way. Each test names the invariant of ARCHITECTURE.md it
//! checks, and every refusal is checked for its code and message.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tonic::Code;
use zonesweep_coordinator::server::serve_coordinator;
use zonesweep_coordinator::submission::Submission;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig, CoordinatorError};
use zonesweep_proto::client::{Authorized, ClientOptions, Connection};
use zonesweep_proto::convert::{aggregate_from_pb, aggregate_to_pb, result_to_pb};
use zonesweep_proto::ids::{LeaseRef, WorkerId};
use zonesweep_proto::pb;
use zonesweep_proto::status::SweepState;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::{Aggregate, FailureKind};
use zonesweep_shared::sweep::runner::SweepRunner;

const TOKEN: &str = "robustness-token";

/// The longest any poll in these tests waits.
const DEADLINE: Duration = Duration::from_secs(10);

/// Poll `probe` every 10 ms until it holds; fail after [`DEADLINE`].
async fn poll_until(what: &str, mut probe: impl FnMut() -> bool) {
    let started = Instant::now();
    while !probe() {
        assert!(started.elapsed() < DEADLINE, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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

async fn start(dir: &tempfile::TempDir) -> Coordinator {
    Coordinator::start(CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into())).await.expect("start")
}

/// A worker registered with `coordinator`.
fn worker(coordinator: &Coordinator) -> WorkerId {
    coordinator.register("robust", 1, zonesweep_shared::CHAIN_REVISION).expect("this build's chain").worker_id
}

struct Served {
    connection: Connection,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), CoordinatorError>>,
}

/// Serve `coordinator` on a free loopback port.
async fn serve(coordinator: Coordinator) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_coordinator(coordinator, listener, async {
        let _ = stopped.await;
    }));
    let connection = Connection::connect(&url, TOKEN, &ClientOptions::default()).await.unwrap();
    Served { connection, stop, server }
}

impl Served {
    fn sweeps(&self) -> pb::sweeps_client::SweepsClient<Authorized> {
        self.connection.sweeps()
    }

    /// Stop the server; it must be gone within 5 s.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        assert!(ended.is_ok(), "the server stops within 5 s of the shutdown signal");
    }
}

/// A worker of `threads` threads registered by gRPC, and the jobs it
/// leased, one a thread.
async fn register_and_lease(
    workers: &mut pb::workers_client::WorkersClient<Authorized>,
    threads: u32,
) -> (String, Vec<pb::Job>) {
    let request = pb::RegisterRequest { hostname: "robust".into(), threads, chain: zonesweep_shared::CHAIN_REVISION };
    let worker_id = workers.register(request).await.unwrap().into_inner().worker_id;
    let request = pb::LeaseRequest { worker_id: worker_id.clone(), capacity: threads, call: 0, wait_ms: 0 };
    let jobs = workers.lease(request).await.unwrap().into_inner().jobs;
    assert_eq!(jobs.len(), threads as usize);
    (worker_id, jobs)
}

/// The honest result of samples `range` of a sweep of `samples` samples, seed 7.
fn honest(samples: u64, range: std::ops::Range<u64>) -> Aggregate {
    let (units_csv, panel_csv) = files();
    let dataset = DatasetBlob { units_csv, panel_csv, units_geojson: None }.parse().unwrap();
    let config = Config::default();
    let spec = SweepSpec { samples, seed: 7, ..SweepSpec::default() };
    SweepRunner::new(&dataset, &config, &spec).unwrap().run_range(range)
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

/// A submission with absurd sizes is refused, and the largest allowed one
/// with a job size near u64::MAX leases without overflowing a sample range.
#[tokio::test]
async fn huge_sample_counts_and_job_sizes_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let refused = coordinator.submit(request(u64::MAX, 1 << 63)).await;
    assert_refused(refused, Code::InvalidArgument, "samples is more than the 1000000000000 a sweep may have");
    let refused = coordinator.submit(request(10, u64::MAX)).await;
    assert_refused(refused, Code::InvalidArgument, "the job size is 18446744073709551615; it must be 1–1000000000000");
    let status = coordinator.submit(request(1_000_000_000_000, 1_000_000_000_000)).await.expect("submit is accepted");
    assert_eq!(status.jobs, 1);
    let worker = worker(&coordinator);
    let jobs = coordinator.lease(&worker, 2, 0).unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].samples, 0..1_000_000_000_000);
}

/// Invariant 5: a result whose counts would overflow when added up (a
/// wire value of 2^64 − 1 successful samples plus failures) is refused,
/// neither panicking in the handler nor wrapping to the job's size, and
/// changes nothing.
#[tokio::test]
async fn a_result_whose_counts_overflow_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let sweep = coordinator.submit(request(20, 10)).await.unwrap().id;
    let worker = worker(&coordinator);
    let jobs = coordinator.lease(&worker, 1, 0).unwrap();
    let mut forged = honest(20, 0..10);
    forged.failures.clear();
    forged.samples_ok = u64::MAX;
    // u64::MAX + 11 wraps to 10, the job's sample count.
    forged.failures.insert("x".into(), FailureKind { count: 11, samples: vec![], example: String::new() });
    let result = coordinator.complete(&worker, &jobs[0].lease, forged).await;
    assert_refused(
        result,
        Code::InvalidArgument,
        "the result is inconsistent: aggregates do not fit together: the sample counts overflow",
    );
    let status = coordinator.status(&sweep).unwrap();
    assert_eq!((status.samples_done, status.jobs_done, status.jobs_leased), (0, 0, 1), "nothing changed");
}

/// Invariant 5: a result's counts must add up to its sample count; an
/// all-zero result that claims ten successful samples is refused.
#[tokio::test]
async fn a_result_whose_counts_do_not_add_up_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let sweep = coordinator.submit(request(20, 10)).await.unwrap().id;
    let worker = worker(&coordinator);
    let jobs = coordinator.lease(&worker, 1, 0).unwrap();
    let mut forged = Aggregate::empty(honest(20, 0..10).shape);
    forged.samples_ok = 10;
    let result = coordinator.complete(&worker, &jobs[0].lease, forged).await;
    assert_refused(result, Code::InvalidArgument, "zone_counts: row 0 counts 0 samples, not 10");
    assert_eq!(coordinator.status(&sweep).unwrap().samples_done, 0, "nothing changed");
}

/// Invariants 2 and 5 at the committer: hostile results that pass the
/// checks made before queueing — the same job three times at once, and a
/// result whose regression histograms have another bin width (which only
/// the merge notices) — queued together with honest results. Each is
/// decided on its own: the duplicates are merged once, the misfit is
/// refused by the committer, the honest results are stored, and the sweep
/// ends with exactly the aggregate of a run on one machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_results_reaching_the_committer_are_refused_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let sweep = coordinator.submit(request(30, 10)).await.unwrap().id;
    let worker = worker(&coordinator);
    let jobs = coordinator.lease(&worker, 3, 0).unwrap();
    let lease: Vec<LeaseRef> = jobs.iter().map(|job| job.lease.clone()).collect();
    let mut other_width = honest(30, 10..20);
    other_width.r2.width *= 2.0;
    let (first, second, third, misfit, job2) = tokio::join!(
        coordinator.complete(&worker, &lease[0], honest(30, 0..10)),
        coordinator.complete(&worker, &lease[0], honest(30, 0..10)),
        coordinator.complete(&worker, &lease[0], honest(30, 0..10)),
        coordinator.complete(&worker, &lease[1], other_width),
        coordinator.complete(&worker, &lease[2], honest(30, 20..30)),
    );
    let merged: Vec<bool> =
        [first, second, third].into_iter().map(|r| r.expect("a duplicate is not an error")).collect();
    assert_eq!(merged.iter().filter(|m| **m).count(), 1, "job 0 is merged exactly once: {merged:?}");
    // Only the committer's merge says "does not merge": the misfit got that far.
    assert_refused(
        misfit,
        Code::InvalidArgument,
        "the result does not merge: aggregates do not fit together: a regression histogram has the wrong bin width",
    );
    assert!(job2.expect("an honest result is stored"));
    let status = coordinator.status(&sweep).unwrap();
    assert_eq!((status.state, status.jobs_done, status.samples_done), (SweepState::Running, 2, 20), "{status:?}");

    // The committer still works: job 1's honest result completes the sweep.
    assert!(coordinator.complete(&worker, &lease[1], honest(30, 10..20)).await.unwrap());
    let results = coordinator.query(&sweep).await.unwrap();
    assert_eq!(results.status.state, SweepState::Done);
    assert_eq!(results.aggregate, honest(30, 0..30), "exactly the one-machine aggregate");
}

/// Invariant 5 at the wire: a completion is decoded against its sweep's
/// shape, so a result claiming a larger (plausible) shape is refused before
/// its arrays are read, and a completion for an unknown sweep is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_is_decoded_against_its_sweeps_shape() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    coordinator.submit(request(20, 10)).await.unwrap();
    let served = serve(coordinator).await;
    let mut workers = served.connection.workers();
    let worker_id = workers
        .register(pb::RegisterRequest {
            hostname: "robust".into(),
            threads: 1,
            chain: zonesweep_shared::CHAIN_REVISION,
        })
        .await
        .unwrap()
        .into_inner()
        .worker_id;
    let job = workers
        .lease(pb::LeaseRequest { worker_id: worker_id.clone(), capacity: 1, call: 0, wait_ms: 0 })
        .await
        .unwrap()
        .into_inner()
        .jobs
        .remove(0);
    let lease = pb::LeaseRef { sweep_id: job.sweep_id.clone(), job_index: job.job_index, lease_id: job.lease_id };
    let mut wire = aggregate_to_pb(&honest(20, 0..10));
    let shape = wire.shape.as_mut().unwrap();
    shape.n_units = 9_000_000;
    let completion = |lease: pb::LeaseRef, aggregate: pb::Aggregate| pb::CompleteRequest {
        worker_id: worker_id.clone(),
        lease: Some(lease),
        aggregate: Some(aggregate),
        lease_capacity: 0,
        call: 0,
    };
    let refused = workers.complete(completion(lease.clone(), wire.clone())).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("the result's shape (9000000 units"), "{refused:?}");
    assert!(refused.message().contains("does not fit the sweep's (6 units"), "{refused:?}");
    let ghost = pb::LeaseRef { sweep_id: "sw-ghost".into(), ..lease };
    let unknown = workers.complete(completion(ghost, wire)).await.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "sweep sw-ghost not found"));
    served.stop().await;
}

/// Several results in one CompleteMany call are taken or refused each on
/// its own, answered in order, and the jobs they free are leased again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_sent_together_are_answered_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let sweep = coordinator.submit(request(40, 10)).await.unwrap().id;
    let served = serve(coordinator.clone()).await;
    let mut workers = served.connection.workers();
    let (worker_id, jobs) = register_and_lease(&mut workers, 3).await;
    let lease = |job: &pb::Job| pb::LeaseRef {
        sweep_id: job.sweep_id.clone(),
        job_index: job.job_index,
        lease_id: job.lease_id,
    };
    let range = |job: &pb::Job| job.sample_start..job.sample_end;
    let result =
        |lease: pb::LeaseRef, aggregate: Option<pb::Aggregate>| pb::JobResult { lease: Some(lease), aggregate };
    let results = vec![
        result(lease(&jobs[0]), Some(result_to_pb(&honest(40, range(&jobs[0]))))),
        // The same job again in the same call: taken, merged once.
        result(lease(&jobs[0]), Some(result_to_pb(&honest(40, range(&jobs[0]))))),
        // Half the job's samples: refused, the rest still taken.
        result(lease(&jobs[1]), Some(result_to_pb(&honest(40, jobs[1].sample_start..jobs[1].sample_start + 5)))),
        result(lease(&jobs[2]), None),
        result(
            pb::LeaseRef { sweep_id: "sw-ghost".into(), ..lease(&jobs[2]) },
            Some(result_to_pb(&honest(40, range(&jobs[2])))),
        ),
        result(lease(&jobs[2]), Some(result_to_pb(&honest(40, range(&jobs[2]))))),
    ];
    let response = workers
        .complete_many(pb::CompleteManyRequest { worker_id: worker_id.clone(), results, lease_capacity: 2, call: 0 })
        .await
        .unwrap()
        .into_inner();
    let outcomes: Vec<(Code, bool)> = response.outcomes.iter().map(|o| (Code::from(o.code), o.merged)).collect();
    assert_eq!(
        outcomes,
        [
            (Code::Ok, true),
            (Code::Ok, false),
            (Code::InvalidArgument, false),
            (Code::InvalidArgument, false),
            (Code::NotFound, false),
            (Code::Ok, true),
        ],
        "{:?}",
        response.outcomes
    );
    assert!(response.outcomes[3].message.contains("carries no aggregate"), "{:?}", response.outcomes[3]);
    assert_eq!(response.outcomes[4].message, "sweep sw-ghost not found");
    // Three results were taken: both jobs asked for are leased (the last
    // one left, as job 1 is still leased to this worker).
    assert_eq!(response.jobs.len(), 1);
    let status = coordinator.status(&sweep).unwrap();
    assert_eq!((status.jobs_done, status.samples_done), (2, 20));
    // A worker the coordinator does not know has each result refused, and
    // told to register again.
    let stranger = workers
        .complete_many(pb::CompleteManyRequest {
            worker_id: "wk-stranger".into(),
            results: vec![result(lease(&jobs[1]), Some(result_to_pb(&honest(40, range(&jobs[1])))))],
            lease_capacity: 1,
            call: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stranger.outcomes.len(), 1);
    assert_eq!(Code::from(stranger.outcomes[0].code), Code::NotFound, "{:?}", stranger.outcomes);
    assert!(stranger.outcomes[0].message.contains("register again"), "{:?}", stranger.outcomes);
    // No result taken, no job leased, whatever the capacity asked.
    assert!(stranger.jobs.is_empty());
    assert_eq!(coordinator.status(&sweep).unwrap().jobs_done, 2);
    // With work waiting, results that are all refused lease nothing: they
    // free no thread.
    coordinator.submit(request(40, 10)).await.unwrap();
    let refused = workers
        .complete_many(pb::CompleteManyRequest {
            worker_id: worker_id.clone(),
            results: vec![result(lease(&jobs[1]), None), result(lease(&jobs[1]), None)],
            lease_capacity: 2,
            call: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(refused.outcomes.iter().all(|o| Code::from(o.code) == Code::InvalidArgument), "{refused:?}");
    assert!(refused.jobs.is_empty(), "{:?}", refused.jobs);
    served.stop().await;
}

/// CompleteMany requests over one CompleteStream are answered in order,
/// each as a call of its own would be; a request refused as a whole ends
/// the stream with its status; a shutdown ends an open stream and is not
/// held up by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_over_a_stream_are_answered_in_order_and_shutdown_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let sweep = coordinator.submit(request(40, 10)).await.unwrap().id;
    let served = serve(coordinator.clone()).await;
    let mut workers = served.connection.workers();
    let (worker_id, jobs) = register_and_lease(&mut workers, 2).await;
    let result = |job: &pb::Job| pb::JobResult {
        lease: Some(pb::LeaseRef { sweep_id: job.sweep_id.clone(), job_index: job.job_index, lease_id: job.lease_id }),
        aggregate: Some(result_to_pb(&honest(40, job.sample_start..job.sample_end))),
    };
    let request = |worker_id: &str, results: Vec<pb::JobResult>| pb::CompleteManyRequest {
        worker_id: worker_id.to_owned(),
        results,
        lease_capacity: 1,
        call: 0,
    };
    let open = |mut workers: pb::workers_client::WorkersClient<Authorized>| async move {
        let (sender, outbox) = tokio::sync::mpsc::channel(4);
        let answers =
            workers.complete_stream(tokio_stream::wrappers::ReceiverStream::new(outbox)).await.unwrap().into_inner();
        (sender, answers)
    };
    let (sender, mut answers) = open(workers.clone()).await;
    // Three requests queued at once: answered in their order.
    sender.send(request(&worker_id, vec![result(&jobs[0])])).await.unwrap();
    sender.send(request(&worker_id, vec![result(&jobs[0])])).await.unwrap();
    sender.send(request(&worker_id, vec![result(&jobs[1]), result(&jobs[1])])).await.unwrap();
    let (mut merged, mut leased) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let answer = answers.message().await.unwrap().expect("an answer per request");
        assert!(answer.outcomes.iter().all(|o| o.code == 0), "{answer:?}");
        merged.push(answer.outcomes.iter().map(|o| o.merged).collect::<Vec<_>>());
        leased.push(answer.jobs.len());
    }
    assert_eq!(merged, [vec![true], vec![false], vec![true, false]]);
    // Each answer leases the one job asked for while any of the four is left.
    assert_eq!(leased, [1, 1, 0]);
    assert_eq!(coordinator.status(&sweep).unwrap().jobs_done, 2);
    // A request whose worker id does not parse ends the stream.
    sender.send(request("not a worker id", vec![result(&jobs[0])])).await.unwrap();
    let refused = answers.message().await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    // A new stream, left open and idle: the shutdown ends it.
    let (_sender, mut answers) = open(workers).await;
    served.stop().await;
    // Bounded: a stream the shutdown left open would wait here for ever.
    let end = tokio::time::timeout(Duration::from_secs(10), answers.message()).await;
    let end = end.expect("the shutdown ends the open stream").unwrap_err();
    assert_eq!((end.code(), end.message()), (Code::Unavailable, "the coordinator is shutting down"));
}

/// A wire shape with extreme years is refused without overflowing.
#[test]
fn a_shape_with_extreme_years_is_refused_without_panicking() {
    let mut wire = aggregate_to_pb(&honest(10, 0..1));
    let shape = wire.shape.as_mut().unwrap();
    shape.base_year = i32::MIN;
    shape.horizon = i32::MAX;
    let error = aggregate_from_pb(&wire).unwrap_err();
    assert!(error.to_string().contains("implausible projection years"), "{error}");
}

/// A watch task ends when its client goes away, even on a sweep nobody
/// works on (no status change would tell it).
#[tokio::test]
async fn watch_tasks_end_when_their_client_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let status = coordinator.submit(request(20, 10)).await.unwrap();
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    for _ in 0..20 {
        // The client reads the first status, then goes away (Ctrl-C).
        let mut receiver = coordinator.watch(&status.id).unwrap();
        assert_eq!(receiver.recv().await.unwrap().unwrap(), status);
        drop(receiver);
    }
    poll_until("the watch tasks of departed clients end", || metrics.num_alive_tasks() <= before).await;
}

/// The baseline for the shutdown test below: an idle client connection and
/// no watch; the server stops promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_shutdown_without_a_watch_is_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let status = coordinator.submit(request(20, 10)).await.unwrap();
    let served = serve(coordinator).await;
    let mut client = served.sweeps();
    client.get(pb::SweepRef { sweep_id: status.id.to_string() }).await.unwrap();
    served.stop().await;
}

/// Graceful shutdown waits for open streams: a watch of a running sweep
/// must end when the server shuts down, or SIGTERM would never stop a
/// coordinator that a `zonesweep watch` follows. The watcher is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_up_by_an_open_watch() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let status = coordinator.submit(request(20, 10)).await.unwrap();
    let served = serve(coordinator).await;
    let mut client = served.sweeps();
    let mut stream = client.watch(pb::SweepRef { sweep_id: status.id.to_string() }).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().is_some());
    served.stop().await;
    let end = stream.message().await.unwrap_err();
    assert_eq!((end.code(), end.message()), (Code::Unavailable, "the coordinator is shutting down"));
}

/// A submission whose client goes away while the sweep is being prepared
/// or stored is still registered in memory (listed, leased), not only in
/// the database.
#[test]
fn a_submission_dropped_mid_way_is_known_to_the_coordinator() {
    use std::task::Poll;
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listed = runtime.block_on(async {
        let coordinator = start(&dir).await;
        let mut submit = Box::pin(coordinator.submit(request(20, 10)));
        let first = std::future::poll_fn(|cx| Poll::Ready(submit.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "the submission waits for its parsing and durable write");
        drop(submit); // what tonic does when the client goes away
        poll_until("the dropped submission is listed", || coordinator.list().len() == 1).await;
        coordinator.list().len()
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    let stored = zonesweep_coordinator::store::Store::open_existing(&dir.path().join("db.redb"))
        .unwrap()
        .sweeps()
        .unwrap()
        .len();
    assert_eq!((stored, listed), (1, 1), "a stored sweep is one the running coordinator serves");
}

/// Invariant 5: a message over the size limit is refused with a clear status
/// and changes nothing; an unknown sweep id is NOT_FOUND, a malformed one
/// INVALID_ARGUMENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_unknown_sweeps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into());
    config.max_message_bytes = 64 * 1024;
    let coordinator = Coordinator::start(config).await.unwrap();
    let served = serve(coordinator).await;
    let mut client = served.sweeps();
    // A 200-unit dataset is far above 64 KiB.
    let (units_csv, panel_csv) = demo::generate(200, 1).unwrap().to_csv();
    assert!(panel_csv.len() > 64 * 1024);
    let big = pb::SubmitRequest { units_csv, panel_csv, samples: 10, job_size: 10, ..pb::SubmitRequest::default() };
    let refused = client.submit(big).await.unwrap_err();
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("message length too large"), "{refused:?}");
    assert!(refused.message().contains("the limit is: 65536 bytes"), "{refused:?}");
    let listed = client.list(pb::ListRequest {}).await.unwrap().into_inner();
    assert!(listed.sweeps.is_empty(), "nothing was stored");
    let unknown = client.get(pb::SweepRef { sweep_id: "sw-nope".into() }).await.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "sweep sw-nope not found"));
    let malformed = client.get(pb::SweepRef { sweep_id: "../etc".into() }).await.unwrap_err();
    assert_eq!((malformed.code(), malformed.message()), (Code::InvalidArgument, "`../etc` is not a valid sweep id"));
    served.stop().await;
}

/// Results belong to their lease, at the wire: a completion under a
/// made-up worker id, under a made-up lease, or carrying another sweep's
/// (fitting) result under a lease its worker does not hold is refused and
/// changes nothing; a heartbeat naming leases it was never given adopts
/// nothing; a failure report from a worker that does not hold the job
/// changes nothing. The sweep then completes with exactly the honest results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_and_heartbeats_count_only_from_the_holder_of_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let target = coordinator.submit(request(20, 10)).await.unwrap().id;
    let served = serve(coordinator.clone()).await;
    let mut workers = served.connection.workers();
    let register =
        pb::RegisterRequest { hostname: "intruder".into(), threads: 1, chain: zonesweep_shared::CHAIN_REVISION };
    let intruder = workers.register(register).await.unwrap().into_inner().worker_id;
    let job_ref =
        |index: u32, lease_id: u64| pb::LeaseRef { sweep_id: target.as_str().to_owned(), job_index: index, lease_id };
    let complete = |worker_id: &str, lease: pb::LeaseRef, aggregate: &Aggregate| pb::CompleteRequest {
        worker_id: worker_id.to_owned(),
        lease: Some(lease),
        aggregate: Some(aggregate_to_pb(aggregate)),
        lease_capacity: 0,
        call: 0,
    };

    // Nobody holds job 0: a made-up worker, then a registered one with a made-up lease.
    let forged = workers.complete(complete("wk-made-up-1", job_ref(0, 12345), &honest(20, 0..10))).await.unwrap_err();
    assert_eq!(forged.code(), Code::NotFound, "{forged:?}");
    assert!(forged.message().contains("worker wk-made-up-1"), "{forged:?}");
    let forged = workers.complete(complete(&intruder, job_ref(0, 12345), &honest(20, 0..10))).await.unwrap_err();
    assert_eq!(forged.code(), Code::FailedPrecondition, "{forged:?}");
    assert!(forged.message().contains("is not one this coordinator handed to worker"), "{forged:?}");

    // A heartbeat naming every job under made-up leases adopts none of them.
    let heartbeat = pb::HeartbeatRequest {
        worker_id: intruder.clone(),
        leases: vec![job_ref(0, 1), job_ref(1, 2)],
        calls_ended: 0,
    };
    let abandon = workers.heartbeat(heartbeat).await.unwrap().into_inner().abandon;
    assert_eq!(abandon.len(), 2, "{abandon:?}");
    assert_eq!(coordinator.status(&target).unwrap().jobs_leased, 0, "nothing was adopted");

    // An honest worker leases both jobs; the intruder's result and failure
    // report under the honest worker's lease are refused.
    let honest_worker = worker(&coordinator);
    let jobs = coordinator.lease(&honest_worker, 2, 0).unwrap();
    let lease0 = jobs[0].lease.to_pb();
    let stolen = workers.complete(complete(&intruder, lease0.clone(), &honest(20, 0..10))).await.unwrap_err();
    assert_eq!(stolen.code(), Code::FailedPrecondition, "{stolen:?}");
    let fail = pb::FailRequest { worker_id: intruder.clone(), lease: Some(lease0), reason: "sabotage".into() };
    assert_eq!(workers.fail(fail).await.unwrap_err().code(), Code::FailedPrecondition);

    // Another sweep's result that fits (same dataset, shape and job size,
    // another seed) under a lease the intruder holds for that other sweep
    // but naming the target's job: refused too.
    let mut other = request(20, 10);
    other.seed = Some(8);
    let other_sweep = coordinator.submit(other).await.unwrap().id;
    let lease = workers
        .lease(pb::LeaseRequest { worker_id: intruder.clone(), capacity: 1, call: 0, wait_ms: 0 })
        .await
        .unwrap();
    let other_job = lease.into_inner().jobs.remove(0);
    assert_eq!(other_job.sweep_id, other_sweep.as_str());
    let misplaced = job_ref(1, other_job.lease_id);
    let refused = workers.complete(complete(&intruder, misplaced, &honest(20, 10..20))).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let status = coordinator.status(&target).unwrap();
    assert_eq!((status.state, status.jobs_done, status.samples_done), (SweepState::Running, 0, 0), "{status:?}");
    for job in &jobs {
        let range = job.samples.clone();
        assert!(coordinator.complete(&honest_worker, &job.lease, honest(20, range)).await.unwrap());
    }
    let results = coordinator.query(&target).await.unwrap();
    assert_eq!(results.status.state, SweepState::Done);
    assert_eq!(results.aggregate, honest(20, 0..20), "exactly the honest results");
    served.stop().await;
}

/// A coordinator whose leases expire 300 ms after the last heartbeat, and
/// whose jobs may fail only once.
async fn start_impatient(dir: &tempfile::TempDir) -> Coordinator {
    let mut config = CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into());
    config.heartbeat_interval = Duration::from_millis(100);
    config.lease_timeout = Duration::from_millis(300);
    config.max_attempts = 1;
    Coordinator::start(config).await.expect("start")
}

/// Infrastructure faults are not job faults: leases that expire because
/// their workers went silent (killed, cut off) never fail a sweep, however
/// often, while one failure a worker reports does (here `max_attempts` is
/// 1). The failed sweep resumes from what it has and ends with exactly the
/// results of an uninterrupted run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiries_never_fail_a_sweep_and_a_failed_sweep_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start_impatient(&dir).await;
    let sweep = coordinator.submit(request(20, 10)).await.unwrap().id;
    for _ in 0..5 {
        let silent = worker(&coordinator);
        let jobs = coordinator.lease(&silent, 2, 0).unwrap();
        assert_eq!(jobs.len(), 2);
        poll_until("the silent worker's leases expire", || coordinator.status(&sweep).unwrap().jobs_leased == 0).await;
        assert_eq!(coordinator.status(&sweep).unwrap().state, SweepState::Running);
    }
    // A job that fails with an error counts: the sweep fails.
    let honest_worker = worker(&coordinator);
    let jobs = coordinator.lease(&honest_worker, 2, 0).unwrap();
    assert!(coordinator.complete(&honest_worker, &jobs[0].lease, honest(20, jobs[0].samples.clone())).await.unwrap());
    coordinator.fail(&honest_worker, &jobs[1].lease, "out of memory").await.unwrap();
    poll_until("the sweep fails", || coordinator.status(&sweep).unwrap().state == SweepState::Failed).await;
    let failed = coordinator.status(&sweep).unwrap();
    assert!(failed.reason.contains("failed (out of memory) 1 times"), "{failed:?}");
    assert_eq!((failed.jobs_done, failed.samples_done), (1, 10));

    // Resumed: only the job not done is leased again, with a fresh count.
    let resumed = coordinator.resume(&sweep).await.unwrap();
    assert_eq!((resumed.state, resumed.reason.as_str(), resumed.samples_done), (SweepState::Running, "", 10));
    let again = coordinator.lease(&honest_worker, 2, 0).unwrap();
    assert_eq!(again.iter().map(|j| j.samples.clone()).collect::<Vec<_>>(), vec![jobs[1].samples.clone()]);
    assert!(coordinator.complete(&honest_worker, &again[0].lease, honest(20, again[0].samples.clone())).await.unwrap());
    let results = coordinator.query(&sweep).await.unwrap();
    assert_eq!(results.status.state, SweepState::Done);
    assert_eq!(results.aggregate, honest(20, 0..20), "exactly an uninterrupted run's results");
    // A done sweep, or one that does not exist, does not resume.
    assert_refused(coordinator.resume(&sweep).await, Code::FailedPrecondition, "is done; there is nothing to resume");
    let ghost = zonesweep_proto::ids::SweepId::parse("sw-ghost").unwrap();
    assert_refused(coordinator.resume(&ghost).await, Code::NotFound, "sweep sw-ghost");
}

/// A lease call that finds no work is held until work appears: a sweep
/// submitted while it waits, or a job whose lease expired; with none it
/// answers empty after its wait (capped), or at once when the server
/// begins to shut down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_call_waits_for_work() {
    use zonesweep_coordinator::service::MAX_LEASE_WAIT;
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start_impatient(&dir).await;
    let idle = worker(&coordinator);
    // No work and a short wait: empty, after the wait.
    let asked = std::time::Instant::now();
    let jobs = coordinator.lease_or_wait(&idle, 1, 0, Duration::from_millis(300)).await.unwrap();
    assert!(jobs.is_empty() && asked.elapsed() >= Duration::from_millis(300), "{jobs:?} after {:?}", asked.elapsed());
    // A sweep submitted while the call waits is leased by it, at once (not
    // at the end of the wait).
    let silent = worker(&coordinator);
    let waiting = {
        let (coordinator, idle) = (coordinator.clone(), idle.clone());
        tokio::spawn(async move { coordinator.lease_or_wait(&idle, 1, 0, MAX_LEASE_WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let submitted = std::time::Instant::now();
    let sweep = coordinator.submit(request(20, 10)).await.unwrap().id;
    let jobs = waiting.await.unwrap().unwrap();
    assert_eq!(jobs.len(), 1, "the waiting call leases the new sweep's job");
    assert!(submitted.elapsed() < MAX_LEASE_WAIT / 2, "leased {:?} after the submission", submitted.elapsed());
    // Every job leased (the second to a worker that goes silent; neither
    // sends heartbeats, so both leases expire after 300 ms): a call waits,
    // and is woken by a lease expiring, before the end of its wait.
    assert_eq!(coordinator.lease(&silent, 1, 0).unwrap().len(), 1);
    assert_eq!(coordinator.status(&sweep).unwrap().jobs_leased, 2, "no job pending");
    let asked = std::time::Instant::now();
    let jobs = coordinator.lease_or_wait(&idle, 1, 0, MAX_LEASE_WAIT).await.unwrap();
    assert_eq!(jobs.len(), 1, "an expired job, after {:?}", asked.elapsed());
    assert!(asked.elapsed() < MAX_LEASE_WAIT * 3 / 4, "woken {:?} after it asked", asked.elapsed());
    // Shutting down ends a waiting call with no work (a coordinator of
    // its own: here the other job's lease expires too).
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let idle = worker(&coordinator);
    let waiting = {
        let (coordinator, idle) = (coordinator.clone(), idle.clone());
        tokio::spawn(async move { coordinator.lease_or_wait(&idle, 1, 0, MAX_LEASE_WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    coordinator.begin_shutdown();
    let jobs =
        tokio::time::timeout(MAX_LEASE_WAIT / 2, waiting).await.expect("ended by the shutdown").unwrap().unwrap();
    assert!(jobs.is_empty());
}

/// Deleting and pruning: a running sweep is refused, a final one goes with
/// its stored results and every blob no other sweep uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_sweeps_are_deleted_and_pruned_with_their_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let first = coordinator.submit(request(20, 10)).await.unwrap();
    let mut other_spec = request(20, 10);
    other_spec.spec_toml = "samples = 20\nseed = 9\n".into();
    let second = coordinator.submit(other_spec).await.unwrap();
    assert_ne!(first.spec_hash, second.spec_hash);
    assert_eq!(first.dataset_hash, second.dataset_hash);
    assert_refused(coordinator.delete(&first.id).await, Code::FailedPrecondition, "is running; cancel it first");
    coordinator.cancel(&first.id).await.unwrap();
    coordinator.delete(&first.id).await.unwrap();
    assert_refused(coordinator.query(&first.id).await, Code::NotFound, "sweep");
    let hash = |text: &str| zonesweep_proto::ids::ContentHash::parse(text).unwrap();
    // The first sweep's own spec is gone; the dataset both used is kept.
    assert_refused(coordinator.fetch_blob(&hash(&first.spec_hash)).await, Code::NotFound, "blob");
    assert!(coordinator.fetch_blob(&hash(&second.dataset_hash)).await.is_ok());
    // Prune keeps running sweeps, then takes the cancelled one.
    assert!(coordinator.prune(Duration::ZERO).await.unwrap().is_empty());
    coordinator.cancel(&second.id).await.unwrap();
    assert_eq!(coordinator.prune(Duration::from_secs(3600)).await.unwrap(), vec![], "ended only now");
    assert_eq!(coordinator.prune(Duration::ZERO).await.unwrap(), vec![second.id.clone()]);
    assert_refused(coordinator.fetch_blob(&hash(&second.dataset_hash)).await, Code::NotFound, "blob");
    assert!(coordinator.list().is_empty(), "{:?}", coordinator.list());
}

/// The demo files with the panel's years moved to start at `first`.
fn files_from_year(first: i64) -> (String, String) {
    let (units_csv, panel_csv) = files();
    let mut lines = panel_csv.lines();
    let mut panel = format!("{}\n", lines.next().unwrap());
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let start: i64 = rows.iter().map(|r| r[1].parse::<i64>().unwrap()).min().unwrap();
    for mut row in rows {
        let year = (row[1].parse::<i64>().unwrap() - start + first).to_string();
        row[1] = &year;
        panel.push_str(&row.join(","));
        panel.push('\n');
    }
    (units_csv, panel)
}

/// Invariant 5 at the submission door: horizons and dataset years outside
/// the documented bounds are refused with the key, the value and the range,
/// nothing is stored, the coordinator goes on serving, and it starts again
/// on its database.
#[test]
fn submissions_outside_the_documented_bounds_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = || tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let first = runtime();
    let accepted = first.block_on(async {
        let coordinator = start(&dir).await;
        let horizons = [
            (3100, 2030, "scenarios.horizon is 3100; it must be a year 1900–2200"),
            (2010, 2005, "scenarios.horizon is 2010; with the data's base year 2020 it must be 2021–2200"),
            (2_147_483_647, 2030, "scenarios.horizon is 2147483647; it must be a year 1900–2200"),
            (3_000_000, 2030, "scenarios.horizon is 3000000; it must be a year 1900–2200"),
            (-2_147_483_000, -2_147_483_600, "scenarios.horizon is -2147483000; it must be a year 1900–2200"),
        ];
        for (horizon, milestone, message) in horizons {
            let config_toml = format!("[scenarios]\nhorizon = {horizon}\nmilestone = {milestone}\n");
            let refused = coordinator.submit(Submission { config_toml, ..request(10, 5) }).await;
            assert_refused(refused, Code::InvalidArgument, message);
        }
        for first in [10, 3050, 9979] {
            let (units_csv, panel_csv) = files_from_year(first);
            let refused = coordinator.submit(Submission { units_csv, panel_csv, ..request(10, 5) }).await;
            let message = format!("value `{first}`: not a year in the allowed range 1900–2200");
            assert_refused(refused, Code::InvalidArgument, &message);
        }
        assert!(coordinator.list().is_empty(), "refused submissions store nothing");
        let accepted = coordinator.submit(request(10, 5)).await.expect("a valid submission is still taken");
        assert_eq!(coordinator.list().len(), 1);
        accepted.id
    });
    first.shutdown_timeout(Duration::from_secs(5));
    // Every sweep in the database decodes: the coordinator starts on it.
    let listed = runtime().block_on(async { start(&dir).await.list().into_iter().map(|s| s.id).collect::<Vec<_>>() });
    assert_eq!(listed, [accepted]);
}

/// Submissions are prepared within a byte budget: one that would pass it is
/// refused with RESOURCE_EXHAUSTED and a message that says so, and stores nothing.
#[tokio::test]
async fn a_submission_beyond_the_preparation_budget_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into());
    let bytes = request(10, 5).bytes();
    config.max_message_bytes = 1024;
    config.preparation_budget_bytes = bytes - 1;
    let coordinator = Coordinator::start(config).await.expect("start");
    let refused = coordinator.submit(request(10, 5)).await;
    let message = format!("the submission is {bytes} bytes; the coordinator prepares at most {} bytes", bytes - 1);
    assert_refused(refused, Code::ResourceExhausted, &message);
    assert!(coordinator.list().is_empty());
}
