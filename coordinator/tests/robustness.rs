//! Robustness of the coordinator against hostile or unlucky input: results
//! whose counts overflow or do not add up, extreme shapes and job sizes,
//! watch streams at shutdown and after their client left, and submissions
//! dropped mid-way. Each test states what the invariants of SYSTEM.md require.

use std::time::Duration;

use tokio::net::TcpListener;
use zonesweep_coordinator::server::serve_coordinator;
use zonesweep_coordinator::service::{Coordinator, CoordinatorConfig};
use zonesweep_proto::auth::BearerToken;
use zonesweep_proto::convert::{aggregate_from_pb, aggregate_to_pb};
use zonesweep_proto::ids::WorkerId;
use zonesweep_proto::pb;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::{Aggregate, FailureKind};
use zonesweep_shared::sweep::runner::SweepRunner;

const TOKEN: &str = "robustness-token";

fn files() -> (String, String) {
    demo::generate(6, 3).expect("demo dataset").to_csv()
}

fn request(samples: u64, job_size: u64) -> pb::SubmitRequest {
    let (units_csv, panel_csv) = files();
    pb::SubmitRequest {
        units_csv,
        panel_csv,
        units_geojson: String::new(),
        config_toml: String::new(),
        spec_toml: String::new(),
        samples,
        seed: 7,
        has_seed: true,
        job_size,
    }
}

async fn start(dir: &tempfile::TempDir) -> Coordinator {
    Coordinator::start(CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into())).await.expect("start")
}

fn lease_ref(job: &pb::Job) -> pb::LeaseRef {
    pb::LeaseRef { sweep_id: job.sweep_id.clone(), job_index: job.job_index, lease_id: job.lease_id }
}

type SweepsClient = pb::sweeps_client::SweepsClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerToken>,
>;

/// Serve `coordinator` on a free loopback port: a client, the stop switch
/// and the server task.
async fn serve(
    coordinator: Coordinator,
) -> (
    SweepsClient,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), zonesweep_coordinator::error::CoordinatorError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_coordinator(coordinator, listener, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();
    (pb::sweeps_client::SweepsClient::with_interceptor(channel, BearerToken::new(TOKEN).unwrap()), stop, server)
}

/// The honest result of samples `range` of a sweep of `samples` samples, seed 7.
fn honest(samples: u64, range: std::ops::Range<u64>) -> Aggregate {
    let (units_csv, panel_csv) = files();
    let dataset = DatasetBlob { units_csv, panel_csv, units_geojson: None }.parse().unwrap();
    let config = Config::default();
    let spec = SweepSpec { samples, seed: 7, ..SweepSpec::default() };
    SweepRunner::new(&dataset, &config, &spec).unwrap().run_range(range)
}

/// A submission with absurd sizes is refused, and the largest allowed one
/// with a job size near u64::MAX leases without overflowing a sample range.
#[tokio::test]
async fn huge_sample_counts_and_job_sizes_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let refused = coordinator.submit(request(u64::MAX, 1 << 63)).await.expect_err("u64::MAX samples is refused");
    assert!(refused.to_string().contains("samples"), "{refused}");
    let status = coordinator.submit(request(1_000_000_000_000, u64::MAX)).await.expect("submit is accepted");
    assert_eq!(status.jobs, 1);
    let worker = WorkerId::parse("wk-robust").unwrap();
    let jobs = coordinator.lease(&worker, 2);
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].sample_start, jobs[0].sample_end), (0, 1_000_000_000_000));
}

/// Invariant 5: a result whose counts would overflow when added up (a
/// wire value of 2^64 − 1 successful samples plus failures) is refused,
/// neither panicking in the handler nor wrapping to the job's size.
#[tokio::test]
async fn a_result_whose_counts_overflow_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    coordinator.submit(request(20, 10)).await.unwrap();
    let jobs = coordinator.lease(&WorkerId::parse("wk-robust").unwrap(), 1);
    let mut forged = honest(20, 0..10);
    forged.failures.clear();
    forged.samples_ok = u64::MAX;
    // u64::MAX + 11 wraps to 10, the job's sample count.
    forged.failures.insert("x".into(), FailureKind { count: 11, samples: vec![], example: String::new() });
    let result = coordinator.complete(&lease_ref(&jobs[0]), forged).await;
    assert!(result.is_err(), "a result that does not fit its job is refused: {result:?}");
}

/// Invariant 5: a result's counts must add up to its sample count; an
/// all-zero result that claims ten successful samples is refused.
#[tokio::test]
async fn a_result_whose_counts_do_not_add_up_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    coordinator.submit(request(20, 10)).await.unwrap();
    let jobs = coordinator.lease(&WorkerId::parse("wk-robust").unwrap(), 1);
    let honest0 = honest(20, 0..10);
    let mut forged = Aggregate::empty(honest0.shape);
    forged.samples_ok = 10;
    let result = coordinator.complete(&lease_ref(&jobs[0]), forged).await;
    assert!(result.is_err(), "counts that do not add up to samples_ok are refused: {result:?}");
}

/// Results whose counts would overflow when merged are refused before the
/// committer sees them, so the single writer keeps storing other results.
#[tokio::test]
async fn overflowing_results_do_not_stop_the_committer() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    coordinator.submit(request(30, 10)).await.unwrap();
    let jobs = coordinator.lease(&WorkerId::parse("wk-robust").unwrap(), 3);
    assert_eq!(jobs.len(), 3);
    let mut huge = honest(30, 0..10);
    huge.zone_counts.row_mut(0)[0] = u64::MAX;
    let mut one = honest(30, 10..20);
    one.zone_counts.row_mut(0)[0] += 1;
    let _ = coordinator.complete(&lease_ref(&jobs[0]), huge).await;
    let _ = coordinator.complete(&lease_ref(&jobs[1]), one).await;
    let good = coordinator.complete(&lease_ref(&jobs[2]), honest(30, 20..30)).await;
    assert!(matches!(good, Ok(true)), "an honest result is still stored: {good:?}");
}

/// A wire shape with extreme years is refused without overflowing.
#[test]
fn a_shape_with_extreme_years_is_refused_without_panicking() {
    let mut wire = aggregate_to_pb(&honest(10, 0..1));
    let shape = wire.shape.as_mut().unwrap();
    shape.base_year = i32::MIN;
    shape.horizon = i32::MAX;
    assert!(aggregate_from_pb(&wire).is_err());
}

/// A watch task ends when its client goes away, even on a sweep nobody
/// works on (no status change would tell it).
#[tokio::test]
async fn watch_tasks_end_when_their_client_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let status = coordinator.submit(request(20, 10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    for _ in 0..20 {
        // The client reads the first status, then goes away (Ctrl-C).
        let mut receiver = coordinator.watch(&status.sweep_id).unwrap();
        assert!(receiver.recv().await.is_some());
        drop(receiver);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(metrics.num_alive_tasks(), before, "watch tasks of departed clients have ended");
}

/// The baseline for the shutdown test below: an idle client connection and
/// no watch; the server stops promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_shutdown_without_a_watch_is_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let status = coordinator.submit(request(20, 10)).await.unwrap();
    let (mut client, stop, server) = serve(coordinator).await;
    client.get(pb::SweepRef { sweep_id: status.sweep_id.clone() }).await.unwrap();
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(ended.is_ok(), "the server stops within 5 s of the shutdown signal");
    drop(client);
}

/// Graceful shutdown waits for open streams: a watch of a running sweep
/// must end when the server shuts down, or SIGTERM would never stop a
/// coordinator that a `zonesweep watch` follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_up_by_an_open_watch() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(&dir).await;
    let status = coordinator.submit(request(20, 10)).await.unwrap();
    let (mut client, stop, server) = serve(coordinator).await;
    let mut stream = client.watch(pb::SweepRef { sweep_id: status.sweep_id.clone() }).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().is_some());
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(ended.is_ok(), "the server stops within 5 s of the shutdown signal");
    drop(stream);
}

/// A submission whose client goes away while the sweep is being stored is
/// still registered in memory (listed, leased), not only in the database.
#[test]
fn a_submission_dropped_after_it_is_stored_is_known_to_the_coordinator() {
    use std::future::Future;
    use std::task::Poll;
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listed = runtime.block_on(async {
        let coordinator = start(&dir).await;
        let mut submit = Box::pin(coordinator.submit(request(20, 10)));
        let first = std::future::poll_fn(|cx| Poll::Ready(submit.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "the submission waits for its durable write");
        drop(submit); // what tonic does when the client goes away
        tokio::time::sleep(Duration::from_millis(1000)).await;
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
/// and changes nothing; an unknown sweep id is NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_unknown_sweeps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into());
    config.max_message_bytes = 64 * 1024;
    let coordinator = Coordinator::start(config).await.unwrap();
    let (client, stop, server) = serve(coordinator).await;
    let mut client = client.max_encoding_message_size(usize::MAX);
    // A 200-unit dataset is far above 64 KiB.
    let (units_csv, panel_csv) = demo::generate(200, 1).unwrap().to_csv();
    assert!(panel_csv.len() > 64 * 1024);
    let big = pb::SubmitRequest { units_csv, panel_csv, ..request(10, 10) };
    let refused = client.submit(big).await.unwrap_err();
    assert!(matches!(refused.code(), tonic::Code::OutOfRange | tonic::Code::ResourceExhausted), "{refused:?}");
    let listed = client.list(pb::ListRequest {}).await.unwrap().into_inner();
    assert!(listed.sweeps.is_empty(), "nothing was stored");
    let unknown = client.get(pb::SweepRef { sweep_id: "sw-nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let malformed = client.get(pb::SweepRef { sweep_id: "../etc".into() }).await.unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument);
    stop.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}
