//! `zonesweep`: the command-line program.

/// `eprintln!` that drops what standard error cannot take: a closed pipe
/// (`zonesweep run 2>&1 | head`) must not end a command whose work goes on,
/// as `eprintln!`'s panic would (root `clippy.toml` refuses `eprintln!`).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod client;
mod cluster;
mod data;
mod evaluate;
mod html_report;
mod report;
mod security;
mod spec;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The coordinator allocates and frees many small buffers per result
/// (decoding, merging); mimalloc does this markedly faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "zonesweep", version, about = "Monte Carlo uncertainty analysis of carbon-neutral spatial zoning")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log events are written to standard error: text for people,
    /// json (one object per line) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The least important events shown (default: info; warn for `run` and `extend`,
    /// which draws a progress bar; debug for `worker --verbose`). RUST_LOG,
    /// when set, overrides it (e.g. RUST_LOG=zonesweep_coordinator=debug).
    #[arg(long, global = true, value_enum)]
    log_level: Option<LogLevel>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Standard error for log events, whatever becomes of it: an event that
/// cannot be written (the reader of a pipe gone, a full disk) is dropped.
/// Handing the error to the subscriber would make it report the failure on
/// standard error itself, which panics: a worker would end because its log
/// collector did.
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Install the one subscriber: the program's own events at `level` (other
/// crates' warnings only), or what RUST_LOG says.
fn init_logging(format: LogFormat, level: LogLevel) {
    use tracing_subscriber::EnvFilter;
    let l = level.name();
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::new(directives),
        // tonic tells a failed TLS handshake (a client that does not trust
        // the certificate, or speaks plain HTTP/2) at DEBUG only.
        _ => EnvFilter::new(format!(
            "warn,zonesweep={l},zonesweep_coordinator={l},zonesweep_worker={l},tonic::transport::server::io_stream=debug"
        )),
    };
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogSink)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a sweep on this machine: an embedded coordinator and local workers.
    Run(cluster::RunArgs),
    /// Serve as the coordinator of a cluster.
    Coordinator(cluster::CoordinatorArgs),
    /// Serve as a worker of a cluster.
    Worker(cluster::WorkerArgs),
    /// Submit a sweep to a coordinator; prints its id.
    Submit(cluster::SubmitArgs),
    /// One line on a sweep's progress.
    Status(cluster::StatusArgs),
    /// Follow a sweep until it is final (a progress bar on a terminal, a
    /// line every 10 s otherwise), across coordinator restarts.
    Watch(cluster::WatchArgs),
    /// Cancel a sweep; what it has is kept, and `resume` continues it.
    Cancel(cluster::RemoteSweepArgs),
    /// Run a failed or cancelled sweep again from what it has (on this
    /// machine: `run --resume SWEEP`).
    Resume(cluster::RemoteSweepArgs),
    /// Add samples to a done sweep, giving exactly the sweep of the larger
    /// size with the same seed (not for a Latin hypercube).
    Extend(cluster::ExtendArgs),
    /// A sweep's provenance, or what it ran from (--spec, --config,
    /// --dataset DIR), so it can be run again.
    Show(cluster::ShowArgs),
    /// Delete a final sweep and everything stored of it.
    Delete(cluster::DeleteArgs),
    /// Delete every final sweep that ended more than --older-than DAYS ago.
    Prune(cluster::PruneArgs),
    /// The workers registered with a coordinator.
    Workers(cluster::RemoteArgs),
    /// Wait until a coordinator is ready to serve (gRPC health), for scripts.
    WaitReady(cluster::WaitReadyArgs),
    /// List the sweeps.
    List(cluster::ListArgs),
    /// How sure each unit's zone is (modal zone, intervals, robustness), and
    /// how many units each zone holds.
    Zones(cluster::ZonesArgs),
    /// Peaking-year statistics per unit and scenario, or of the region (--region).
    Peaking(cluster::PeakingArgs),
    /// Variance-based group sensitivity per unit: which groups of inputs
    /// drive the total score or the modal zone (a sweep whose spec has
    /// `sensitivity = { method = "saltelli" }`).
    Sensitivity(cluster::SensitivityArgs),
    /// Write a sweep's whole aggregate as JSON or CSV.
    Export(cluster::ExportArgs),
    /// An offline HTML report of a sweep (maps, figures as SVG and PNG,
    /// a sortable table of the units) with its CSV and GeoJSON files.
    Report(cluster::ReportArgs),
    /// Throughput figures of the system (printed, never asserted).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// One deterministic run of the model chain at nominal parameters.
    Evaluate(evaluate::EvaluateArgs),
    /// The ridge trace: standardized coefficients, VIFs and R² over the K grid.
    RidgeTrace(evaluate::RidgeTraceArgs),
    /// Datasets: validate one, or generate the synthetic demonstration panel.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Model configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Sweep specs: print the default one, or check what a file expands to.
    #[command(subcommand)]
    Spec(spec::SpecCommand),
    /// Access tokens with roles, for the coordinator's --tokens file.
    #[command(subcommand)]
    Token(security::TokenCommand),
    /// TLS certificates for the coordinator.
    #[command(subcommand)]
    Tls(security::TlsCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the default configuration (the paper's values) as TOML.
    Default,
}

/// Options shared by every command that runs the model.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// Dataset folder (units.csv, panel.csv, optional units.geojson); the
    /// embedded synthetic demonstration dataset when omitted.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Model configuration (TOML) overriding any subset of `zonesweep config default`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Run an async command on a multi-threaded runtime (the network side only;
/// samples run on the worker's own rayon pool).
fn block_on(future: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(future)
}

/// A reader that stops early (`zonesweep evaluate | head`) closes stdout, and
/// `println!` turns the failed write into a panic. The reader chose to stop:
/// end quietly with status 0 instead.
fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Whether `error` is a write to a pipe whose reader has gone: on standard
/// output, where a reader that stops early (`| head`) chose to.
fn stdout_closed(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

fn main() -> ExitCode {
    end_quietly_when_stdout_closes();
    let cli = Cli::parse();
    let default_level = match &cli.command {
        Command::Run(_) | Command::Extend(_) => LogLevel::Warn,
        Command::Worker(args) if args.verbose => LogLevel::Debug,
        _ => LogLevel::Info,
    };
    init_logging(cli.log_format, cli.log_level.unwrap_or(default_level));
    let outcome = match cli.command {
        Command::Run(args) => block_on(cluster::run(args)),
        Command::Coordinator(args) => block_on(cluster::coordinator(args)),
        Command::Worker(args) => block_on(cluster::worker(args)),
        Command::Submit(args) => block_on(cluster::submit(args)),
        Command::Status(args) => block_on(cluster::status(args)),
        Command::Watch(args) => block_on(cluster::watch(args)),
        Command::Cancel(args) => block_on(cluster::cancel(args)),
        Command::Resume(args) => block_on(cluster::resume(args)),
        Command::Extend(args) => block_on(cluster::extend(args)),
        Command::Show(args) => block_on(cluster::show(args)),
        Command::Delete(args) => block_on(cluster::delete(args)),
        Command::Prune(args) => block_on(cluster::prune(args)),
        Command::Workers(args) => block_on(cluster::workers(args)),
        Command::WaitReady(args) => block_on(cluster::wait_ready(args)),
        Command::List(args) => block_on(cluster::list(args)),
        Command::Zones(args) => block_on(cluster::zones(args)),
        Command::Peaking(args) => block_on(cluster::peaking(args)),
        Command::Sensitivity(args) => block_on(cluster::sensitivity(args)),
        Command::Export(args) => block_on(cluster::export(args)),
        Command::Report(args) => block_on(cluster::html_report(args)),
        Command::Bench(command) => block_on(bench::run(command)),
        Command::Evaluate(args) => evaluate::evaluate(&args),
        Command::RidgeTrace(args) => evaluate::ridge_trace(&args),
        Command::Data(command) => data::run(command),
        Command::Spec(command) => spec::run(command),
        Command::Token(command) => security::token(command),
        Command::Tls(command) => security::tls(command),
        Command::Config(ConfigCommand::Default) => {
            print!("{}", zonesweep_shared::model::config::Config::default_toml());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // A write to standard output (`export --out -`) the reader stopped.
        Err(error) if stdout_closed(&error) => ExitCode::SUCCESS,
        Err(error) => {
            note!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
