//! Results on their way to the coordinator, several to a call.
//!
//! A job hands its result to [`deliver`] and waits for that result's own
//! answer. When no call is out, the result leaves at once in a call of its
//! own; while one is out, the results that end meanwhile wait and then
//! leave together in the next CompleteMany call (at most
//! [`MAX_RESULTS_PER_CALL`] results, and about [`MAX_BYTES_PER_CALL`] bytes
//! or half the worker's message limit, whichever is less).
//! So a worker whose jobs are long sends one result per call, as before,
//! and one whose jobs end faster than a round trip saves a call per result
//! without holding any result back.
//!
//! The calls go over one CompleteStream, opened by the first and kept
//! open between calls (the stream saves each call's HTTP/2 headers and
//! dispatch on both sides). A stream that fails is dropped and the call
//! retried on a new one, at once if the stream had been left open since an
//! earlier call (the coordinator or a proxy may have closed it meanwhile),
//! otherwise after the usual backoff. A call larger than a batch may be, a
//! coordinator without CompleteStream (UNIMPLEMENTED), and a worker told so
//! once, use CompleteMany calls of their own.
//!
//! Each result keeps its own answer: taken (merged now or before), to be
//! sent again (the coordinator could not store it), or refused. A call the
//! coordinator does not answer is retried as every call is, while any of
//! its results is still wanted. A coordinator that predates CompleteMany
//! gets each result by Complete instead, from then on; so does a call the
//! coordinator finds too large (OUT_OF_RANGE). A call that leases jobs
//! leases only as many as it had results taken.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tonic::{Code, Response, Status};
use zonesweep_proto::pb;

use crate::held::AbandonFlag;
use crate::rpc::{Client, Disposition, classify};
use crate::session::{CallError, Worker};

/// Results one call carries at most.
pub(crate) const MAX_RESULTS_PER_CALL: usize = 64;
/// A call takes more results only while their encoded size stays below
/// this; a larger result still goes, alone.
pub(crate) const MAX_BYTES_PER_CALL: usize = 16 << 20;

/// A result's answer, with the jobs leased in its call that fall to its
/// job's thread.
pub(crate) type Delivered = Result<(pb::ResultOutcome, Vec<pb::Job>), CallError>;

/// Results waiting for a call, and whether one is out.
#[derive(Debug)]
pub(crate) struct Deliveries {
    queue: std::sync::Mutex<Queue>,
    /// A call takes more results only while their size stays below this.
    max_bytes: usize,
    /// The coordinator answered CompleteMany with UNIMPLEMENTED.
    complete_only: std::sync::atomic::AtomicBool,
    /// The coordinator answered CompleteStream with UNIMPLEMENTED.
    unary_only: std::sync::atomic::AtomicBool,
    /// The CompleteStream kept open between calls; taken by the call that
    /// uses it (one at a time: `Queue::sending`) and put back once it has
    /// answered, so a call that fails or is given up drops it.
    stream: std::sync::Mutex<Option<ResultStream>>,
}

/// An open CompleteStream: requests go in, their answers come out in order.
#[derive(Debug)]
struct ResultStream {
    requests: mpsc::Sender<pb::CompleteManyRequest>,
    answers: tonic::Streaming<pb::CompleteManyResponse>,
}

impl ResultStream {
    async fn open(client: &mut Client) -> Result<ResultStream, Status> {
        // One request at a time is ever sent: the answer is awaited first.
        let (requests, outbox) = mpsc::channel(1);
        let answers = client.complete_stream(tokio_stream::wrappers::ReceiverStream::new(outbox)).await?.into_inner();
        Ok(ResultStream { requests, answers })
    }

    /// One request and its answer; the stream again if it stays usable.
    async fn exchange(
        mut self,
        request: pb::CompleteManyRequest,
    ) -> Result<(pb::CompleteManyResponse, ResultStream), Status> {
        self.requests
            .send(request)
            .await
            .map_err(|_| Status::unavailable("the result stream to the coordinator is closed"))?;
        match self.answers.message().await? {
            Some(answer) => Ok((answer, self)),
            None => Err(Status::unavailable("the coordinator ended the result stream without an answer")),
        }
    }
}

impl Default for Deliveries {
    fn default() -> Deliveries {
        Deliveries::new(MAX_BYTES_PER_CALL)
    }
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Waiting>,
    sending: bool,
}

#[derive(Debug)]
struct Waiting {
    result: pb::JobResult,
    abandoned: AbandonFlag,
    reply: oneshot::Sender<Delivered>,
}

impl Waiting {
    /// Nobody wants this result delivered any more.
    fn unwanted(&self) -> bool {
        self.reply.is_closed() || self.abandoned.load(Ordering::SeqCst)
    }
}

impl Deliveries {
    /// Calls of about `max_bytes` at most (a single larger result still goes).
    pub(crate) fn new(max_bytes: usize) -> Deliveries {
        Deliveries {
            queue: std::sync::Mutex::default(),
            max_bytes: max_bytes.min(MAX_BYTES_PER_CALL),
            complete_only: std::sync::atomic::AtomicBool::new(false),
            unary_only: std::sync::atomic::AtomicBool::new(false),
            stream: std::sync::Mutex::new(None),
        }
    }

    /// One CompleteMany request (`request()` builds it, a second time only
    /// to send it again): over the open stream, or a new one, or by a call
    /// of its own (a request above the batch size, or a coordinator without
    /// CompleteStream).
    async fn complete_many(
        &self,
        mut client: Client,
        request: impl Fn() -> pb::CompleteManyRequest,
    ) -> Result<Response<pb::CompleteManyResponse>, Status> {
        let (request, build) = (request(), request);
        if self.unary_only.load(Ordering::Relaxed) || request.encoded_len() > self.max_bytes {
            return client.complete_many(request).await;
        }
        let kept = self.stream.lock().unwrap_or_else(|e| e.into_inner()).take();
        let reused = kept.is_some();
        let stream = match kept {
            Some(stream) => stream,
            None => match ResultStream::open(&mut client).await {
                Ok(stream) => stream,
                Err(status) if status.code() == Code::Unimplemented => {
                    self.unary_only.store(true, Ordering::Relaxed);
                    return client.complete_many(request).await;
                }
                Err(status) => return Err(status),
            },
        };
        let (answer, stream) = match stream.exchange(request).await {
            Ok(exchanged) => exchanged,
            // A stream kept since an earlier call may have been closed
            // meanwhile; a request the coordinator did take is answered
            // the same when sent again.
            Err(status) if reused && classify(&status) == Disposition::Retry => {
                ResultStream::open(&mut client).await?.exchange(build()).await?
            }
            Err(status) => return Err(status),
        };
        *self.stream.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
        Ok(Response::new(answer))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Deliver one job's result and wait for its answer. `abandoned` is the
/// job's flag: once it is raised (or the worker drains past its patience)
/// the result is no longer retried through an outage.
pub(crate) async fn deliver(worker: &Arc<Worker>, result: pb::JobResult, abandoned: &AbandonFlag) -> Delivered {
    let (reply, answer) = oneshot::channel();
    let start_sender = {
        let mut queue = worker.deliveries.lock();
        queue.waiting.push(Waiting { result, abandoned: abandoned.clone(), reply });
        !std::mem::replace(&mut queue.sending, true)
    };
    if start_sender {
        // A task of its own: a job that stops waiting does not stop the
        // other results' delivery.
        tokio::spawn(send_waiting(worker.clone()));
    }
    answer.await.unwrap_or(Err(CallError::Stopped))
}

/// Send the waiting results, call after call, until none waits.
async fn send_waiting(worker: Arc<Worker>) {
    loop {
        let batch = {
            let mut queue = worker.deliveries.lock();
            queue.waiting.retain(|w| !w.reply.is_closed());
            if queue.waiting.is_empty() {
                queue.sending = false;
                return;
            }
            let mut bytes = 0;
            let mut take = 0;
            for w in &queue.waiting {
                bytes += w.result.encoded_len();
                if take == MAX_RESULTS_PER_CALL || (take > 0 && bytes > worker.deliveries.max_bytes) {
                    break;
                }
                take += 1;
            }
            queue.waiting.drain(..take).collect::<Vec<_>>()
        };
        send(&worker, batch).await;
    }
}

/// One request for `batch` (on the results stream, or a `CompleteMany`
/// call), retried through outages while any of its results is wanted, and
/// each result's answer to its job.
async fn send(worker: &Worker, batch: Vec<Waiting>) {
    if worker.deliveries.complete_only.load(Ordering::Relaxed) {
        return send_one_by_one(worker, batch).await;
    }
    let results: Vec<pb::JobResult> = batch.iter().map(|w| w.result.clone()).collect();
    if results.len() > 1 {
        worker.log.info(format_args!("delivering {} results in one request", results.len()));
    }
    let stop = || worker.past_drain_patience() || batch.iter().all(Waiting::unwanted);
    let call = worker.held.call();
    let number = call.number();
    let answer = worker
        .call_with_retry("complete", &stop, |client| {
            // Read per attempt: a re-registration may change the id, and a
            // draining worker leases nothing more.
            let request = || pb::CompleteManyRequest {
                worker_id: worker.worker_id(),
                results: results.clone(),
                lease_capacity: if worker.is_draining() { 0 } else { results.len() as u32 },
                call: number,
            };
            worker.deliveries.complete_many(client, request)
        })
        .await;
    match &answer {
        Ok(response) => call.received(&response.jobs),
        Err(_) => drop(call),
    }
    match answer {
        Ok(response) if response.outcomes.len() == batch.len() => {
            let n = batch.len();
            let mut jobs = response.jobs;
            let answers = response.outcomes.into_iter().enumerate().map(|(i, outcome)| {
                // A job's thread is free again: one leased job each, the
                // rest to the last.
                let mine = if i + 1 == n { std::mem::take(&mut jobs) } else { jobs.pop().into_iter().collect() };
                Ok((outcome, mine))
            });
            reply_all(worker, batch, answers.collect());
        }
        Ok(response) => {
            worker.log.info(format_args!(
                "the coordinator answered {} outcomes for {} results; sending them again",
                response.outcomes.len(),
                batch.len()
            ));
            // Resent, they are taken once: one merged before is answered so.
            let outcome = pb::ResultOutcome {
                code: Code::Unavailable as i32,
                message: "the coordinator's answer did not match the call".into(),
                merged: false,
            };
            let mut jobs = response.jobs;
            let answers = batch.iter().map(|_| Ok((outcome.clone(), std::mem::take(&mut jobs)))).collect();
            reply_all(worker, batch, answers);
        }
        Err(CallError::Refused(status))
            if status.code() == Code::Unimplemented || (status.code() == Code::OutOfRange && batch.len() > 1) =>
        {
            if status.code() == Code::Unimplemented {
                worker.deliveries.complete_only.store(true, Ordering::Relaxed);
            }
            send_one_by_one(worker, batch).await;
        }
        Err(CallError::Refused(status)) => {
            let answers = batch.iter().map(|_| Err(CallError::Refused(status.clone()))).collect();
            reply_all(worker, batch, answers);
        }
        Err(CallError::Stopped) => {
            let answers = batch.iter().map(|_| Err(CallError::Stopped)).collect();
            reply_all(worker, batch, answers);
        }
        Err(CallError::Fatal(error)) => {
            // One job ends the worker with the error; the others stop.
            let mut error = Some(error);
            let answers =
                batch.iter().map(|_| Err(error.take().map_or(CallError::Stopped, CallError::Fatal))).collect();
            reply_all(worker, batch, answers);
        }
    }
}

/// Each result by Complete, one after the other.
async fn send_one_by_one(worker: &Worker, batch: Vec<Waiting>) {
    let mut answers = Vec::with_capacity(batch.len());
    for waiting in &batch {
        answers.push(complete_alone(worker, waiting).await);
    }
    reply_all(worker, batch, answers);
}

/// Give each waiting job its answer. What a job that stopped waiting
/// cannot take (its leased jobs, a fatal error) goes to the next job that
/// still waits, so no leased job and no fatal error is dropped while one
/// does; leased jobs no waiting job is left to take are let go (no longer
/// held, so the coordinator takes them back at the first heartbeat that no
/// longer names them).
fn reply_all(worker: &Worker, batch: Vec<Waiting>, answers: Vec<Delivered>) {
    let mut carried: Vec<pb::Job> = Vec::new();
    let mut fatal = None;
    for (waiting, answer) in batch.into_iter().zip(answers) {
        let answer = match (answer, fatal.take()) {
            (_, Some(error)) => Err(CallError::Fatal(error)),
            (Ok((outcome, mut jobs)), None) => {
                jobs.append(&mut carried);
                Ok((outcome, jobs))
            }
            (Err(error), None) => Err(error),
        };
        match waiting.reply.send(answer) {
            Ok(()) => {}
            Err(Ok((_, jobs))) => carried.extend(jobs),
            Err(Err(CallError::Fatal(error))) => fatal = Some(error),
            Err(Err(_)) => {}
        }
    }
    worker.held.drop_jobs(&carried);
}

/// One result by Complete, its answer in CompleteMany's form.
async fn complete_alone(worker: &Worker, waiting: &Waiting) -> Delivered {
    let stop = || worker.past_drain_patience() || waiting.unwanted();
    let call = worker.held.call();
    let number = call.number();
    let answer = worker
        .call_with_retry("complete", &stop, |mut client| {
            let request = pb::CompleteRequest {
                worker_id: worker.worker_id(),
                lease: waiting.result.lease.clone(),
                aggregate: waiting.result.aggregate.clone(),
                lease_capacity: u32::from(!worker.is_draining()),
                call: number,
            };
            async move { client.complete(request).await }
        })
        .await;
    match &answer {
        Ok(response) => call.received(&response.jobs),
        Err(_) => drop(call),
    }
    match answer {
        Ok(response) => Ok((
            pb::ResultOutcome { code: Code::Ok as i32, message: String::new(), merged: response.merged },
            response.jobs,
        )),
        Err(CallError::Refused(status)) => Ok((outcome_of(&status), Vec::new())),
        Err(error) => Err(error),
    }
}

/// A refusal as a result's outcome.
fn outcome_of(status: &Status) -> pb::ResultOutcome {
    pb::ResultOutcome { code: status.code() as i32, message: status.message().to_owned(), merged: false }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use tokio::net::TcpListener;
    use tonic::{Request, Response};

    use super::*;
    use crate::rpc::{Log, connect};

    /// A coordinator that records the calls it gets and answers every
    /// result taken, slowly, or (`old`) knows nothing of CompleteMany.
    #[derive(Default)]
    struct Recorder {
        old: bool,
        /// Knows CompleteMany but not CompleteStream.
        no_stream: bool,
        /// Ends each CompleteStream after its first answer, as a proxy that
        /// closes idle streams would.
        one_answer_per_stream: bool,
        /// Refuses CompleteMany calls of more than one result as too large.
        small: bool,
        calls: Mutex<Vec<(&'static str, Vec<u32>)>>,
        /// CompleteStream calls opened.
        streams: std::sync::atomic::AtomicUsize,
    }

    impl Recorder {
        /// A CompleteMany request's answer, by a call or over a stream.
        async fn answer(&self, request: pb::CompleteManyRequest) -> Result<pb::CompleteManyResponse, Status> {
            if self.small && request.results.len() > 1 {
                self.calls.lock().unwrap().push(("too large", Vec::new()));
                return Err(Status::out_of_range("the message is larger than the limit"));
            }
            let indices: Vec<u32> =
                request.results.iter().map(|r| r.lease.as_ref().map_or(0, |l| l.job_index)).collect();
            self.calls.lock().unwrap().push(("complete_many", indices.clone()));
            // Slow enough for the results that end meanwhile to queue up.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let outcomes = indices
                .iter()
                .map(|&i| match i {
                    // Job 3's result is refused, the others taken.
                    3 => pb::ResultOutcome { code: Code::InvalidArgument as i32, message: "no".into(), merged: false },
                    _ => pb::ResultOutcome { code: 0, message: String::new(), merged: true },
                })
                .collect();
            let jobs = (0..request.lease_capacity).map(job).collect();
            Ok(pb::CompleteManyResponse { outcomes, jobs })
        }
    }

    /// The server's handle on a shared recorder.
    #[derive(Clone)]
    struct Served(Arc<Recorder>);

    impl std::ops::Deref for Served {
        type Target = Recorder;
        fn deref(&self) -> &Recorder {
            &self.0
        }
    }

    fn job(index: u32) -> pb::Job {
        pb::Job { sweep_id: "sw-t".into(), job_index: 100 + index, ..pb::Job::default() }
    }

    #[tonic::async_trait]
    impl pb::workers_server::Workers for Served {
        async fn register(&self, _: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn lease(&self, _: Request<pb::LeaseRequest>) -> Result<Response<pb::LeaseResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn heartbeat(&self, _: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn complete(
            &self,
            request: Request<pb::CompleteRequest>,
        ) -> Result<Response<pb::CompleteResponse>, Status> {
            let index = request.get_ref().lease.as_ref().map_or(0, |l| l.job_index);
            self.calls.lock().unwrap().push(("complete", vec![index]));
            Ok(Response::new(pb::CompleteResponse { merged: true, jobs: vec![job(index)] }))
        }
        async fn complete_many(
            &self,
            request: Request<pb::CompleteManyRequest>,
        ) -> Result<Response<pb::CompleteManyResponse>, Status> {
            if self.old {
                return Err(Status::unimplemented("unknown method CompleteMany"));
            }
            Ok(Response::new(self.answer(request.into_inner()).await?))
        }
        type CompleteStreamStream = tokio_stream::wrappers::ReceiverStream<Result<pb::CompleteManyResponse, Status>>;
        async fn complete_stream(
            &self,
            request: Request<tonic::Streaming<pb::CompleteManyRequest>>,
        ) -> Result<Response<Self::CompleteStreamStream>, Status> {
            if self.old || self.no_stream {
                return Err(Status::unimplemented("unknown method CompleteStream"));
            }
            self.streams.fetch_add(1, Ordering::SeqCst);
            let mut requests = request.into_inner();
            let (sender, receiver) = tokio::sync::mpsc::channel(1);
            let served = self.clone();
            tokio::spawn(async move {
                while let Ok(Some(request)) = requests.message().await {
                    let answer = served.answer(request).await;
                    let end = answer.is_err() || served.one_answer_per_stream;
                    if sender.send(answer).await.is_err() || end {
                        return;
                    }
                }
            });
            Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(receiver)))
        }
        async fn fail(&self, _: Request<pb::FailRequest>) -> Result<Response<pb::FailResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn fetch_blob(
            &self,
            _: Request<pb::FetchBlobRequest>,
        ) -> Result<Response<pb::FetchBlobResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
    }

    async fn worker_of(recorder: Arc<Recorder>) -> Arc<Worker> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::workers_server::WorkersServer::new(Served(recorder)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let client = connect(&url, "test-token-0123456789abcdef", 16, None).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        Arc::new(Worker::new(client, Log, pool, 4, "test".into(), zonesweep_shared::sweep::runner::Mode::default()))
    }

    fn result(index: u32) -> pb::JobResult {
        pb::JobResult {
            lease: Some(pb::LeaseRef { sweep_id: "sw-t".into(), job_index: index, lease_id: 1 }),
            aggregate: Some(pb::Aggregate::default()),
        }
    }

    /// Deliver results 0..n at once, each from its own job; their answers.
    async fn deliver_all(worker: &Arc<Worker>, n: u32) -> Vec<Delivered> {
        let mut tasks = Vec::new();
        for i in 0..n {
            let worker = worker.clone();
            tasks.push(tokio::spawn(async move {
                let abandoned: AbandonFlag = Arc::new(AtomicBool::new(false));
                deliver(&worker, result(i), &abandoned).await
            }));
            // The first call leaves before the others end.
            if i == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_that_end_during_a_call_leave_together_in_the_next_each_with_its_answer() {
        let recorder = Arc::new(Recorder::default());
        let worker = worker_of(recorder.clone()).await;
        let answers = deliver_all(&worker, 5).await;
        // The four that end together queue in whatever order their tasks run.
        let mut calls = recorder.calls.lock().unwrap().clone();
        calls.iter_mut().for_each(|(_, indices)| indices.sort());
        assert_eq!(calls, [("complete_many", vec![0]), ("complete_many", vec![1, 2, 3, 4])]);
        // Both calls went over one stream, kept open between them.
        assert_eq!(recorder.streams.load(Ordering::SeqCst), 1);
        let mut leased = 0;
        for (i, answer) in answers.into_iter().enumerate() {
            let (outcome, jobs) = answer.unwrap();
            let refused = i == 3;
            assert_eq!((outcome.code != 0, outcome.merged), (refused, !refused), "result {i}: {outcome:?}");
            // Each result's job thread gets one of the jobs its call leased.
            assert_eq!(jobs.len(), 1, "result {i}");
            leased += jobs.len();
        }
        assert_eq!(leased, 5);
        // The sender ends once nothing waits (just after the last answer).
        for _ in 0..100 {
            if !worker.deliveries.lock().sending {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the sender did not end with nothing left to send");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_closed_between_calls_is_opened_again_at_once() {
        let recorder = Arc::new(Recorder { one_answer_per_stream: true, ..Recorder::default() });
        let worker = worker_of(recorder.clone()).await;
        let answers = deliver_all(&worker, 3).await;
        for answer in answers {
            let (outcome, jobs) = answer.unwrap();
            assert_eq!((outcome.code, outcome.merged, jobs.len()), (0, true, 1));
        }
        let mut calls = recorder.calls.lock().unwrap().clone();
        calls.iter_mut().for_each(|(_, indices)| indices.sort());
        assert_eq!(calls, [("complete_many", vec![0]), ("complete_many", vec![1, 2])]);
        // The second call found the kept stream ended and opened another
        // without a backoff: no outage began.
        assert_eq!(recorder.streams.load(Ordering::SeqCst), 2);
        assert_eq!(worker.outage.begun(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_coordinator_without_streams_gets_complete_many_calls() {
        let recorder = Arc::new(Recorder { no_stream: true, ..Recorder::default() });
        let worker = worker_of(recorder.clone()).await;
        let answers = deliver_all(&worker, 5).await;
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 5);
        let mut calls = recorder.calls.lock().unwrap().clone();
        calls.iter_mut().for_each(|(_, indices)| indices.sort());
        assert_eq!(calls, [("complete_many", vec![0]), ("complete_many", vec![1, 2, 3, 4])]);
        assert_eq!(recorder.streams.load(Ordering::SeqCst), 0);
        assert!(worker.deliveries.unary_only.load(Ordering::Relaxed));
        assert!(!worker.deliveries.complete_only.load(Ordering::Relaxed));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_too_large_together_go_one_by_one() {
        let recorder = Arc::new(Recorder { small: true, ..Recorder::default() });
        let worker = worker_of(recorder.clone()).await;
        let answers = deliver_all(&worker, 3).await;
        let mut calls = recorder.calls.lock().unwrap().clone();
        // The two sent alone go in whatever order their tasks queued them.
        calls[2..].sort();
        assert_eq!(
            calls,
            [("complete_many", vec![0]), ("too large", vec![]), ("complete", vec![1]), ("complete", vec![2])]
        );
        for answer in answers {
            let (outcome, jobs) = answer.unwrap();
            assert_eq!((outcome.code, outcome.merged, jobs.len()), (0, true, 1));
        }
        assert!(!worker.deliveries.complete_only.load(Ordering::Relaxed), "CompleteMany is tried again next time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_coordinator_gets_each_result_by_complete() {
        let recorder = Arc::new(Recorder { old: true, ..Recorder::default() });
        let worker = worker_of(recorder.clone()).await;
        let answers = deliver_all(&worker, 3).await;
        let mut calls = recorder.calls.lock().unwrap().clone();
        calls.sort();
        assert_eq!(calls, [("complete", vec![0]), ("complete", vec![1]), ("complete", vec![2])]);
        for answer in answers {
            let (outcome, jobs) = answer.unwrap();
            assert_eq!((outcome.code, outcome.merged, jobs.len()), (0, true, 1));
        }
        // Once told, the worker does not ask with CompleteMany again.
        assert!(worker.deliveries.complete_only.load(Ordering::Relaxed));
        deliver_all(&worker, 1).await.remove(0).unwrap();
        assert_eq!(recorder.calls.lock().unwrap().len(), 4);
    }
}
