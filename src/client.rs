//! Talking to a coordinator: [`Remote`], its Sweeps service answering in
//! domain types, and the sweep-definition options that `run` and `submit` share.

use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use zonesweep_proto::client::{Authorized, ClientOptions, Connection, DEFAULT_MAX_MESSAGE_MIB, max_message_bytes};
use zonesweep_proto::convert::{results_from_pb, status_from_pb};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::pb;
use zonesweep_proto::pb::sweeps_client::SweepsClient;
use zonesweep_proto::status::{SweepResults, SweepStatus};
use zonesweep_shared::data::dataset::{GEOJSON_FILE, PANEL_FILE, UNITS_FILE};

use crate::data::{DEMO_PANEL_CSV, DEMO_UNITS_CSV, DEMO_UNITS_GEOJSON};

/// `--max-message-mib`: one range on every side (1–4096).
pub fn message_mib(text: &str) -> Result<usize, String> {
    let mib: usize = text.parse().map_err(|e| format!("{e}"))?;
    max_message_bytes(mib).map(|_| mib).map_err(|e| e.to_string())
}

/// How a client talks to a coordinator: its message-size limit and how
/// long it waits for a coordinator that cannot answer.
#[derive(clap::Args, Clone, Debug)]
pub struct LimitArgs {
    /// The largest message sent or accepted, in MiB (a query's answer
    /// carries the sweep's whole aggregate, a submission its dataset).
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_MIB, value_parser = message_mib)]
    pub max_message_mib: usize,
    /// Seconds to keep retrying while the coordinator is unreachable,
    /// restarting or does not answer, before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = crate::cluster::seconds_arg)]
    pub connect_timeout: f64,
    /// CA certificate(s) (PEM) the coordinator's TLS certificate must chain
    /// to, for an https:// coordinator (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

impl Default for LimitArgs {
    fn default() -> LimitArgs {
        LimitArgs { max_message_mib: DEFAULT_MAX_MESSAGE_MIB, connect_timeout: 60.0, ca: None }
    }
}

impl LimitArgs {
    /// The --ca file's contents, if given; it must hold a PEM certificate.
    pub fn ca_pem(&self) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.ca.as_deref() else { return Ok(None) };
        let pem = fs::read(path).with_context(|| format!("cannot read --ca {}", path.display()))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            bail!("--ca {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display());
        }
        Ok(Some(pem))
    }
}

/// The environment variable that carries the access token.
pub const TOKEN_ENV: &str = "ZONESWEEP_TOKEN";

/// How a client finds the token: `--token-file`, or the environment.
#[derive(clap::Args, Clone, Debug)]
pub struct TokenArgs {
    /// File holding the access token (default: the ZONESWEEP_TOKEN variable).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token, if one was given.
    pub fn token(&self) -> Result<Option<String>> {
        if let Some(path) = &self.token_file {
            let text =
                fs::read_to_string(path).with_context(|| format!("cannot read token file {}", path.display()))?;
            let token = text.trim().to_owned();
            if token.is_empty() {
                bail!("token file {} is empty", path.display());
            }
            return Ok(Some(token));
        }
        Ok(std::env::var(TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
    }

    pub fn require(&self) -> Result<String> {
        self.token()?.with_context(|| {
            format!("no access token: pass --token-file FILE or set {TOKEN_ENV} (a coordinator started without one wrote it beside its database, as DB.token)")
        })
    }
}

/// A gRPC error as a readable message.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("coordinator: {} ({:?})", status.message(), status.code())
}

/// A sweep id given on the command line.
pub fn sweep_id(text: &str) -> Result<SweepId> {
    Ok(SweepId::parse(text)?)
}

fn sweep_ref(id: &SweepId) -> pb::SweepRef {
    pb::SweepRef { sweep_id: id.as_str().to_owned() }
}

/// How long one call may take before it counts as unanswered (and is
/// retried): a coordinator that stalls must not hang a client.
const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// A query carries a sweep's whole aggregate: it may take longer.
const QUERY_DEADLINE: Duration = Duration::from_secs(300);
/// Retries back off from 200 ms to 5 s, with jitter.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A coordinator's Sweeps service; every answer is checked into domain
/// types. Every call has a deadline, and a call the coordinator cannot
/// answer now (unreachable, restarting, stalled: UNAVAILABLE or no answer
/// within the deadline) is retried with jittered exponential backoff for up
/// to `--connect-timeout`, saying once that it waits.
pub struct Remote {
    url: String,
    client: SweepsClient<Authorized>,
    patience: Duration,
}

/// A sweep's statuses as a coordinator streams them.
pub struct StatusStream {
    stream: tonic::Streaming<pb::SweepStatus>,
}

/// Why a watch stream ended without a status.
pub enum StreamEnd {
    /// The coordinator closed the stream (its sweep is final, or it shut down).
    Closed,
    /// The connection broke or the coordinator is going away: watch again.
    Lost(tonic::Status),
}

impl StatusStream {
    /// The next status; `Err` when the stream ended, and how.
    pub async fn next(&mut self) -> Result<Result<SweepStatus, StreamEnd>> {
        match self.stream.message().await {
            Ok(Some(status)) => Ok(Ok(status_from_pb(status)?)),
            Ok(None) => Ok(Err(StreamEnd::Closed)),
            Err(status) if retryable(&status) => Ok(Err(StreamEnd::Lost(status))),
            Err(status) => Err(status_error(status)),
        }
    }
}

/// Whether a call may succeed if sent again: the coordinator could not be
/// reached, did not answer in time, or the connection broke mid-call (an
/// HTTP/2 error arrives as UNKNOWN; the coordinator itself never answers
/// UNKNOWN).
fn retryable(status: &tonic::Status) -> bool {
    matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown)
}

/// What a failed call says about TLS set up wrongly on one side, which no
/// retry mends: the advice, or `None` for any other failure.
pub fn tls_trouble(url: &str, status: &tonic::Status) -> Option<String> {
    let message = status.message();
    let https = url.starts_with("https://");
    if message.contains("invalid peer certificate") {
        let why = if message.contains("UnknownIssuer") || message.contains("BadSignature") {
            "it is not signed by the CA given with --ca (or, without --ca, by one of the system's roots)".to_owned()
        } else if message.contains("Expired") || message.contains("certificate expired") {
            "it has expired; make a new one".to_owned()
        } else if message.contains("NotValidForName") || message.contains("not valid for name") {
            "it is not made out for the host name in the URL (see `zonesweep tls self-signed --host`)".to_owned()
        } else {
            message.to_owned()
        };
        return Some(format!("the coordinator's TLS certificate is refused: {why} ({message})"));
    }
    if https && (message.contains("InvalidContentType") || message.contains("corrupt message")) {
        return Some(format!(
            "the coordinator at {url} does not speak TLS; use http:// (or start it with --tls-cert and --tls-key) ({message})"
        ));
    }
    if !https && (message.contains("h2 protocol error") || status.code() == tonic::Code::Cancelled) {
        return Some(format!(
            "the coordinator at {url} did not answer plain HTTP/2; if it serves TLS, use https:// and --ca ({message})"
        ));
    }
    None
}

/// `base` ± 25 %.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(0.75 + rand::random::<f64>() * 0.5)
}

/// A bare `host:port` is taken as `http://host:port`.
pub fn coordinator_url(text: &str) -> String {
    if text.contains("://") { text.to_owned() } else { format!("http://{text}") }
}

impl Remote {
    /// A client of the coordinator at `url` (a bare `host:port` means
    /// `http://host:port`), with `token`; it connects on the first call.
    pub async fn connect(url: &str, token: &str, limits: &LimitArgs) -> Result<Remote> {
        let url = coordinator_url(url);
        let options = ClientOptions {
            max_message_mib: limits.max_message_mib,
            ca_pem: limits.ca_pem()?,
            ..ClientOptions::default()
        };
        let client = Connection::lazy(&url, token, &options)?.sweeps();
        Ok(Remote { url, client, patience: Duration::from_secs_f64(limits.connect_timeout) })
    }

    /// One call, with a deadline, retried while the coordinator cannot answer.
    async fn call<T, F, Fut>(&mut self, deadline: Duration, mut attempt: F) -> Result<T>
    where
        F: FnMut(SweepsClient<Authorized>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut waiting_since: Option<Instant> = None;
        let mut delay = RETRY_FIRST;
        // A short patience also shortens each attempt, so a stalled
        // coordinator is given up on in about that time.
        let deadline = deadline.min(self.patience.max(Duration::from_secs(1)));
        loop {
            let status = match tokio::time::timeout(deadline, attempt(self.client.clone())).await {
                Ok(Ok(response)) => {
                    if let Some(since) = waiting_since {
                        note!(
                            "coordinator at {} answered again after {:.1} s",
                            self.url,
                            since.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(response.into_inner());
                }
                Ok(Err(status)) if tls_trouble(&self.url, &status).is_some() => {
                    bail!("{}", tls_trouble(&self.url, &status).unwrap_or_default())
                }
                Ok(Err(status)) if retryable(&status) => status,
                Ok(Err(status)) => return Err(status_error(status)),
                Err(_) => tonic::Status::deadline_exceeded(format!("no answer within {} s", deadline.as_secs())),
            };
            let since = *waiting_since.get_or_insert_with(|| {
                note!(
                    "coordinator at {} cannot answer now ({}); retrying for up to {:.0} s (--connect-timeout)",
                    self.url,
                    status.message(),
                    self.patience.as_secs_f64()
                );
                Instant::now()
            });
            if since.elapsed() >= self.patience {
                bail!(
                    "the coordinator at {} did not answer for {:.0} s (--connect-timeout): {} ({:?})",
                    self.url,
                    since.elapsed().as_secs_f64(),
                    status.message(),
                    status.code()
                );
            }
            tokio::time::sleep(jittered(delay)).await;
            delay = (delay * 2).min(RETRY_MAX);
        }
    }

    /// Submit once: a resent submission carries the same request id, so an
    /// answer lost in an outage does not make a second sweep.
    pub async fn submit(&mut self, mut request: pb::SubmitRequest) -> Result<SweepStatus> {
        if request.request_id.is_empty() {
            request.request_id = format!("rq-{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
        }
        let answer = self
            .call(CALL_DEADLINE, |mut c| {
                let r = request.clone();
                async move { c.submit(r).await }
            })
            .await?;
        Ok(status_from_pb(answer)?)
    }

    pub async fn status(&mut self, id: &SweepId) -> Result<SweepStatus> {
        Ok(status_from_pb(self.call(CALL_DEADLINE, |mut c| async move { c.get(sweep_ref(id)).await }).await?)?)
    }

    pub async fn watch(&mut self, id: &SweepId) -> Result<StatusStream> {
        let stream = self.call(CALL_DEADLINE, |mut c| async move { c.watch(sweep_ref(id)).await }).await?;
        Ok(StatusStream { stream })
    }

    pub async fn cancel(&mut self, id: &SweepId) -> Result<SweepStatus> {
        Ok(status_from_pb(self.call(CALL_DEADLINE, |mut c| async move { c.cancel(sweep_ref(id)).await }).await?)?)
    }

    pub async fn list(&mut self) -> Result<Vec<SweepStatus>> {
        let sweeps = self.call(CALL_DEADLINE, |mut c| async move { c.list(pb::ListRequest {}).await }).await?.sweeps;
        Ok(sweeps.into_iter().map(status_from_pb).collect::<Result<_, _>>()?)
    }

    pub async fn query(&mut self, id: &SweepId) -> Result<SweepResults> {
        Ok(results_from_pb(self.call(QUERY_DEADLINE, |mut c| async move { c.query(sweep_ref(id)).await }).await?)?)
    }

    pub async fn resume(&mut self, id: &SweepId) -> Result<SweepStatus> {
        Ok(status_from_pb(self.call(CALL_DEADLINE, |mut c| async move { c.resume(sweep_ref(id)).await }).await?)?)
    }

    pub async fn extend(&mut self, id: &SweepId, samples: u64) -> Result<SweepStatus> {
        let request = pb::ExtendRequest { sweep_id: id.as_str().to_owned(), samples };
        Ok(status_from_pb(
            self.call(CALL_DEADLINE, |mut c| {
                let request = request.clone();
                async move { c.extend(request).await }
            })
            .await?,
        )?)
    }

    pub async fn definition(&mut self, id: &SweepId) -> Result<pb::DefinitionResponse> {
        self.call(QUERY_DEADLINE, |mut c| async move { c.definition(sweep_ref(id)).await }).await
    }

    pub async fn delete(&mut self, id: &SweepId) -> Result<()> {
        self.call(CALL_DEADLINE, |mut c| async move { c.delete(sweep_ref(id)).await }).await?;
        Ok(())
    }

    /// Delete the final sweeps that ended more than `age` ago; their ids.
    pub async fn prune(&mut self, age: Duration) -> Result<Vec<String>> {
        let request = pb::PruneRequest { older_than_seconds: age.as_secs() };
        Ok(self.call(CALL_DEADLINE, |mut c| async move { c.prune(request).await }).await?.deleted)
    }

    pub async fn workers(&mut self) -> Result<Vec<pb::WorkerStatus>> {
        let request = pb::ListWorkersRequest {};
        Ok(self.call(CALL_DEADLINE, |mut c| async move { c.list_workers(request).await }).await?.workers)
    }
}

/// What defines a sweep, shared by `run` and `submit`.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepArgs {
    /// Number of samples (default: the spec's, 10,000 for the default spec).
    #[arg(long)]
    pub samples: Option<u64>,
    /// Random seed (default: the spec's, 1 for the default spec).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Dataset folder; the embedded synthetic demonstration dataset when omitted.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Sweep spec (TOML); the default spec when omitted.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Model configuration overrides (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Samples per job (default: the coordinator's, which by default sizes
    /// jobs to about a second of one thread, at least 64 jobs a sweep).
    #[arg(long)]
    pub job_size: Option<u64>,
    /// Stop as soon as every zone probability is known to ± this (the
    /// largest 95 % Wilson half-width), checked after each block of about
    /// 1,000 samples in sample order; `--samples` is then the most to run.
    /// Between 0 and 0.5, e.g. 0.01.
    #[arg(long, value_name = "HALF_WIDTH", value_parser = half_width_arg)]
    pub until_ci: Option<f64>,
    /// With --until-ci: samples between two checks, rounded up to whole
    /// jobs (default 1,000). The stopping point depends on it and on the
    /// job size, never on the workers.
    #[arg(long, value_name = "SAMPLES", requires = "until_ci")]
    pub check_every: Option<u64>,
}

/// A target half-width: a number strictly between 0 and 0.5.
fn half_width_arg(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value > 0.0 && value < 0.5 => Ok(value),
        Ok(value) => Err(format!("{value} is not between 0 and 0.5 (exclusive); e.g. 0.01 for ±1 percentage point")),
        Err(_) => Err(format!("`{text}` is not a number; give a half-width between 0 and 0.5, e.g. 0.01")),
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

impl SweepArgs {
    /// The dataset's name for provenance: its folder's name, or the demo's.
    fn dataset_name(&self) -> String {
        match &self.data {
            Some(dir) => {
                let absolute = fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                absolute
                    .file_name()
                    .map_or_else(|| absolute.display().to_string(), |n| n.to_string_lossy().into_owned())
            }
            None => "demo (synthetic, built in)".to_owned(),
        }
    }

    /// The submission these options describe; files are read here, checked
    /// by the coordinator.
    pub fn request(&self) -> Result<pb::SubmitRequest> {
        let (units_csv, panel_csv, units_geojson) = match &self.data {
            Some(dir) => {
                let geojson = dir.join(GEOJSON_FILE);
                let geojson = if geojson.exists() { read(&geojson)? } else { String::new() };
                (read(&dir.join(UNITS_FILE))?, read(&dir.join(PANEL_FILE))?, geojson)
            }
            None => (DEMO_UNITS_CSV.to_owned(), DEMO_PANEL_CSV.to_owned(), DEMO_UNITS_GEOJSON.to_owned()),
        };
        if self.job_size == Some(0) {
            bail!("--job-size must be at least 1");
        }
        if self.samples == Some(0) {
            bail!("--samples must be at least 1");
        }
        let spec_toml = self.spec.as_deref().map(read).transpose()?.unwrap_or_default();
        let config_toml = self.config.as_deref().map(read).transpose()?.unwrap_or_default();
        if let Some(path) = &self.spec {
            // Checked here too, so that its problems name the file.
            let config = match &self.config {
                Some(config_path) => zonesweep_shared::model::config::Config::from_toml_overrides(
                    &config_toml,
                    &config_path.display().to_string(),
                )?,
                None => zonesweep_shared::model::config::Config::default(),
            };
            crate::spec::checked_spec(&spec_toml, path, &config, self.samples, self.seed)?;
        }
        Ok(pb::SubmitRequest {
            units_csv,
            panel_csv,
            units_geojson,
            config_toml,
            spec_toml,
            samples: self.samples.unwrap_or(0),
            seed: self.seed.unwrap_or(0),
            has_seed: self.seed.is_some(),
            job_size: self.job_size.unwrap_or(0),
            request_id: String::new(),
            dataset_name: self.dataset_name(),
            until_ci: self.until_ci.unwrap_or(0.0),
            check_every: self.check_every.unwrap_or(0),
        })
    }
}
