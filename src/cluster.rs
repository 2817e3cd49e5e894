//! The cluster commands: `coordinator`, `worker`, `run` (both in one process),
//! the client commands and the queries, against a coordinator or a database file.

use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zonesweep_shared::sweep::runner::Mode;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zonesweep_coordinator::config::DEFAULT_MAX_CONNECTIONS;
use zonesweep_coordinator::offline;
use zonesweep_coordinator::server::serve_coordinator;
use zonesweep_coordinator::store::Store;
use zonesweep_coordinator::submission::JobSizing;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig};
use zonesweep_proto::client::{DEFAULT_MAX_MESSAGE_MIB, max_message_bytes};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::{SweepState, SweepStatus};
use zonesweep_shared::model::config::Scenario;

use zonesweep_shared::data::dataset::{GEOJSON_FILE, PANEL_FILE, UNITS_FILE};

use crate::client::{LimitArgs, Remote, StreamEnd, SweepArgs, TokenArgs, message_mib, sweep_id};
use crate::report::{self, OutputFormat, PeakingQuery, SweepView, ZoneSort, ZonesQuery};
use zonesweep_shared::sweep::answers::{DEFAULT_ROBUST_THRESHOLD, check_robust_threshold};

/// The database file `run` and `coordinator` use by default.
pub const DEFAULT_DB: &str = "zonesweep.redb";

#[derive(clap::Args)]
pub struct CoordinatorArgs {
    /// Address to listen on, e.g. 0.0.0.0:7070 (port 0 picks a free one). An
    /// address other than loopback needs --tls-cert and --tls-key, or --insecure.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// The database file (created if missing).
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    #[command(flatten)]
    pub token: TokenArgs,
    /// Tokens with roles: one `ROLE TOKEN` line each, roles worker, submit
    /// (also reads) and read (`zonesweep token new --role ROLE >> FILE`).
    /// Instead of --token-file, whose one token has every role.
    #[arg(long, value_name = "FILE", conflicts_with = "token_file")]
    pub tokens: Option<PathBuf>,
    /// The server's certificate chain (PEM): serve over TLS (clients use
    /// https:// and --ca). `zonesweep tls self-signed` makes one.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen on a non-loopback address without TLS: tokens and results
    /// cross the network in the clear.
    #[arg(long)]
    pub insecure: bool,
    /// Samples per job when a submission does not say. Without it, each
    /// such sweep gets jobs of about --job-seconds, timed on its first
    /// samples.
    #[arg(long, conflicts_with = "job_seconds")]
    pub job_size: Option<u64>,
    /// Seconds of one worker thread a job is sized for, when neither the
    /// submission nor --job-size gives a job size (at least 64 jobs per
    /// sweep when it has the samples).
    #[arg(long, default_value_t = 1.0)]
    pub job_seconds: f64,
    /// Seconds without a heartbeat after which a lease expires.
    #[arg(long, default_value_t = 20.0)]
    pub lease_timeout: f64,
    /// Seconds between worker heartbeats.
    #[arg(long, default_value_t = 2.0)]
    pub heartbeat: f64,
    /// Times a job may fail (an error its worker reported, or a run past
    /// --max-job-time) before its sweep fails. Leases that expire because a
    /// worker went silent do not count.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// Seconds a job may stay leased, heartbeats or not, before it is taken
    /// back (a worker whose samples hang).
    #[arg(long, default_value_t = 3600.0)]
    pub max_job_time: f64,
    /// The largest message accepted or sent, in MiB (a submission carries
    /// its dataset, a query's answer the whole aggregate).
    #[arg(long, default_value_t = DEFAULT_MAX_MESSAGE_MIB, value_parser = message_mib)]
    pub max_message_mib: usize,
    /// The most client and worker connections open at once; a connection
    /// past it is closed as soon as it arrives (lowered at start to what the
    /// process may open).
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a new connection has to make its first call with the token;
    /// one that stays silent, or speaks without the token, is closed then.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Seconds between the HTTP/2 pings sent on every connection.
    #[arg(long, default_value_t = 30.0)]
    pub keepalive_interval: f64,
    /// Seconds a peer has to answer a ping before its connection is closed.
    #[arg(long, default_value_t = 20.0)]
    pub keepalive_timeout: f64,
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// The coordinator's URL, e.g. http://head-node:7070 (a bare
    /// head-node:7070 means the same).
    #[arg(long)]
    pub coordinator: String,
    #[command(flatten)]
    pub token: TokenArgs,
    /// Threads to run samples on (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Log every event (each job leased, each result delivered), not only
    /// connecting, sweeps started, the coordinator lost and back, and
    /// stopping: the same as --log-level debug.
    #[arg(long)]
    pub verbose: bool,
    /// Exit (status 0) once the coordinator has offered no work for this
    /// many seconds while the worker had none: for one-shot workers of
    /// Slurm, Compose or Kubernetes Jobs.
    #[arg(long, value_name = "SECS", value_parser = seconds_arg)]
    pub exit_when_idle: Option<f64>,
    /// Exit with an error once the coordinator has been unreachable for
    /// this many seconds (default: wait for it forever).
    #[arg(long, value_name = "SECS", value_parser = seconds_arg)]
    pub max_disconnect: Option<f64>,
    #[command(flatten)]
    pub verify: VerifyArg,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `--verify`, which `run` and `worker` share.
#[derive(clap::Args)]
pub struct VerifyArg {
    /// Run every sample by both the fast path and the reference chain and
    /// stop at the first difference (about 5× slower): a check of this
    /// program, whose results are the same either way. A sensitivity
    /// design is compared run by run; sweeps with data noise have no fast
    /// path, so nothing is compared.
    #[arg(long)]
    pub verify: bool,
}

/// A command-line number of seconds from 0 to a year.
pub fn seconds_arg(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if value.is_finite() && (0.0..=MAX_SECONDS).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is not between 0 and {MAX_SECONDS} seconds (a year)"))
    }
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// The database file results are stored in.
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Local worker threads to run samples on (default: one per core).
    // `--workers`, the option's older name, still works (hidden).
    #[arg(long, alias = "workers")]
    pub threads: Option<usize>,
    /// Continue this failed or cancelled sweep of the database (an
    /// interrupted `run`, say) instead of submitting a new one; the sweep
    /// options are then not used.
    #[arg(long, value_name = "SWEEP")]
    pub resume: Option<String>,
    /// Seconds between progress lines when standard error is not a terminal.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_seconds_arg)]
    pub progress_interval: f64,
    #[command(flatten)]
    pub verify: VerifyArg,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(clap::Args, Clone)]
pub struct RemoteArgs {
    /// The coordinator's URL, e.g. http://127.0.0.1:7070.
    #[arg(long)]
    pub coordinator: String,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl RemoteArgs {
    async fn connect(&self) -> Result<Remote> {
        Remote::connect(&self.coordinator, &self.token.require()?, &self.limits).await
    }
}

/// Where stored results are read from: a running coordinator or a database file.
#[derive(clap::Args, Clone)]
pub struct SourceArgs {
    /// Ask this coordinator (needs the token).
    #[arg(long, conflicts_with = "db")]
    pub coordinator: Option<String>,
    /// Read this database file (default: zonesweep.redb, where `run` writes).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(clap::Args)]
pub struct SweepRefArgs {
    /// The sweep id (as `run` or `submit` printed it).
    pub sweep: String,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// The `--format` of a query's answer.
#[derive(clap::Args)]
pub struct FormatArgs {
    /// table (aligned, for people), csv (a header row) or json.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(clap::Args)]
pub struct ZonesArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    /// Only this unit (its id); repeat for more.
    #[arg(long, value_name = "ID")]
    pub unit: Vec<String>,
    /// Only units whose zone is not robust.
    #[arg(long)]
    pub only_uncertain: bool,
    /// Row order: id (the sweep's unit order) or robustness (least robust first).
    #[arg(long, value_enum, default_value_t = ZoneSort::Id)]
    pub sort: ZoneSort,
    /// A unit is robust when the lower end of the 95 % interval of its
    /// modal-zone probability is at least this (0–1).
    #[arg(long, value_name = "P", default_value_t = DEFAULT_ROBUST_THRESHOLD, value_parser = robust_threshold)]
    pub robust_threshold: f64,
    #[command(flatten)]
    pub format: FormatArgs,
}

fn robust_threshold(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("`{text}` is not a number from 0 to 1"))?;
    check_robust_threshold(value)
}

#[derive(clap::Args)]
pub struct PeakingArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    /// Only this unit (its id); repeat for more.
    #[arg(long, value_name = "ID", conflicts_with = "region")]
    pub unit: Vec<String>,
    /// Only this scenario: low, baseline or high.
    #[arg(long)]
    pub scenario: Option<String>,
    /// The region's total CE: its peak-year distribution per scenario and
    /// its quantiles per year, instead of the units'.
    #[arg(long)]
    pub region: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(clap::Args)]
pub struct SensitivityArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    /// Only this unit (its id).
    #[arg(long)]
    pub unit: Option<String>,
    /// The output analysed: the total score, or the indicator of each
    /// unit's modal zone.
    #[arg(long, value_enum, default_value = "total")]
    pub output: report::SensitivityOutput,
    #[arg(long, value_enum, default_value = "table")]
    pub format: report::SensitivityFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Output file; `-` writes to standard output.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    /// The folder the report is written into (created if missing; files of
    /// the same names are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A unit is robust when the lower end of the 95 % interval of its
    /// modal-zone probability is at least this (0–1).
    #[arg(long, value_name = "P", default_value_t = DEFAULT_ROBUST_THRESHOLD, value_parser = robust_threshold)]
    pub robust_threshold: f64,
}

/// The longest duration any option takes: a year.
const MAX_SECONDS: f64 = 31_536_000.0;

fn seconds(value: f64, what: &str) -> Result<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) if value > 0.0 && value <= MAX_SECONDS => Ok(duration),
        _ => bail!("{what} must be a positive number of seconds, at most {MAX_SECONDS} (a year), not {value}"),
    }
}

fn random_token() -> String {
    (0..32).map(|_| format!("{:x}", rand::random::<u8>() & 0xf)).collect()
}

/// The token file written beside a database when no token is given.
pub fn token_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".token");
    PathBuf::from(name)
}

/// The file a running `run` (or local `extend`) writes beside its database:
/// the URL of its embedded coordinator, so that queries of the database
/// reach it while it holds the file.
pub fn address_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".coordinator");
    PathBuf::from(name)
}

/// What a `run`'s address file says: its coordinator's URL (first line) and
/// whether the token file beside the database is the run's own (a second
/// line `run-token`), so that one a killed run left behind is replaced, not
/// taken for a coordinator's.
fn read_address(db: &Path) -> Option<(String, bool)> {
    let text = fs::read_to_string(address_path(db)).ok()?;
    let mut lines = text.lines();
    let url = lines.next()?.trim().to_owned();
    Some((url, lines.any(|line| line.trim() == RUN_TOKEN_MARK)))
}

/// The second line of a `run`'s address file when it wrote the token file.
const RUN_TOKEN_MARK: &str = "run-token";

/// The address and token files of a running `run`, removed when it ends
/// (the token file only when the run wrote it).
struct RunFiles {
    address: PathBuf,
    token: Option<PathBuf>,
}

impl Drop for RunFiles {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.address);
        if let Some(token) = &self.token {
            let _ = fs::remove_file(token);
        }
    }
}

/// The coordinator of a `run` that holds database `db`, as its address and
/// token files say: its URL and a client, if it answers (files a killed run
/// left behind are ignored). `Err` holds the URL and why it did not answer.
async fn running_coordinator(db: &Path, limits: &LimitArgs) -> Option<Result<(String, Remote), (String, String)>> {
    let (url, _) = read_address(db)?;
    let token = fs::read_to_string(token_path(db)).ok()?.trim().to_owned();
    if url.is_empty() || token.is_empty() {
        return None;
    }
    // Nothing listening (a killed run's files): not running, quietly.
    let address = url.strip_prefix("http://")?.trim_end_matches('/').to_owned();
    match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return None,
        Err(_) => return Some(Err((url, "no connection within 2 s".to_owned()))),
    }
    let probe_limits = LimitArgs { connect_timeout: 2.0, ..limits.clone() };
    let mut probe = match Remote::connect(&url, &token, &probe_limits).await {
        Ok(probe) => probe,
        Err(e) => return Some(Err((url, format!("{e:#}")))),
    };
    if let Err(e) = probe.list().await {
        return Some(Err((url, format!("{e:#}"))));
    }
    match Remote::connect(&url, &token, limits).await {
        Ok(remote) => Some(Ok((url, remote))),
        Err(e) => Some(Err((url, format!("{e:#}")))),
    }
}

fn write_token(path: &Path, token: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write the token file {}", path.display()))?;
    // The mode only applies to a new file; make an existing one private too.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{token}")?;
    Ok(())
}

/// The token kept beside the database: the one written on an earlier start,
/// so that workers and clients holding it keep working after a restart, or
/// else a new one, written for the next start.
fn stored_or_new_token(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim();
            if token.is_empty() || token.chars().any(char::is_whitespace) {
                bail!(
                    "the token file {} does not hold one token; remove it to have a new one generated, or give --token-file",
                    path.display()
                );
            }
            note!("no token given: using the one in {} (written on an earlier start)", path.display());
            Ok(token.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random_token();
            write_token(path, &token)?;
            note!("no token given: generated one and wrote it to {} (mode 0600)", path.display());
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the token file {}", path.display())),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

pub async fn coordinator(args: CoordinatorArgs) -> Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(zonesweep_coordinator::config::TlsIdentity {
            cert_pem: fs::read(cert).with_context(|| format!("cannot read --tls-cert {}", cert.display()))?,
            key_pem: fs::read(key).with_context(|| format!("cannot read --tls-key {}", key.display()))?,
        }),
        _ => None,
    };
    if tls.is_none() && !args.listen.ip().is_loopback() && !args.insecure {
        bail!(
            "refusing to listen on {} without TLS: tokens and results would cross the network in the clear; \
             give --tls-cert and --tls-key (`zonesweep tls self-signed` makes them), or --insecure on a network you trust",
            args.listen
        );
    }
    let tokens = match &args.tokens {
        Some(path) => {
            let text = fs::read_to_string(path).with_context(|| format!("cannot read --tokens {}", path.display()))?;
            Some(
                zonesweep_proto::auth::TokenTable::parse(&text, &path.display().to_string())
                    .map_err(anyhow::Error::msg)?,
            )
        }
        None => None,
    };
    let token = match (&tokens, args.token.token()?) {
        (Some(_), _) => String::new(),
        (None, Some(token)) => token,
        (None, None) => stored_or_new_token(&token_path(&args.db))?,
    };
    let mut config = CoordinatorConfig::new(args.db.clone(), token);
    config.tokens = tokens;
    config.tls = tls;
    config.job_sizing = match args.job_size {
        Some(size) => JobSizing::Fixed(size),
        None => JobSizing::Seconds(args.job_seconds),
    };
    config.lease_timeout = seconds(args.lease_timeout, "--lease-timeout")?;
    config.heartbeat_interval = seconds(args.heartbeat, "--heartbeat")?;
    config.max_attempts = args.max_attempts;
    config.max_job_time = seconds(args.max_job_time, "--max-job-time")?;
    config.max_message_bytes = max_message_bytes(args.max_message_mib)?;
    if args.max_connections == 0 {
        bail!("--max-connections must be at least 1");
    }
    config.max_connections = args.max_connections;
    config.handshake_timeout = seconds(args.handshake_timeout, "--handshake-timeout")?;
    config.keepalive_interval = seconds(args.keepalive_interval, "--keepalive-interval")?;
    config.keepalive_timeout = seconds(args.keepalive_timeout, "--keepalive-timeout")?;
    let coordinator = Coordinator::start(config).await?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    // Scripts and the test harness read this line for the actual port.
    let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
    println!("coordinator listening on {scheme}://{address} (database {})", args.db.display());
    tracing::info!(%address, db = %args.db.display(), tls = args.tls_cert.is_some(), "coordinator started");
    serve_coordinator(coordinator, listener, termination()).await?;
    tracing::info!("coordinator stopped");
    Ok(())
}

/// The chain `--verify` asks for.
fn chain_mode(verify: bool) -> Mode {
    if verify { Mode::Verify } else { Mode::Fast }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub async fn worker(args: WorkerArgs) -> Result<()> {
    let threads = args.threads.unwrap_or_else(default_threads);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let config = zonesweep_worker::WorkerConfig {
        max_message_mib: args.limits.max_message_mib,
        exit_when_idle: args.exit_when_idle.map(Duration::from_secs_f64),
        max_disconnect: args.max_disconnect.map(Duration::from_secs_f64),
        ca_pem: args.limits.ca_pem()?,
        chain: chain_mode(args.verify.verify),
        ..zonesweep_worker::WorkerConfig::new(
            &crate::client::coordinator_url(&args.coordinator),
            &args.token.require()?,
            threads,
            &hostname(),
        )
    };
    zonesweep_worker::run(config, termination()).await?;
    Ok(())
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// How `run` and `watch` show a sweep's progress: a bar on a terminal, and
/// a plain line every `interval` otherwise (a Slurm job log, `kubectl
/// logs`). The rate and ETA come from what this command itself saw, not from
/// the sweep's start.
struct Progress {
    bar: Option<ProgressBar>,
    interval: Duration,
    /// The first status seen (when, samples done), for the rate.
    first: Option<(Instant, u64)>,
    last_line: Option<Instant>,
    last: Option<SweepStatus>,
}

impl Progress {
    fn new(interval: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} samples  {msg}").expect("a valid template"),
            );
            bar
        });
        Progress { bar, interval, first: None, last_line: None, last: None }
    }

    /// Samples per second since the first status seen, once measurable.
    fn rate(&self, status: &SweepStatus) -> Option<f64> {
        let (since, first_done) = self.first?;
        let seconds = since.elapsed().as_secs_f64();
        (seconds >= 1.0 && status.samples_done > first_done)
            .then(|| (status.samples_done - first_done) as f64 / seconds)
    }

    fn describe(&self, status: &SweepStatus) -> String {
        let mut text = match self.rate(status) {
            Some(rate) => {
                let left = status.samples.saturating_sub(status.samples_done) as f64 / rate;
                // A sweep with a target may stop long before its last sample.
                let at_most = if status.until_ci.is_some() && !status.state.is_final() { "at most " } else { "" };
                format!("{rate:.0} samples/s, ETA {at_most}{}", human_duration(left))
            }
            None => "rate not known yet".to_owned(),
        };
        if status.samples_failed > 0 {
            let _ = write!(text, ", {} failed", status.samples_failed);
        }
        let _ = write!(text, ", {}", report::convergence(status));
        text
    }

    fn update(&mut self, status: SweepStatus) {
        self.first.get_or_insert((Instant::now(), status.samples_done));
        if let Some(bar) = &self.bar {
            bar.set_length(status.samples);
            bar.set_position(status.samples_done);
            bar.set_message(self.describe(&status));
        }
        let due = self.last_line.is_none_or(|at| at.elapsed() >= self.interval);
        let ended = status.state.is_final();
        self.last = Some(status);
        if due || ended {
            self.line();
        }
    }

    /// A plain progress line (when not drawing a bar), due or not.
    fn line(&mut self) {
        let (Some(status), None) = (&self.last, &self.bar) else { return };
        let percent = 100.0 * status.samples_done as f64 / status.samples.max(1) as f64;
        note!(
            "sweep {}: {} {}/{} samples ({percent:.1} %), {}",
            status.id,
            status.state.name(),
            status.samples_done,
            status.samples,
            self.describe(status)
        );
        self.last_line = Some(Instant::now());
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// "42 s", "7 min 3 s", "2 h 5 min".
fn human_duration(seconds: f64) -> String {
    let s = seconds.round().clamp(0.0, 1e9) as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// Follow a sweep until it is final, across coordinator restarts (each
/// lost stream is watched again, within the client's `--connect-timeout`);
/// returns the last status.
async fn follow(client: &mut Remote, sweep: &SweepId, interval: Duration) -> Result<SweepStatus> {
    let mut progress = Progress::new(interval);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closed_early = 0;
    loop {
        let mut stream = client.watch(sweep).await?;
        loop {
            tokio::select! {
                next = stream.next() => match next? {
                    Ok(status) => {
                        let ended = status.state.is_final();
                        progress.update(status);
                        if ended {
                            progress.finish();
                            return progress.last.clone().context("a final status was seen");
                        }
                    }
                    Err(StreamEnd::Lost(status)) => {
                        note!("lost the coordinator ({}); following sweep {sweep} again", status.message());
                        break;
                    }
                    Err(StreamEnd::Closed) => {
                        closed_early += 1;
                        if closed_early > 100 {
                            bail!("the coordinator keeps closing the watch of sweep {sweep} before it is final");
                        }
                        break;
                    }
                },
                _ = ticker.tick() => {
                    if progress.last_line.is_some_and(|at| at.elapsed() >= interval) {
                        progress.line();
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A coordinator on a database file and local workers in this process,
/// talking over loopback with a token nobody else sees: what `run` and a
/// local `extend` use.
struct LocalCluster {
    client: Remote,
    db: PathBuf,
    /// Its embedded coordinator's URL.
    url: String,
    /// Removed once the server has stopped (or the cluster is dropped).
    files: RunFiles,
    threads: usize,
    stop_server: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), zonesweep_coordinator::error::CoordinatorError>>,
    stop_worker: oneshot::Sender<()>,
    worker: tokio::task::JoinHandle<Result<(), zonesweep_worker::WorkerError>>,
}

impl LocalCluster {
    async fn start(db: &Path, threads: Option<usize>, chain: Mode) -> Result<LocalCluster> {
        let threads = threads.unwrap_or_else(default_threads);
        if threads == 0 {
            bail!("--threads must be at least 1");
        }
        // A token file a coordinator keeps beside the database is used (and
        // kept); otherwise one is written for this run and removed after it.
        // One an earlier run wrote (its address file says so) is that run's:
        // should the database open, the run was killed, and it is replaced.
        let token_file = token_path(db);
        let earlier_runs = read_address(db).is_some_and(|(_, own)| own);
        let kept = fs::read_to_string(&token_file)
            .ok()
            .filter(|_| !earlier_runs)
            .map(|text| text.trim().to_owned())
            .filter(|t| !t.is_empty() && !t.chars().any(char::is_whitespace));
        let token = kept.clone().unwrap_or_else(random_token);
        let config = CoordinatorConfig::new(db.to_path_buf(), token.clone());
        let coordinator = Coordinator::start(config).await.with_context(|| match read_address(db) {
            Some((url, _)) => {
                format!("cannot open the results database {} (a `run` serving it at {url} may hold it)", db.display())
            }
            None => format!("cannot open the results database {}", db.display()),
        })?;
        let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot open a loopback port")?;
        let url = format!("http://{}", listener.local_addr()?);
        // This process holds the database now: whatever files are there
        // are a killed run's.
        let files = RunFiles { address: address_path(db), token: kept.is_none().then(|| token_file.clone()) };
        if kept.is_none() {
            write_token(&token_file, &token)?;
        }
        let mark = if kept.is_none() { format!("{RUN_TOKEN_MARK}\n") } else { String::new() };
        fs::write(&files.address, format!("{url}\n{mark}"))
            .with_context(|| format!("cannot write {}", files.address.display()))?;

        let (stop_server, server_stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_coordinator(coordinator, listener, async {
            let _ = server_stopped.await;
        }));
        let (stop_worker, worker_stopped) = oneshot::channel::<()>();
        let worker_config = zonesweep_worker::WorkerConfig {
            chain,
            ..zonesweep_worker::WorkerConfig::new(&url, &token, threads, "embedded")
        };
        let worker = tokio::spawn(zonesweep_worker::run(worker_config, async {
            let _ = worker_stopped.await;
        }));
        let client = Remote::connect(&url, &token, &LimitArgs::default()).await?;
        Ok(LocalCluster { client, db: db.to_path_buf(), url, files, threads, stop_server, server, stop_worker, worker })
    }

    /// How to query sweep `id` while this runs.
    fn query_hint(&self, id: &SweepId) -> String {
        let db = if self.db == Path::new(DEFAULT_DB) { String::new() } else { format!(" --db {}", self.db.display()) };
        format!(
            "while it runs, queries of {} are answered by it, e.g. `zonesweep status {id}{db}` \
             (its coordinator: {}, token in {})",
            self.db.display(),
            self.url,
            token_path(&self.db).display()
        )
    }

    /// Follow sweep `id` to its end (Ctrl-C or SIGTERM cancels it, leaving
    /// it resumable), then stop the cluster; its final status and results.
    /// `again` says how to continue it after an interruption.
    async fn follow_to_end(
        mut self,
        id: &SweepId,
        interval: Duration,
        again: &str,
    ) -> Result<(SweepStatus, SweepView)> {
        let outcome = tokio::select! {
            status = follow(&mut self.client, id, interval) => status,
            _ = termination() => {
                let _ = self.client.cancel(id).await;
                Err(anyhow::anyhow!(
                    "interrupted: sweep {id} stopped with what it has; {again}`zonesweep run --db {} --resume {id}` continues it",
                    self.db.display(),
                ))
            }
        };
        let view = match &outcome {
            Ok(_) => Some(self.client.query(id).await),
            Err(_) => None,
        };
        let _ = self.stop_worker.send(());
        let _ = self.worker.await;
        let _ = self.stop_server.send(());
        let _ = self.server.await;
        // The database is free: queries read the file again.
        drop(self.files);
        let status = outcome?;
        let view = view.expect("queried when the sweep finished")?;
        Ok((status, view))
    }
}

/// What identifies a `run` command's sweep in its database: the hash of
/// everything that defines the sweep (dataset, configuration, spec,
/// samples, seed, job size, stopping rule), so that the same command run
/// again finds the sweep it started.
fn run_key(request: &zonesweep_proto::pb::SubmitRequest) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for text in
        [&request.units_csv, &request.panel_csv, &request.units_geojson, &request.config_toml, &request.spec_toml]
    {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    for number in [request.samples, request.seed, u64::from(request.has_seed), request.job_size, request.check_every] {
        hasher.update(number.to_le_bytes());
    }
    hasher.update(request.until_ci.to_bits().to_le_bytes());
    hasher.finalize().iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// Submit `request` as the sweep of this `run` command, or continue the one
/// an earlier run of the same command left unfinished (interrupted, failed,
/// or cut off by a crash). A done sweep of the same command is left as it
/// is and a new one started, so each run of it ends with a sweep of its own.
/// The status, and whether an earlier sweep is continued.
async fn submit_or_continue(
    client: &mut Remote,
    mut request: zonesweep_proto::pb::SubmitRequest,
) -> Result<(SweepStatus, bool)> {
    let key = run_key(&request);
    let known: Vec<SweepId> = client.list().await?.into_iter().map(|s| s.id).collect();
    for n in 1u32.. {
        request.request_id = format!("run-{key}-{n}");
        let status = client.submit(request.clone()).await?;
        let earlier = known.contains(&status.id);
        match status.state {
            _ if !earlier => return Ok((status, false)),
            SweepState::Done => continue,
            // Left by a release of another model chain revision: it cannot
            // be resumed here, so this run starts a sweep of its own.
            SweepState::Cancelled | SweepState::Failed
                if status.provenance.chain != zonesweep_shared::CHAIN_REVISION =>
            {
                continue;
            }
            SweepState::Cancelled | SweepState::Failed => return Ok((client.resume(&status.id).await?, true)),
            SweepState::Running => return Ok((status, true)),
        }
    }
    unreachable!("a run key has a free number")
}

pub async fn run(args: RunArgs) -> Result<()> {
    let resume = args.resume.as_deref().map(sweep_id).transpose()?;
    let request = args.sweep.request()?;
    if resume.is_some() {
        require_database(&args.db, args.db != Path::new(DEFAULT_DB))?;
    }
    let mut cluster = LocalCluster::start(&args.db, args.threads, chain_mode(args.verify.verify)).await?;
    let (submitted, continued) = match &resume {
        Some(id) => (cluster.client.resume(id).await?, true),
        None => submit_or_continue(&mut cluster.client, request).await?,
    };
    if continued && resume.is_none() {
        note!(
            "continuing sweep {} of this same command, left unfinished by an earlier run ({} samples done)",
            submitted.id,
            submitted.samples_done
        );
    }
    note!(
        "sweep {}{}: {} samples{} in {} jobs on {} local worker thread(s); results in {}",
        submitted.id,
        if continued { format!(" resumed with {} samples done", submitted.samples_done) } else { String::new() },
        submitted.samples,
        submitted
            .until_ci
            .map_or(String::new(), |t| format!(" at most, until every zone probability is known to ±{t},")),
        submitted.jobs,
        cluster.threads,
        args.db.display()
    );
    note!("{}", cluster.query_hint(&submitted.id));
    let started = std::time::Instant::now();
    let again = if resume.is_none() { "running the same command again, or " } else { "" };
    let (status, view) =
        cluster.follow_to_end(&submitted.id, Duration::from_secs_f64(args.progress_interval), again).await?;
    let elapsed = started.elapsed();
    let mut out = report::summary(&view);
    let _ = writeln!(out, "{}", report::status_line(&status));
    let _ = writeln!(
        out,
        "{:.1} s, {:.0} samples/s",
        elapsed.as_secs_f64(),
        status.samples_done.saturating_sub(submitted.samples_done) as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let _ = writeln!(out, "{}", submitted.id);
    print_out(&out)?;
    if status.state != SweepState::Done {
        bail!("sweep {} ended {}: {}", submitted.id, status.state, status.reason);
    }
    Ok(())
}

/// Write a command's result to standard output as an error, not a panic:
/// a reader that stopped early (`run | head`) ends the command through
/// `main`, after the runtime (and any database it holds) has shut down.
fn print_out(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

#[derive(clap::Args)]
pub struct ExtendArgs {
    /// The sweep id.
    pub sweep: String,
    /// How many samples to add.
    #[arg(long)]
    pub samples: u64,
    /// Extend a sweep of this coordinator (which its workers then run);
    /// without it, the sweep of --db runs here, like `run`.
    #[arg(long, conflicts_with_all = ["db", "threads"])]
    pub coordinator: Option<String>,
    /// The database file of `run`.
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Local worker threads to run samples on (default: one per core).
    // `--workers`, the option's older name, still works (hidden).
    #[arg(long, alias = "workers")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Seconds between progress lines when standard error is not a terminal.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_seconds_arg)]
    pub progress_interval: f64,
}

/// Add samples to a done sweep: on a coordinator, or here on --db.
pub async fn extend(args: ExtendArgs) -> Result<()> {
    let id = sweep_id(&args.sweep)?;
    if args.samples == 0 {
        bail!("--samples must be at least 1 (the samples to add)");
    }
    if let Some(url) = &args.coordinator {
        let mut client = Remote::connect(url, &args.token.require()?, &args.limits).await?;
        let status = client.extend(&id, args.samples).await?;
        note!(
            "sweep {id} extended to {} samples in {} jobs; follow it with `zonesweep watch {id}`",
            status.samples,
            status.jobs
        );
        println!("{}", report::status_line(&status));
        return Ok(());
    }
    require_database(&args.db, args.db != Path::new(DEFAULT_DB))?;
    let mut cluster = LocalCluster::start(&args.db, args.threads, Mode::default()).await?;
    let extended = cluster.client.extend(&id, args.samples).await?;
    note!(
        "sweep {id} extended by {} to {} samples on {} local worker thread(s); results in {}",
        args.samples,
        extended.samples,
        cluster.threads,
        args.db.display()
    );
    note!("{}", cluster.query_hint(&id));
    let (status, view) = cluster.follow_to_end(&id, Duration::from_secs_f64(args.progress_interval), "").await?;
    let mut out = report::summary(&view);
    let _ = writeln!(out, "{}", report::status_line(&status));
    print_out(&out)?;
    if status.state != SweepState::Done {
        bail!("sweep {id} ended {}: {}", status.state, status.reason);
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    /// Print the sweep spec it ran with (TOML, with its samples and seed).
    #[arg(long, conflicts_with_all = ["config", "dataset"])]
    pub spec: bool,
    /// Print the configuration it ran with (TOML, every key).
    #[arg(long, conflicts_with = "dataset")]
    pub config: bool,
    /// Write the dataset it ran on (units.csv, panel.csv and, when it had
    /// polygons, units.geojson) into this folder, which must not hold them.
    #[arg(long, value_name = "DIR")]
    pub dataset: Option<PathBuf>,
}

/// A sweep's provenance, or what it ran from, so it can be run again.
pub async fn show(args: ShowArgs) -> Result<()> {
    let id = sweep_id(&args.sweep.sweep)?;
    let mut source = open(&args.sweep.source).await?;
    if !(args.spec || args.config || args.dataset.is_some()) {
        let status = source.status(&id).await?;
        print!("{}", report::provenance(&status));
        return Ok(());
    }
    let definition = source.definition(&id).await?;
    if args.spec {
        print!("{}", definition.spec_toml);
    } else if args.config {
        print!("{}", definition.config_toml);
    } else if let Some(dir) = &args.dataset {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = vec![(UNITS_FILE, &definition.units_csv), (PANEL_FILE, &definition.panel_csv)];
        if !definition.units_geojson.is_empty() {
            files.push((GEOJSON_FILE, &definition.units_geojson));
        }
        if let Some((name, _)) = files.iter().find(|(name, _)| dir.join(name).exists()) {
            bail!("{} already exists; give an empty folder to --dataset", dir.join(name).display());
        }
        for (name, text) in files {
            fs::write(dir.join(name), text).with_context(|| format!("cannot write {}", dir.join(name).display()))?;
        }
        note!("wrote the dataset of sweep {id} to {}", dir.display());
    }
    Ok(())
}

pub async fn submit(args: SubmitArgs) -> Result<()> {
    let request = args.sweep.request()?;
    let mut client = args.remote.connect().await?;
    let status = client.submit(request).await?;
    note!("submitted: {} samples in {} jobs", status.samples, status.jobs);
    println!("{}", status.id);
    Ok(())
}

/// A connection to the coordinator or the database of `source`.
enum Source {
    Remote(Remote),
    File(Store),
}

async fn open(source: &SourceArgs) -> Result<Source> {
    if let Some(url) = &source.coordinator {
        return Ok(Source::Remote(Remote::connect(url, &source.token.require()?, &source.limits).await?));
    }
    let path = source.db.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    require_database(&path, source.db.is_some())?;
    let silent = match running_coordinator(&path, &source.limits).await {
        Some(Ok((_, remote))) => return Ok(Source::Remote(remote)),
        Some(Err(trouble)) => Some(trouble),
        None => None,
    };
    match Store::open_existing(&path) {
        Ok(store) => Ok(Source::File(store)),
        Err(e) => match silent {
            Some((url, why)) => bail!(
                "{e}; the `run` that holds {} serves it at {url}, which did not answer ({why}); \
                 wait for the run to end, or ask it with --coordinator {url} --token-file {}",
                path.display(),
                token_path(&path).display()
            ),
            None => Err(e.into()),
        },
    }
}

/// Refuse a database file that does not exist (before anything would
/// create it), naming both ways to reach stored results.
fn require_database(path: &Path, given: bool) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if given {
        bail!(
            "no database {}; give --db FILE of an existing database (as `run` wrote it), \
             or --coordinator URL for a running coordinator",
            path.display()
        );
    }
    bail!("no database {} here; give --db FILE, or --coordinator URL for a running coordinator", path.display());
}

impl Source {
    async fn status(&mut self, sweep: &SweepId) -> Result<SweepStatus> {
        match self {
            Source::Remote(client) => client.status(sweep).await,
            Source::File(store) => Ok(offline::status(store, sweep)?),
        }
    }

    async fn view(&mut self, sweep: &SweepId) -> Result<SweepView> {
        match self {
            Source::Remote(client) => client.query(sweep).await,
            Source::File(store) => Ok(offline::query(store, sweep)?),
        }
    }

    async fn list(&mut self) -> Result<Vec<SweepStatus>> {
        match self {
            Source::Remote(client) => client.list().await,
            Source::File(store) => Ok(offline::list(store)?),
        }
    }

    async fn definition(&mut self, sweep: &SweepId) -> Result<zonesweep_proto::pb::DefinitionResponse> {
        match self {
            Source::Remote(client) => client.definition(sweep).await,
            Source::File(store) => Ok(offline::definition(store, sweep)?.into_pb()),
        }
    }
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let status = open(&args.sweep.source).await?.status(&sweep_id(&args.sweep.sweep)?).await?;
    print!("{}", report::status(&status, args.format.format)?);
    Ok(())
}

pub async fn list(args: ListArgs) -> Result<()> {
    let sweeps = open(&args.source).await?.list().await?;
    print!("{}", report::list(&sweeps, args.format.format)?);
    Ok(())
}

#[derive(clap::Args)]
pub struct WatchArgs {
    /// The sweep id.
    pub sweep: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Seconds between progress lines when standard error is not a terminal.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = positive_seconds_arg)]
    pub progress_interval: f64,
}

/// A command-line number of seconds above 0, at most a year.
fn positive_seconds_arg(text: &str) -> Result<f64, String> {
    match seconds_arg(text)? {
        0.0 => Err("must be more than 0 seconds".to_owned()),
        value => Ok(value),
    }
}

pub async fn watch(args: WatchArgs) -> Result<()> {
    let sweep = sweep_id(&args.sweep)?;
    let mut client = args.remote.connect().await?;
    let status = follow(&mut client, &sweep, Duration::from_secs_f64(args.progress_interval)).await?;
    println!("{}", report::status_line(&status));
    if status.state != SweepState::Done {
        bail!("sweep {sweep} ended {}", status.state);
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct RemoteSweepArgs {
    /// The sweep id.
    pub sweep: String,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub async fn cancel(args: RemoteSweepArgs) -> Result<()> {
    let sweep = sweep_id(&args.sweep)?;
    let mut client = args.remote.connect().await?;
    let status = client.cancel(&sweep).await?;
    println!("{}", report::status_line(&status));
    Ok(())
}

pub async fn resume(args: RemoteSweepArgs) -> Result<()> {
    let sweep = sweep_id(&args.sweep)?;
    let status = args.remote.connect().await?.resume(&sweep).await?;
    println!("{}", report::status_line(&status));
    Ok(())
}

/// Where a sweep is deleted: through a running coordinator, or in a
/// database file no coordinator has open (through one started here).
#[derive(clap::Args)]
pub struct ManageArgs {
    /// Ask this coordinator (needs a token).
    #[arg(long, conflicts_with = "db")]
    pub coordinator: Option<String>,
    /// Change this database file directly (while no coordinator has it open).
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    /// The sweep id; it must be final (cancel a running one first).
    pub sweep: String,
    #[command(flatten)]
    pub target: ManageArgs,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Delete every final sweep that ended more than this many days ago.
    #[arg(long, value_name = "DAYS")]
    pub older_than: f64,
    #[command(flatten)]
    pub target: ManageArgs,
}

/// A coordinator on `path`, with no server and no workers, to change it.
async fn local_coordinator(path: &Path) -> Result<Coordinator> {
    require_database(path, path != Path::new(DEFAULT_DB))?;
    let config = CoordinatorConfig::new(path.to_path_buf(), random_token());
    Coordinator::start(config).await.with_context(|| format!("cannot open the results database {}", path.display()))
}

pub async fn delete(args: DeleteArgs) -> Result<()> {
    let sweep = sweep_id(&args.sweep)?;
    match &args.target.coordinator {
        Some(url) => {
            Remote::connect(url, &args.target.token.require()?, &args.target.limits).await?.delete(&sweep).await?
        }
        None => match running_coordinator(&args.target.db, &args.target.limits).await {
            Some(Ok((_, mut remote))) => remote.delete(&sweep).await?,
            _ => local_coordinator(&args.target.db).await?.delete(&sweep).await?,
        },
    }
    println!("deleted {sweep}");
    Ok(())
}

pub async fn prune(args: PruneArgs) -> Result<()> {
    if !(args.older_than.is_finite() && (0.0..=1e6).contains(&args.older_than)) {
        bail!("--older-than must be a number of days from 0 to 1000000, not {}", args.older_than);
    }
    let age = Duration::from_secs_f64(args.older_than * 86_400.0);
    let deleted: Vec<String> = match &args.target.coordinator {
        Some(url) => Remote::connect(url, &args.target.token.require()?, &args.target.limits).await?.prune(age).await?,
        None => match running_coordinator(&args.target.db, &args.target.limits).await {
            Some(Ok((_, mut remote))) => remote.prune(age).await?,
            _ => {
                let coordinator = local_coordinator(&args.target.db).await?;
                coordinator.prune(age).await?.iter().map(|id| id.as_str().to_owned()).collect()
            }
        },
    };
    for id in &deleted {
        println!("deleted {id}");
    }
    note!("{} sweep(s) deleted", deleted.len());
    Ok(())
}

#[derive(clap::Args)]
pub struct WaitReadyArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Give up (exit 1) after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = seconds_arg)]
    pub timeout: f64,
}

/// Wait until the coordinator's health service answers SERVING: for
/// scripts that start a coordinator and then its workers and clients.
pub async fn wait_ready(args: WaitReadyArgs) -> Result<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    let url = crate::client::coordinator_url(&args.remote.coordinator);
    // The health service needs no token; send it when there is one.
    let token = args.remote.token.token()?.unwrap_or_else(|| "none".to_owned());
    let options = zonesweep_proto::client::ClientOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(2)),
        ca_pem: args.remote.limits.ca_pem()?,
        ..Default::default()
    };
    let mut health = zonesweep_proto::client::Connection::lazy(&url, &token, &options)?.health();
    let started = Instant::now();
    let limit = Duration::from_secs_f64(args.timeout);
    let mut said = false;
    loop {
        let answer = health.check(HealthCheckRequest { service: String::new() }).await;
        let why = match answer {
            Ok(response) if response.get_ref().status == ServingStatus::Serving as i32 => {
                println!("coordinator at {url} is ready ({:.1} s)", started.elapsed().as_secs_f64());
                return Ok(());
            }
            Ok(response) => format!("health status {}", response.get_ref().status),
            Err(status) => match crate::client::tls_trouble(&url, &status) {
                Some(trouble) => bail!("{trouble}"),
                None => status.message().to_owned(),
            },
        };
        if started.elapsed() >= limit {
            bail!("the coordinator at {url} was not ready within {:.0} s: {why}", limit.as_secs_f64());
        }
        if !said {
            note!("waiting for the coordinator at {url} ({why})");
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn workers(args: RemoteArgs) -> Result<()> {
    let workers = args.connect().await?.workers().await?;
    if workers.is_empty() {
        println!("no workers registered");
        return Ok(());
    }
    println!(
        "{:<40} {:>7} {:>6} {:>9} {:>12} {:>14}  host",
        "worker", "threads", "leases", "jobs done", "samples done", "last heard of"
    );
    for w in workers {
        let seen = format!("{:.1} s ago", w.idle_millis as f64 / 1000.0);
        println!(
            "{:<40} {:>7} {:>6} {:>9} {:>12} {:>14}  {}",
            w.worker_id, w.threads, w.leases, w.jobs_delivered, w.samples_delivered, seen, w.hostname
        );
    }
    Ok(())
}

pub async fn zones(args: ZonesArgs) -> Result<()> {
    let view = open(&args.sweep.source).await?.view(&sweep_id(&args.sweep.sweep)?).await?;
    let query = ZonesQuery {
        units: &args.unit,
        only_uncertain: args.only_uncertain,
        sort: args.sort,
        threshold: args.robust_threshold,
    };
    print!("{}", report::zones(&view, &query, args.format.format)?);
    Ok(())
}

pub async fn peaking(args: PeakingArgs) -> Result<()> {
    let scenario = match args.scenario.as_deref() {
        Some(key) => Some(
            Scenario::from_key(key)
                .with_context(|| format!("--scenario must be low, baseline or high, not `{key}`"))?,
        ),
        None => None,
    };
    let view = open(&args.sweep.source).await?.view(&sweep_id(&args.sweep.sweep)?).await?;
    let query = PeakingQuery { units: &args.unit, scenario, region: args.region };
    print!("{}", report::peaking(&view, &query, args.format.format)?);
    Ok(())
}

pub async fn sensitivity(args: SensitivityArgs) -> Result<()> {
    let view = open(&args.sweep.source).await?.view(&sweep_id(&args.sweep.sweep)?).await?;
    print!("{}", report::sensitivity_report(&view, args.unit.as_deref(), args.output, args.format)?);
    Ok(())
}

pub async fn export(args: ExportArgs) -> Result<()> {
    let view = open(&args.sweep.source).await?.view(&sweep_id(&args.sweep.sweep)?).await?;
    let text = match args.format {
        ExportFormat::Json => report::export_json(&view)?,
        ExportFormat::Csv => report::export_csv(&view)?,
    };
    if args.out == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("cannot write to standard output")?;
        return Ok(());
    }
    fs::write(&args.out, text).with_context(|| format!("cannot write {}", args.out.display()))?;
    note!("wrote {}", args.out.display());
    Ok(())
}

pub async fn html_report(args: ReportArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let id = sweep_id(&args.sweep.sweep)?;
    let mut source = open(&args.sweep.source).await?;
    let view = source.view(&id).await?;
    let definition = source.definition(&id).await?;
    let written = crate::html_report::write(&view, &definition, &args.out, args.robust_threshold)?;
    note!(
        "wrote the report of sweep {id} to {} ({} files: open index.html) in {:.2} s",
        written.dir.join("index.html").display(),
        written.files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
