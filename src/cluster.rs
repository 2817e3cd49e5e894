//! The cluster commands: `coordinator`, `worker`, `run` (both in one process),
//! the client commands and the queries, against a coordinator or a database file.

use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zonesweep_coordinator::config::DEFAULT_MAX_CONNECTIONS;
use zonesweep_coordinator::offline;
use zonesweep_coordinator::server::serve_coordinator;
use zonesweep_coordinator::store::Store;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig};
use zonesweep_proto::client::{DEFAULT_MAX_MESSAGE_MIB, max_message_bytes};
use zonesweep_proto::ids::SweepId;
use zonesweep_proto::status::{SweepState, SweepStatus};
use zonesweep_shared::model::config::Scenario;

use crate::client::{LimitArgs, Remote, SweepArgs, TokenArgs, message_mib, sweep_id};
use crate::report::{self, SweepView};

/// The database file `run` and `coordinator` use by default.
pub const DEFAULT_DB: &str = "zonesweep.redb";

#[derive(clap::Args)]
pub struct CoordinatorArgs {
    /// Address to listen on, e.g. 0.0.0.0:7070 (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// The database file (created if missing).
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    #[command(flatten)]
    pub token: TokenArgs,
    /// Samples per job when a submission does not say.
    #[arg(long, default_value_t = 100)]
    pub job_size: u64,
    /// Seconds without a heartbeat after which a lease expires.
    #[arg(long, default_value_t = 20.0)]
    pub lease_timeout: f64,
    /// Seconds between worker heartbeats.
    #[arg(long, default_value_t = 2.0)]
    pub heartbeat: f64,
    /// Times a job may fail or expire before its sweep fails.
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
    /// The coordinator's URL, e.g. http://head-node:7070.
    #[arg(long)]
    pub coordinator: String,
    #[command(flatten)]
    pub token: TokenArgs,
    /// Threads to run samples on (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Say when the coordinator cannot be reached, and other events.
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// The database file results are stored in.
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Local worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
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
    #[arg(long, conflicts_with = "db", required_unless_present = "db")]
    pub coordinator: Option<String>,
    /// Read this database file directly (while no coordinator has it open).
    #[arg(long)]
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

#[derive(clap::Args)]
pub struct PeakingArgs {
    #[command(flatten)]
    pub sweep: SweepRefArgs,
    /// Only this unit (its id).
    #[arg(long)]
    pub unit: Option<String>,
    /// Only this scenario: low, baseline or high.
    #[arg(long)]
    pub scenario: Option<String>,
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
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
}

fn seconds(value: f64, what: &str) -> Result<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(duration) if value > 0.0 => Ok(duration),
        _ => bail!("{what} must be a positive number of seconds, not {value}"),
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
            eprintln!("no token given: using the one in {} (written on an earlier start)", path.display());
            Ok(token.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random_token();
            write_token(path, &token)?;
            eprintln!("no token given: generated one and wrote it to {} (mode 0600)", path.display());
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
    let token = match args.token.token()? {
        Some(token) => token,
        None => stored_or_new_token(&token_path(&args.db))?,
    };
    let mut config = CoordinatorConfig::new(args.db.clone(), token);
    config.default_job_size = args.job_size;
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
    println!("coordinator listening on http://{address} (database {})", args.db.display());
    serve_coordinator(coordinator, listener, termination()).await?;
    eprintln!("coordinator stopped");
    Ok(())
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
        verbose: args.verbose,
        max_message_mib: args.limits.max_message_mib,
        ..zonesweep_worker::WorkerConfig::new(&args.coordinator, &args.token.require()?, threads, &hostname())
    };
    zonesweep_worker::run(config, termination()).await?;
    Ok(())
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// Follow a sweep with a progress bar until it is final; returns the last status.
async fn follow(client: &mut Remote, sweep: &SweepId) -> Result<SweepStatus> {
    let mut stream = client.watch(sweep).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} samples  {rate}  ETA {eta}  {msg}")
            .expect("a valid template")
            .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} samples/s", state.per_sec());
            }),
    );
    let mut last = None;
    while let Some(status) = stream.next().await? {
        bar.set_length(status.samples);
        bar.set_position(status.samples_done);
        if status.samples_failed > 0 {
            bar.set_message(format!("{} failed", status.samples_failed));
        }
        last = Some(status);
    }
    bar.finish();
    last.context("the coordinator closed the watch without a status")
}

pub async fn run(args: RunArgs) -> Result<()> {
    let request = args.sweep.request()?;
    let workers = args.workers.unwrap_or_else(default_threads);
    if workers == 0 {
        bail!("--workers must be at least 1");
    }
    // The embedded cluster talks over loopback with a token nobody else sees.
    let token = random_token();
    let config = CoordinatorConfig::new(args.db.clone(), token.clone());
    let coordinator = Coordinator::start(config)
        .await
        .with_context(|| format!("cannot open the results database {}", args.db.display()))?;
    let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot open a loopback port")?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_coordinator(coordinator, listener, async {
        let _ = server_stopped.await;
    }));
    let (stop_worker, worker_stopped) = oneshot::channel::<()>();
    let worker_config = zonesweep_worker::WorkerConfig::new(&url, &token, workers, "embedded");
    let worker = tokio::spawn(zonesweep_worker::run(worker_config, async {
        let _ = worker_stopped.await;
    }));

    let mut client = Remote::connect(&url, &token, &LimitArgs::default()).await?;
    let submitted = client.submit(request).await?;
    eprintln!(
        "sweep {}: {} samples in {} jobs on {workers} local worker thread(s); results in {}",
        submitted.id,
        submitted.samples,
        submitted.jobs,
        args.db.display()
    );
    let started = std::time::Instant::now();
    let outcome = tokio::select! {
        status = follow(&mut client, &submitted.id) => status,
        _ = termination() => {
            let _ = client.cancel(&submitted.id).await;
            Err(anyhow::anyhow!("interrupted: sweep {} cancelled", submitted.id))
        }
    };
    let elapsed = started.elapsed();
    let view = match &outcome {
        Ok(_) => Some(client.query(&submitted.id).await?),
        Err(_) => None,
    };
    let _ = stop_worker.send(());
    let _ = worker.await;
    let _ = stop_server.send(());
    let _ = server.await;
    let status = outcome?;
    let view = view.expect("queried when the sweep finished");
    print!("{}", report::summary(&view));
    println!("{}", report::status_line(&status));
    println!(
        "{:.1} s, {:.0} samples/s",
        elapsed.as_secs_f64(),
        status.samples_done as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if status.state != SweepState::Done {
        println!("{}", submitted.id);
        bail!("sweep {} ended {}: {}", submitted.id, status.state, status.reason);
    }
    println!("{}", submitted.id);
    Ok(())
}

pub async fn submit(args: SubmitArgs) -> Result<()> {
    let request = args.sweep.request()?;
    let mut client = args.remote.connect().await?;
    let status = client.submit(request).await?;
    eprintln!("submitted: {} samples in {} jobs", status.samples, status.jobs);
    println!("{}", status.id);
    Ok(())
}

/// A connection to the coordinator or the database of `source`.
enum Source {
    Remote(Remote),
    File(Store),
}

async fn open(source: &SourceArgs) -> Result<Source> {
    match (&source.coordinator, &source.db) {
        (Some(url), _) => Ok(Source::Remote(Remote::connect(url, &source.token.require()?, &source.limits).await?)),
        (None, Some(path)) => Ok(Source::File(Store::open_existing(path)?)),
        (None, None) => bail!("give --coordinator URL or --db FILE"),
    }
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
}

pub async fn status(args: SweepRefArgs) -> Result<()> {
    let status = open(&args.source).await?.status(&sweep_id(&args.sweep)?).await?;
    println!("{}", report::status_line(&status));
    Ok(())
}

pub async fn list(source: SourceArgs) -> Result<()> {
    let sweeps = open(&source).await?.list().await?;
    if sweeps.is_empty() {
        println!("no sweeps");
    }
    for status in sweeps {
        println!("{}", report::status_line(&status));
    }
    Ok(())
}

pub async fn watch(args: RemoteSweepArgs) -> Result<()> {
    let sweep = sweep_id(&args.sweep)?;
    let mut client = args.remote.connect().await?;
    let status = follow(&mut client, &sweep).await?;
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

pub async fn zones(args: SweepRefArgs) -> Result<()> {
    let view = open(&args.source).await?.view(&sweep_id(&args.sweep)?).await?;
    print!("{}", report::zones_table(&view));
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
    print!("{}", report::peaking_table(&view, args.unit.as_deref(), scenario)?);
    Ok(())
}

pub async fn export(args: ExportArgs) -> Result<()> {
    let view = open(&args.sweep.source).await?.view(&sweep_id(&args.sweep.sweep)?).await?;
    let text = match args.format {
        ExportFormat::Json => report::export_json(&view)?,
        ExportFormat::Csv => report::export_csv(&view)?,
    };
    fs::write(&args.out, text).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
