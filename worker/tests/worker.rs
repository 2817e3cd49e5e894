//! The worker against a real coordinator in this process: it registers,
//! leases, fetches and parses the sweep's blobs, runs jobs on its pool and
//! delivers results that merge into exactly the one-machine aggregate; it
//! drains on shutdown, stops on a refused token, and waits out an
//! unreachable coordinator. The kill -9 and restart cases are in the
//! workspace's `tests/cluster.rs`.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tonic::{Request, Status};
use zonesweep_coordinator::server::serve_coordinator;
use zonesweep_coordinator::submission::Submission;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig, CoordinatorError};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::pb;
use zonesweep_proto::pb::workers_server::{Workers, WorkersServer};
use zonesweep_proto::status::{SweepState, SweepStatus};
use zonesweep_shared::CHAIN_REVISION;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::SweepRunner;
use zonesweep_worker::{WorkerConfig, WorkerError, run};

const TOKEN: &str = "worker-test-token";
/// The longest any wait in these tests lasts.
const DEADLINE: Duration = Duration::from_secs(60);

/// A coordinator served on a loopback port of this process.
struct Served {
    coordinator: Coordinator,
    url: String,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), CoordinatorError>>,
    _dir: tempfile::TempDir,
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into());
    config.heartbeat_interval = Duration::from_millis(100);
    config.lease_timeout = Duration::from_secs(5);
    let coordinator = Coordinator::start(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_coordinator(coordinator.clone(), listener, async {
        let _ = stopped.await;
    }));
    Served { coordinator, url, stop, server, _dir: dir }
}

impl Served {
    async fn submit(&self, samples: u64, job_size: u64) -> SweepId {
        let (units_csv, panel_csv) = demo::generate(6, 3).unwrap().to_csv();
        let submission = Submission {
            units_csv,
            panel_csv,
            samples: Some(samples),
            seed: Some(5),
            job_size: Some(job_size),
            ..Submission::default()
        };
        self.coordinator.submit(submission).await.unwrap().id
    }

    fn status(&self, sweep: &SweepId) -> SweepStatus {
        self.coordinator.status(sweep).unwrap()
    }

    /// Poll the sweep's status every 20 ms until `done` holds.
    async fn wait_for(&self, sweep: &SweepId, what: &str, done: impl Fn(&SweepStatus) -> bool) -> SweepStatus {
        let started = Instant::now();
        loop {
            let status = self.status(sweep);
            if done(&status) {
                return status;
            }
            assert!(started.elapsed() < DEADLINE, "{what}: not within {DEADLINE:?}: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the coordinator stops")
            .unwrap()
            .unwrap();
    }
}

/// The aggregate of samples `0..samples` of the test sweep, run here.
fn one_machine(samples: u64) -> Aggregate {
    let dataset = demo::generate(6, 3).unwrap();
    let spec = SweepSpec { samples, seed: 5, ..SweepSpec::default() };
    SweepRunner::new(&dataset, &Config::default(), &spec).unwrap().run_range(0..samples)
}

fn worker(url: &str, threads: usize) -> WorkerConfig {
    WorkerConfig::new(url, TOKEN, threads, "test-host")
}

/// Run `future` to its end within the deadline.
async fn finish<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future).await.unwrap_or_else(|_| panic!("{what} did not end within {DEADLINE:?}"))
}

/// Invariant 1 through the worker: every job leased, fetched, run on the
/// pool and delivered; the merged sweep is the one-machine aggregate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_runs_a_whole_sweep_to_the_one_machine_aggregate() {
    let served = serve().await;
    let sweep = served.submit(24, 5).await;
    let (stop_worker, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(run(worker(&served.url, 2), async {
        let _ = stopped.await;
    }));
    let status = served.wait_for(&sweep, "the sweep is done", |s| s.state.is_final()).await;
    assert_eq!((status.state, status.samples_done, status.jobs_done), (SweepState::Done, 24, 5), "{status:?}");
    assert_eq!(served.coordinator.query(&sweep).await.unwrap().aggregate, one_machine(24));
    stop_worker.send(()).unwrap();
    let result = finish("the worker", running).await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    served.stop().await;
}

/// On shutdown the worker stops leasing but finishes and delivers the jobs
/// in hand: afterwards no job is leased and every merged job is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_delivers_the_jobs_in_hand_when_it_shuts_down() {
    let served = serve().await;
    let sweep = served.submit(4000, 10).await;
    let (stop_worker, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(run(worker(&served.url, 2), async {
        let _ = stopped.await;
    }));
    served.wait_for(&sweep, "the worker holds jobs", |s| s.jobs_leased > 0).await;
    stop_worker.send(()).unwrap();
    let result = finish("the draining worker", running).await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    let status = served.status(&sweep);
    assert_eq!(status.jobs_leased, 0, "every job in hand was delivered: {status:?}");
    assert!(status.jobs_done >= 1 && status.jobs_done < status.jobs, "{status:?}");
    assert_eq!(status.samples_done, u64::from(status.jobs_done) * 10, "only whole jobs are merged: {status:?}");
    served.stop().await;
}

/// A refused token ends the worker with an error saying so; nothing is leased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_ends_the_worker() {
    let served = serve().await;
    let sweep = served.submit(20, 10).await;
    let config = WorkerConfig { token: "wrong-token".into(), ..worker(&served.url, 1) };
    let result = finish("the refused worker", run(config, std::future::pending::<()>())).await;
    match result {
        Err(WorkerError::Unauthenticated { code, message }) => {
            assert_eq!(code, tonic::Code::Unauthenticated);
            assert_eq!(message, "wrong bearer token");
        }
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
    assert_eq!(served.status(&sweep).jobs_leased, 0);
    served.stop().await;
}

/// A loopback URL where nothing listens: bind a port, then let it go.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// An unreachable coordinator is retried, not an error: the worker keeps
/// trying until it is shut down, then returns Ok promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_coordinator_is_waited_for_until_shutdown() {
    let started = Instant::now();
    let shutdown = tokio::time::sleep(Duration::from_millis(1500));
    let result = tokio::time::timeout(Duration::from_secs(20), run(worker(&closed_port_url(), 2), shutdown)).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    assert!(elapsed >= Duration::from_millis(1500), "returned before shutdown, after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "shutdown took {elapsed:?}");
}

#[tokio::test]
async fn a_bad_configuration_is_an_error_at_once() {
    let never = std::future::pending::<()>;
    let zero_threads = run(worker(&closed_port_url(), 0), never()).await;
    assert!(
        matches!(&zero_threads, Err(WorkerError::Config(m)) if m == "threads must be at least 1"),
        "{zero_threads:?}"
    );
    let bad_url = run(worker("127.0.0.1 7070", 1), never()).await;
    assert!(matches!(bad_url, Err(WorkerError::CoordinatorUrl { .. })), "{bad_url:?}");
    let huge = WorkerConfig { max_message_mib: 5000, ..worker(&closed_port_url(), 1) };
    let limit = run(huge, never()).await.unwrap_err();
    assert_eq!(limit.to_string(), "invalid worker configuration: the message limit must be 1–4096 MiB, not 5000");
}

/// The embedded mode spawns the worker on the runtime, so `run` must be Send.
#[test]
fn the_worker_future_can_be_spawned() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let future = run(worker(&closed_port_url(), 1), std::future::pending::<()>());
    assert_send(&future);
    let shown = format!("{:?}", worker("http://h:1", 1));
    assert!(!shown.contains(TOKEN) && shown.contains("<redacted>"), "{shown}");
}

/// The real coordinator's worker service, but the answers of the first
/// calls that lease jobs (`lose_leases` Lease calls, then `lose_deliveries`
/// Complete or CompleteMany calls or CompleteStream requests) are lost on
/// the way back: the coordinator granted the leases, the worker sees
/// UNAVAILABLE (a stream ends with it). It counts
/// the jobs every answer leased, and those of the answers it lost.
#[derive(Default)]
struct LosesAnswers {
    coordinator: Option<Coordinator>,
    lose_leases: AtomicU32,
    lose_deliveries: AtomicU32,
    granted: AtomicUsize,
    lost: AtomicUsize,
    /// The model chain revision its registration answers state, when set
    /// (as an older coordinator, which states none, or another release).
    chain: Option<u32>,
}

impl LosesAnswers {
    fn coordinator(&self) -> &Coordinator {
        self.coordinator.as_ref().expect("set before serving")
    }

    /// Lose `answer` if it leased jobs and answers of its kind are still to be lost.
    fn pass<T>(
        &self,
        answer: tonic::Response<T>,
        lose: &AtomicU32,
        jobs: impl Fn(&T) -> usize,
    ) -> Result<tonic::Response<T>, Status> {
        let leased = jobs(answer.get_ref());
        self.granted.fetch_add(leased, Ordering::SeqCst);
        if leased > 0 && lose.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            self.lost.fetch_add(leased, Ordering::SeqCst);
            return Err(Status::unavailable("the answer was lost on the way back"));
        }
        Ok(answer)
    }
}

/// The server's handle on a shared [`LosesAnswers`] (a stream's task holds one too).
#[derive(Clone)]
struct Lossy(Arc<LosesAnswers>);

impl std::ops::Deref for Lossy {
    type Target = LosesAnswers;
    fn deref(&self) -> &LosesAnswers {
        &self.0
    }
}

#[tonic::async_trait]
impl Workers for Lossy {
    async fn register(&self, r: Request<pb::RegisterRequest>) -> Result<tonic::Response<pb::RegisterResponse>, Status> {
        let mut answer = Workers::register(self.coordinator(), r).await?;
        if let Some(chain) = self.chain {
            answer.get_mut().chain = chain;
        }
        Ok(answer)
    }
    async fn lease(&self, r: Request<pb::LeaseRequest>) -> Result<tonic::Response<pb::LeaseResponse>, Status> {
        self.pass(Workers::lease(self.coordinator(), r).await?, &self.lose_leases, |a| a.jobs.len())
    }
    async fn heartbeat(
        &self,
        r: Request<pb::HeartbeatRequest>,
    ) -> Result<tonic::Response<pb::HeartbeatResponse>, Status> {
        Workers::heartbeat(self.coordinator(), r).await
    }
    async fn complete(&self, r: Request<pb::CompleteRequest>) -> Result<tonic::Response<pb::CompleteResponse>, Status> {
        self.pass(Workers::complete(self.coordinator(), r).await?, &self.lose_deliveries, |a| a.jobs.len())
    }
    async fn complete_many(
        &self,
        r: Request<pb::CompleteManyRequest>,
    ) -> Result<tonic::Response<pb::CompleteManyResponse>, Status> {
        self.pass(Workers::complete_many(self.coordinator(), r).await?, &self.lose_deliveries, |a| a.jobs.len())
    }
    type CompleteStreamStream = tokio_stream::wrappers::ReceiverStream<Result<pb::CompleteManyResponse, Status>>;
    async fn complete_stream(
        &self,
        r: Request<tonic::Streaming<pb::CompleteManyRequest>>,
    ) -> Result<tonic::Response<Self::CompleteStreamStream>, Status> {
        let mut requests = r.into_inner();
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let this = self.clone();
        tokio::spawn(async move {
            while let Ok(Some(request)) = requests.message().await {
                let answer = Workers::complete_many(this.coordinator(), Request::new(request))
                    .await
                    .and_then(|answer| this.pass(answer, &this.lose_deliveries, |a| a.jobs.len()))
                    .map(tonic::Response::into_inner);
                let end = answer.is_err();
                if sender.send(answer).await.is_err() || end {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(tokio_stream::wrappers::ReceiverStream::new(receiver)))
    }
    async fn fail(&self, r: Request<pb::FailRequest>) -> Result<tonic::Response<pb::FailResponse>, Status> {
        Workers::fail(self.coordinator(), r).await
    }
    async fn fetch_blob(
        &self,
        r: Request<pb::FetchBlobRequest>,
    ) -> Result<tonic::Response<pb::FetchBlobResponse>, Status> {
        Workers::fetch_blob(self.coordinator(), r).await
    }
}

/// Jobs leased in answers that never reach the worker (a Lease's, then
/// those of deliveries that lease more, resent under the same call number)
/// go back to pending at the first heartbeat after those calls ended, which
/// does not name them: the sweep ends although no lease ever times out (the
/// lease timeout here is ten minutes), its aggregate is the one-machine
/// one, and no job the worker held was taken back: every job was leased
/// once, but for those of the lost answers, once more each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_leased_in_lost_answers_are_taken_back_at_the_next_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into());
    config.heartbeat_interval = Duration::from_millis(100);
    config.lease_timeout = Duration::from_secs(600);
    let coordinator = Coordinator::start(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lossy = Arc::new(LosesAnswers {
        coordinator: Some(coordinator.clone()),
        lose_leases: 1.into(),
        lose_deliveries: 3.into(),
        ..LosesAnswers::default()
    });
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(WorkersServer::new(Lossy(lossy.clone())))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let (units_csv, panel_csv) = demo::generate(6, 3).unwrap().to_csv();
    let submission = Submission {
        units_csv,
        panel_csv,
        samples: Some(24),
        seed: Some(5),
        job_size: Some(2),
        ..Submission::default()
    };
    let sweep = coordinator.submit(submission).await.unwrap().id;

    let (stop_worker, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(run(worker(&url, 2), async {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    let status = loop {
        let status = coordinator.status(&sweep).unwrap();
        if status.state.is_final() {
            break status;
        }
        assert!(started.elapsed() < DEADLINE, "the sweep did not end within {DEADLINE:?}: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((status.state, status.samples_done, status.jobs_done), (SweepState::Done, 24, 12), "{status:?}");
    assert_eq!(coordinator.query(&sweep).await.unwrap().aggregate, one_machine(24));
    stop_worker.send(()).unwrap();
    let result = finish("the worker", running).await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    server.abort();
    let (granted, lost) = (lossy.granted.load(Ordering::SeqCst), lossy.lost.load(Ordering::SeqCst));
    assert!(lossy.lose_leases.load(Ordering::SeqCst) == 0 && lossy.lose_deliveries.load(Ordering::SeqCst) == 0);
    assert!(lost >= 4, "{lost} jobs in lost answers");
    assert_eq!(granted, 12 + lost, "leases granted: each job once, and each of a lost answer once more");
}

/// A worker whose coordinator states another model chain revision, or none
/// (a coordinator from before revisions, which would not refuse the worker
/// itself), stops with the reason instead of running its jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stops_when_its_coordinator_computes_with_another_chain() {
    for (chain, says) in
        [(0, "states no model chain revision"), (CHAIN_REVISION + 1, "computes samples with model chain revision")]
    {
        let dir = tempfile::tempdir().unwrap();
        let coordinator =
            Coordinator::start(CoordinatorConfig::new(dir.path().join("db.redb"), TOKEN.into())).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let other = Arc::new(LosesAnswers {
            coordinator: Some(coordinator.clone()),
            chain: Some(chain),
            ..LosesAnswers::default()
        });
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(WorkersServer::new(Lossy(other.clone())))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let (units_csv, panel_csv) = demo::generate(6, 3).unwrap().to_csv();
        let submission = Submission {
            units_csv,
            panel_csv,
            samples: Some(8),
            seed: Some(5),
            job_size: Some(2),
            ..Submission::default()
        };
        let sweep = coordinator.submit(submission).await.unwrap().id;
        let running = tokio::spawn(run(worker(&url, 1), std::future::pending::<()>()));
        let result = finish("the worker", running).await.unwrap();
        match result {
            Err(WorkerError::RegisterRefused { code: tonic::Code::FailedPrecondition, message }) => {
                assert!(message.contains(says), "{message}")
            }
            other => panic!("expected the worker to stop, refusing the coordinator's chain: {other:?}"),
        }
        assert_eq!(coordinator.status(&sweep).unwrap().samples_done, 0, "it ran none of the sweep's jobs");
        server.abort();
    }
}
