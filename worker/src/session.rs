//! What every task of a running worker shares: the client, the registration,
//! the held leases, the sweep cache and the sample pool; registration, the
//! heartbeat loop and calls retried through outages.

use std::future::Future;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tonic::{Code, Response, Status};
use zonesweep_proto::ids::WorkerId;
use zonesweep_proto::pb;

use crate::cache::SweepCache;
use crate::error::WorkerError;
use crate::held::HeldLeases;
use crate::rpc::{Backoff, CONTROL_DEADLINE, Client, DATA_DEADLINE, Disposition, Log, Outage, bounded, classify};

/// Used when the coordinator leaves an interval at 0.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);
const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// Heartbeats faster than this would only load the coordinator.
const MIN_HEARTBEAT: Duration = Duration::from_millis(50);

/// Retries of one call (completion, failure, blob fetch) back off from 100 ms to 5 s.
pub(crate) const CALL_BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub(crate) const CALL_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// While draining, a worker stops retrying a result once the coordinator has
/// been unreachable for this long or the lease time, whichever is longer:
/// by then the lease has expired and the job will be run again elsewhere,
/// so waiting longer only delays the shutdown.
const MIN_DRAIN_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub(crate) struct Registration {
    pub worker_id: WorkerId,
    pub heartbeat_interval: Duration,
    pub lease_duration: Duration,
}

/// Why a retried call ended without an answer to use.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The caller's stop condition held (lease abandoned, or draining past
    /// patience) while the coordinator was unreachable.
    Stopped,
    /// The coordinator answered with a status no retry changes.
    Refused(Status),
    /// The token is refused: the worker must stop.
    Fatal(WorkerError),
}

pub(crate) struct Worker {
    client: Client,
    pub log: Log,
    pub outage: Outage,
    pub pool: rayon::ThreadPool,
    pub cache: SweepCache,
    pub held: HeldLeases,
    pub threads: usize,
    /// Which chain runs the samples.
    pub chain: zonesweep_shared::sweep::runner::Mode,
    /// How long the last job's samples took, in ms (`u64::MAX` before
    /// the first): the lease loop holds a spare job per thread only while
    /// jobs are short.
    pub last_job_millis: std::sync::atomic::AtomicU64,
    hostname: String,
    registration: RwLock<Option<Registration>>,
    /// Serializes re-registration, so the lease loop and the heartbeat loop
    /// seeing the same unknown worker id register once, not twice.
    register_lock: tokio::sync::Mutex<()>,
    draining: AtomicBool,
    /// Results waiting to be sent together.
    pub deliveries: crate::deliver::Deliveries,
}

impl Worker {
    pub fn new(
        client: Client,
        log: Log,
        pool: rayon::ThreadPool,
        threads: usize,
        hostname: String,
        chain: zonesweep_shared::sweep::runner::Mode,
    ) -> Worker {
        Worker {
            client,
            log,
            outage: Outage::default(),
            pool,
            cache: SweepCache::default(),
            held: HeldLeases::default(),
            threads,
            chain,
            last_job_millis: std::sync::atomic::AtomicU64::new(u64::MAX),
            hostname,
            registration: RwLock::new(None),
            register_lock: tokio::sync::Mutex::new(()),
            draining: AtomicBool::new(false),
            deliveries: crate::deliver::Deliveries::default(),
        }
    }

    pub fn client(&self) -> Client {
        self.client.clone()
    }

    fn registration(&self) -> Option<Registration> {
        self.registration.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The id this worker is registered under (empty before registration).
    pub fn worker_id(&self) -> String {
        self.registration().map(|r| r.worker_id.as_str().to_owned()).unwrap_or_default()
    }

    pub fn heartbeat_interval(&self) -> Duration {
        self.registration().map_or(DEFAULT_HEARTBEAT, |r| r.heartbeat_interval)
    }

    /// Whether the worker is draining: it leases nothing more.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether a call retried through an outage should stop trying.
    pub fn past_drain_patience(&self) -> bool {
        let lease = self.registration().map_or(DEFAULT_LEASE, |r| r.lease_duration);
        self.draining.load(Ordering::SeqCst) && self.outage.duration() > lease.max(MIN_DRAIN_PATIENCE)
    }

    /// Register, retrying while the coordinator is unreachable.
    pub async fn register(&self) -> Result<(), WorkerError> {
        let request = pb::RegisterRequest {
            hostname: self.hostname.clone(),
            threads: u32::try_from(self.threads).unwrap_or(u32::MAX),
            chain: zonesweep_shared::CHAIN_REVISION,
        };
        let mut backoff = Backoff::new(Duration::from_millis(200), CALL_BACKOFF_MAX);
        let response = loop {
            match bounded(CONTROL_DEADLINE, self.client().register(request.clone())).await {
                Ok(response) => break response.into_inner(),
                Err(status) => match classify(&status) {
                    Disposition::Retry => {
                        self.outage.failed(self.log, "register", &status);
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Disposition::Fatal => return Err(WorkerError::from_auth_status(&status)),
                    Disposition::Refused => {
                        return Err(WorkerError::RegisterRefused {
                            code: status.code(),
                            message: status.message().to_owned(),
                        });
                    }
                },
            }
        };
        self.outage.recovered(self.log);
        // The coordinator's revision must be this worker's too: an older
        // coordinator, which does not check the worker's, sends none.
        let ours = zonesweep_shared::CHAIN_REVISION;
        if response.chain != ours {
            let theirs = match response.chain {
                0 => "states no model chain revision (it is a zonesweep from before revisions were checked)".to_owned(),
                chain => format!("computes samples with model chain revision {chain}"),
            };
            return Err(WorkerError::RegisterRefused {
                code: tonic::Code::FailedPrecondition,
                message: format!(
                    "the coordinator {theirs}, and this worker (zonesweep {}) with revision {ours}: samples of the two \
                     may differ in their last bits, and one sweep must not mix them; run a worker of the coordinator's \
                     release",
                    env!("CARGO_PKG_VERSION")
                ),
            });
        }
        let worker_id = WorkerId::parse(&response.worker_id)
            .map_err(|e| WorkerError::Protocol(format!("the coordinator registered this worker as {e}")))?;
        let millis = |value: u32, default: Duration| {
            if value == 0 { default } else { Duration::from_millis(u64::from(value)) }
        };
        let registration = Registration {
            heartbeat_interval: millis(response.heartbeat_millis, DEFAULT_HEARTBEAT).max(MIN_HEARTBEAT),
            lease_duration: millis(response.lease_millis, DEFAULT_LEASE),
            worker_id,
        };
        self.log.notice(format_args!(
            "connected: registered as {} ({} threads; heartbeat every {} ms, leases last {} ms)",
            registration.worker_id,
            self.threads,
            registration.heartbeat_interval.as_millis(),
            registration.lease_duration.as_millis()
        ));
        *self.registration.write().unwrap_or_else(|e| e.into_inner()) = Some(registration);
        Ok(())
    }

    /// Register again after the coordinator answered NOT_FOUND for
    /// `stale_id` (it restarted without remembering this worker), unless
    /// another task already has.
    pub async fn reregister(&self, stale_id: &str) -> Result<(), WorkerError> {
        let _guard = self.register_lock.lock().await;
        if self.worker_id() != stale_id {
            return Ok(());
        }
        self.log.info(format_args!("the coordinator does not know worker {stale_id}; registering again"));
        self.register().await
    }

    /// One call, retried with backoff (100 ms doubling to 5 s) while the
    /// coordinator is unreachable, until it answers or `stop()` holds.
    pub async fn call_with_retry<T, F, Fut>(
        &self,
        call: &'static str,
        stop: &(dyn Fn() -> bool + Sync),
        mut attempt: F,
    ) -> Result<T, CallError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut backoff = Backoff::new(CALL_BACKOFF_FIRST, CALL_BACKOFF_MAX);
        loop {
            match bounded(DATA_DEADLINE, attempt(self.client())).await {
                Ok(response) => {
                    self.outage.recovered(self.log);
                    return Ok(response.into_inner());
                }
                Err(status) => match classify(&status) {
                    Disposition::Retry => {
                        self.outage.failed(self.log, call, &status);
                        if stop() {
                            return Err(CallError::Stopped);
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                        if stop() {
                            return Err(CallError::Stopped);
                        }
                    }
                    Disposition::Fatal => return Err(CallError::Fatal(WorkerError::from_auth_status(&status))),
                    Disposition::Refused => return Err(CallError::Refused(status)),
                },
            }
        }
    }

    /// A blob's bytes by content hash.
    pub async fn fetch_blob(&self, hash: String, stop: &(dyn Fn() -> bool + Sync)) -> Result<Vec<u8>, CallError> {
        let request = pb::FetchBlobRequest { hash };
        let response = self
            .call_with_retry("fetch blob", stop, |mut client| {
                let request = request.clone();
                async move { client.fetch_blob(request).await }
            })
            .await?;
        Ok(response.content)
    }
}

/// Every heartbeat interval, report every held lease and the calls that
/// have ended (so the coordinator takes back at once the leases of answers
/// that never arrived); raise the abandon flag
/// of each lease the coordinator names. Runs until aborted. An unreachable
/// coordinator is logged (once per outage) and tried again next interval.
pub(crate) async fn heartbeat_loop(worker: std::sync::Arc<Worker>) {
    let mut interval = tokio::time::interval(worker.heartbeat_interval());
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the registration just told the
    // coordinator this worker is alive.
    interval.tick().await;
    loop {
        interval.tick().await;
        let worker_id = worker.worker_id();
        let held = worker.held.snapshot();
        let request =
            pb::HeartbeatRequest { worker_id: worker_id.clone(), leases: held.leases, calls_ended: held.calls_ended };
        match bounded(CONTROL_DEADLINE, worker.client().heartbeat(request)).await {
            Ok(response) => {
                worker.outage.recovered(worker.log);
                for lease_ref in response.into_inner().abandon {
                    if let Some(key) = worker.held.abandon(&lease_ref) {
                        worker.log.info(format_args!("abandoning {key}: the coordinator gave it up"));
                    }
                }
            }
            Err(status) => match classify(&status) {
                Disposition::Retry => worker.outage.failed(worker.log, "heartbeat", &status),
                Disposition::Refused if status.code() == Code::NotFound => {
                    if let Err(error) = worker.reregister(&worker_id).await {
                        worker.log.info(format_args!("registering again failed: {error}"));
                    }
                }
                // A wrong token also stops the lease loop, which ends the worker.
                Disposition::Fatal | Disposition::Refused => {
                    worker.log.info(format_args!("heartbeat refused ({:?}): {}", status.code(), status.message()))
                }
            },
        }
    }
}
