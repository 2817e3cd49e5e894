//! A harness for end-to-end tests of the real `zonesweep` binary: a
//! coordinator on loopback with a temporary database and a token file, local
//! worker processes, CLI helpers, polls with deadlines, kill -9 and restarts.
//!
//! Nothing here waits without a deadline, and dropping a [`Cluster`] kills
//! every process it started (printing their logs when the test is failing).

#![allow(dead_code)]
// The harness reports to the test runner, whose standard error stays open.
#![allow(clippy::disallowed_macros)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest any single wait in these tests may last.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// How long a CLI command (submit, status, export, …) may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a coordinator may take to open its database and bind.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Between two polls of a sweep's status.
pub const POLL_INTERVAL: Duration = Duration::from_millis(150);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_zonesweep")
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demonstration dataset shipped in the repository (and embedded in the binary).
pub fn demo_data_dir() -> PathBuf {
    manifest_dir().join("data/demo")
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Whether the binary under test is a debug build (it is built with the
/// same profile as this test): the model runs 10–30× slower there.
pub fn debug_build() -> bool {
    cfg!(debug_assertions)
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The last non-empty line of stdout (where `submit` and `run` print the sweep id).
    pub fn last_line(&self) -> &str {
        self.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
    }
}

fn read_all_in_thread(mut reader: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Run a command to its end, killing it and failing the test if it takes
/// longer than `timeout`.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    let description = format!("{command:?}");
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    let stdout = read_all_in_thread(child.stdout.take().expect("piped stdout"));
    let stderr = read_all_in_thread(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr.join().unwrap_or_default();
                panic!("{description} did not finish within {timeout:?}; killed it. stderr:\n{err}");
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// A `zonesweep` command with no token in its environment.
pub fn zonesweep_command(args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command.args(args).env_remove("ZONESWEEP_TOKEN");
    command
}

/// Run `zonesweep ARGS` with a deadline.
pub fn zonesweep(args: &[&str]) -> Output {
    run_with_timeout(zonesweep_command(args), CLI_TIMEOUT)
}

/// Require success (and no panic); the output.
pub fn ok(args: &[&str]) -> Output {
    require_ok(args, zonesweep(args))
}

/// `zonesweep ARGS` run in `dir` (for the files it reads and writes
/// there, such as the default `zonesweep.redb`), required to succeed.
pub fn ok_in(dir: &Path, args: &[&str]) -> Output {
    let mut command = zonesweep_command(args);
    command.current_dir(dir);
    require_ok(args, run_with_timeout(command, MAX_WAIT))
}

/// `zonesweep ARGS` run in `dir`, required to fail cleanly; the stderr.
pub fn fails_in(dir: &Path, args: &[&str]) -> String {
    let mut command = zonesweep_command(args);
    command.current_dir(dir);
    require_failure(args, run_with_timeout(command, CLI_TIMEOUT))
}

fn require_ok(args: &[&str], output: Output) -> Output {
    assert!(
        output.status.success(),
        "zonesweep {args:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        output.stdout,
        output.stderr
    );
    assert!(!output.stderr.contains("panicked"), "zonesweep {args:?} panicked:\n{}", output.stderr);
    output
}

/// Require a clean failure: a non-zero exit code (not a signal), no panic,
/// a message on stderr. The stderr.
pub fn fails(args: &[&str]) -> String {
    require_failure(args, zonesweep(args))
}

fn require_failure(args: &[&str], output: Output) -> String {
    assert!(!output.status.success(), "zonesweep {args:?} should fail; stdout:\n{}", output.stdout);
    assert!(output.status.code().is_some_and(|c| c != 0), "zonesweep {args:?} ended by a signal: {:?}", output.status);
    assert!(!output.stderr.contains("panicked"), "zonesweep {args:?} panicked:\n{}", output.stderr);
    assert!(!output.stderr.trim().is_empty(), "zonesweep {args:?} failed without a message");
    output.stderr
}

/// Wait for a child to exit, at most `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Poll `probe` until it returns `Ok`, failing the test with `what` and
/// the last value seen when `timeout` passes.
pub fn poll_until<T, L: std::fmt::Debug>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, L>) -> T {
    assert!(timeout <= MAX_WAIT, "a wait of {timeout:?} is longer than the {MAX_WAIT:?} allowed");
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(value) => return value,
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:?}");
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// One `status` line, parsed:
/// `ID  STATE  DONE/SAMPLES samples (F failed), jobs D/J done, L leased, seed S`
/// and an indented reason on the next line when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepStatus {
    pub id: String,
    pub state: String,
    pub samples_done: u64,
    pub samples: u64,
    pub samples_failed: u64,
    pub jobs_done: u64,
    pub jobs: u64,
    pub jobs_leased: u64,
    pub seed: u64,
    pub reason: String,
}

impl SweepStatus {
    pub fn parse(text: &str) -> SweepStatus {
        let fail = || -> ! { panic!("not a status line: {text:?}") };
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_else(|| fail());
        let reason = lines.map(str::trim).collect::<Vec<_>>().join("\n");
        let cleaned: String = first.chars().map(|c| if matches!(c, '/' | '(' | ')' | ',') { ' ' } else { c }).collect();
        let words: Vec<&str> = cleaned.split_whitespace().collect();
        // id state done samples "samples" failed "failed" "jobs" jd j "done" leased "leased" "seed" seed
        if words.len() != 15 || words[4] != "samples" || words[7] != "jobs" || words[13] != "seed" {
            fail();
        }
        let number = |i: usize| -> u64 { words[i].parse().unwrap_or_else(|_| fail()) };
        SweepStatus {
            id: words[0].to_owned(),
            state: words[1].to_owned(),
            samples_done: number(2),
            samples: number(3),
            samples_failed: number(5),
            jobs_done: number(8),
            jobs: number(9),
            jobs_leased: number(11),
            seed: number(14),
            reason,
        }
    }

    pub fn is_final(&self) -> bool {
        self.state != "running"
    }
}

/// Read and parse an exported JSON document.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// samples_ok + every failure count of an exported JSON aggregate.
pub fn exported_samples(export_json: &str) -> u64 {
    let document = json(export_json);
    let aggregate = &document["aggregate"];
    let ok = aggregate["samples_ok"].as_u64().expect("samples_ok");
    let failed: u64 = aggregate["failures"]
        .as_object()
        .expect("failures")
        .values()
        .map(|f| f["count"].as_u64().expect("a failure count"))
        .sum();
    ok + failed
}

/// A sweep's JSON and CSV exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exports {
    pub json: String,
    pub csv: String,
}

/// Assert two texts are equal without printing megabytes: the first
/// differing line is shown.
#[track_caller]
pub fn assert_same_text(what: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    let line = expected.lines().zip(actual.lines()).position(|(a, b)| a != b);
    let detail = match line {
        Some(i) => format!(
            "first difference at line {}:\n  expected: {}\n  actual:   {}",
            i + 1,
            expected.lines().nth(i).unwrap_or(""),
            actual.lines().nth(i).unwrap_or("")
        ),
        None => format!("one is a prefix of the other ({} vs {} bytes)", expected.len(), actual.len()),
    };
    panic!("{what} differ: {detail}");
}

/// Export a sweep as JSON and CSV from a source (`--coordinator URL
/// --token-file F` or `--db FILE`).
pub fn export_from(dir: &Path, sweep: &str, source: &[&str]) -> Exports {
    let stamp = format!("{}-{:?}", sweep, Instant::now()).replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let mut texts = Vec::new();
    for format in ["json", "csv"] {
        let out = dir.join(format!("export-{stamp}.{format}"));
        let mut args = vec!["export", sweep, "--format", format, "--out", path_str(&out)];
        args.extend_from_slice(source);
        ok(&args);
        texts.push(fs::read_to_string(&out).unwrap_or_else(|e| panic!("cannot read {}: {e}", out.display())));
        let _ = fs::remove_file(&out);
    }
    let csv = texts.pop().unwrap();
    let json = texts.pop().unwrap();
    Exports { json, csv }
}

/// `zonesweep run` on this machine: the sweep id and its exports from its database.
pub fn run_locally(
    dir: &Path,
    db_name: &str,
    samples: u64,
    seed: u64,
    job_size: u64,
    workers: usize,
    extra: &[&str],
) -> (String, Exports) {
    let db = dir.join(db_name);
    let (samples, seed, job_size, workers) =
        (samples.to_string(), seed.to_string(), job_size.to_string(), workers.to_string());
    let mut args = vec![
        "run",
        "--db",
        path_str(&db),
        "--samples",
        &samples,
        "--seed",
        &seed,
        "--job-size",
        &job_size,
        "--threads",
        &workers,
    ];
    args.extend_from_slice(extra);
    let mut command = zonesweep_command(&args);
    command.current_dir(dir);
    let output = run_with_timeout(command, MAX_WAIT);
    assert!(output.status.success(), "zonesweep {args:?} failed:\n{}\n{}", output.stdout, output.stderr);
    let sweep = output.last_line().to_owned();
    assert!(sweep.starts_with("sw-"), "`run` should end with the sweep id, not {sweep:?}:\n{}", output.stdout);
    let exports = export_from(dir, &sweep, &["--db", path_str(&db)]);
    (sweep, exports)
}

/// Coordinator options.
#[derive(Clone, Debug, Default)]
pub struct CoordinatorOptions {
    pub job_size: Option<u64>,
    pub lease_timeout: Option<f64>,
    pub heartbeat: Option<f64>,
    pub max_attempts: Option<u32>,
    pub max_connections: Option<usize>,
    pub handshake_timeout: Option<f64>,
}

impl CoordinatorOptions {
    /// Short leases, so a killed worker costs seconds, not the default 20.
    pub fn fast_leases() -> CoordinatorOptions {
        CoordinatorOptions { lease_timeout: Some(3.0), heartbeat: Some(0.5), ..CoordinatorOptions::default() }
    }

    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(v) = self.job_size {
            args.extend(["--job-size".to_owned(), v.to_string()]);
        }
        if let Some(v) = self.lease_timeout {
            args.extend(["--lease-timeout".to_owned(), v.to_string()]);
        }
        if let Some(v) = self.heartbeat {
            args.extend(["--heartbeat".to_owned(), v.to_string()]);
        }
        if let Some(v) = self.max_attempts {
            args.extend(["--max-attempts".to_owned(), v.to_string()]);
        }
        if let Some(v) = self.max_connections {
            args.extend(["--max-connections".to_owned(), v.to_string()]);
        }
        if let Some(v) = self.handshake_timeout {
            args.extend(["--handshake-timeout".to_owned(), v.to_string()]);
        }
        args
    }
}

/// One running process with its log file.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
    }
}

/// A coordinator with workers on loopback, in a temporary directory.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub db: PathBuf,
    pub token_file: PathBuf,
    pub url: String,
    options: CoordinatorOptions,
    coordinator: Option<Process>,
    workers: Vec<Option<Process>>,
    /// Every process ever started, for the logs on failure.
    logs: Vec<(String, PathBuf)>,
    started: usize,
}

impl Cluster {
    /// A coordinator on 127.0.0.1:0 and `workers` workers of one thread each.
    pub fn start(workers: usize, options: CoordinatorOptions) -> Cluster {
        let dir = tempfile::Builder::new().prefix("zonesweep-e2e-").tempdir().expect("a temporary directory");
        let db = dir.path().join("zonesweep.redb");
        let token_file = dir.path().join("token");
        let token = unique_token();
        fs::write(&token_file, format!("{token}\n")).expect("write the token file");
        let mut cluster = Cluster {
            dir,
            db,
            token_file,
            url: String::new(),
            options,
            coordinator: None,
            workers: Vec::new(),
            logs: Vec::new(),
            started: 0,
        };
        cluster.start_coordinator("127.0.0.1:0").unwrap_or_else(|e| panic!("the coordinator did not start: {e}"));
        for _ in 0..workers {
            cluster.add_worker();
        }
        cluster
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn token(&self) -> String {
        fs::read_to_string(&self.token_file).expect("the token file").trim().to_owned()
    }

    fn log_path(&mut self, name: &str) -> PathBuf {
        self.started += 1;
        self.dir.path().join(format!("{:02}-{name}.log", self.started))
    }

    /// The coordinator's `host:port`.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Start the coordinator listening on `listen`; waits for its
    /// "listening" line. `Err` (with its log) when it exits first.
    fn start_coordinator(&mut self, listen: &str) -> Result<(), String> {
        assert!(self.coordinator.is_none(), "a coordinator is already running");
        let log = self.log_path("coordinator");
        let log_file = fs::File::create(&log).expect("create the coordinator log");
        let mut args: Vec<String> = vec![
            "coordinator".into(),
            "--listen".into(),
            listen.into(),
            "--db".into(),
            path_str(&self.db).into(),
            "--token-file".into(),
            path_str(&self.token_file).into(),
        ];
        args.extend(self.options.args());
        let mut child = Command::new(binary())
            .args(&args)
            .env_remove("ZONESWEEP_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start the coordinator");
        self.logs.push(("coordinator".into(), log.clone()));
        // Read stdout in a thread (it keeps draining it) and wait for the line.
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let url = loop {
            match receiver.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("coordinator listening on ") {
                        let url = rest.split_whitespace().next().unwrap_or_default().to_owned();
                        break url;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                let text = fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("the coordinator exited ({status}) before listening:\n{text}"));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("the coordinator did not listen within {START_TIMEOUT:?}:\n{text}"));
            }
        };
        assert!(url.starts_with("http://127.0.0.1:"), "unexpected coordinator URL {url:?}");
        self.url = url;
        self.coordinator = Some(Process { name: "coordinator".into(), child, log });
        Ok(())
    }

    /// Start one more worker (`--threads 1`); its index.
    pub fn add_worker(&mut self) -> usize {
        let index = self.workers.len();
        let process = self.spawn_worker(index);
        self.workers.push(Some(process));
        index
    }

    fn spawn_worker(&mut self, index: usize) -> Process {
        let name = format!("worker-{index}");
        let log = self.log_path(&name);
        let log_file = fs::File::create(&log).expect("create a worker log");
        let child = Command::new(binary())
            .args([
                "worker",
                "--coordinator",
                &self.url,
                "--threads",
                "1",
                "--token-file",
                path_str(&self.token_file),
                "--verbose",
            ])
            .env_remove("ZONESWEEP_TOKEN")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone a file handle"))
            .stderr(log_file)
            .spawn()
            .expect("start a worker");
        self.logs.push((name.clone(), log.clone()));
        Process { name, child, log }
    }

    pub fn coordinator_pid(&self) -> u32 {
        self.coordinator.as_ref().expect("a running coordinator").child.id()
    }

    /// kill -9 the coordinator and reap it.
    pub fn kill_coordinator(&mut self) {
        let mut process = self.coordinator.take().expect("a running coordinator");
        process.kill();
    }

    /// SIGTERM the coordinator and wait for it to exit (at most `timeout`); its exit status.
    pub fn terminate_coordinator(&mut self, timeout: Duration) -> ExitStatus {
        let mut process = self.coordinator.take().expect("a running coordinator");
        signal(process.child.id(), "TERM");
        match wait_timeout(&mut process.child, timeout) {
            Some(status) => status,
            None => {
                process.kill();
                panic!("the coordinator did not stop within {timeout:?} of SIGTERM");
            }
        }
    }

    /// Start the coordinator again on the same database, on its old port if
    /// that is still free (the workers then carry on by themselves);
    /// otherwise on a new port, with every live worker restarted on the new
    /// URL. Whether the old port was kept.
    pub fn restart_coordinator(&mut self) -> bool {
        let old = self.address().to_owned();
        match self.start_coordinator(&old) {
            Ok(()) => true,
            Err(error) => {
                eprintln!("restarting on {old} failed, using a new port: {error}");
                self.start_coordinator("127.0.0.1:0")
                    .unwrap_or_else(|e| panic!("the coordinator did not restart: {e}"));
                for index in 0..self.workers.len() {
                    if let Some(mut process) = self.workers[index].take() {
                        process.kill();
                        let process = self.spawn_worker(index);
                        self.workers[index] = Some(process);
                    }
                }
                false
            }
        }
    }

    /// kill -9 worker `index` and reap it.
    pub fn kill_worker(&mut self, index: usize) {
        let mut process = self.workers[index].take().expect("a running worker");
        process.kill();
    }

    /// What the running coordinator has written to standard error so far.
    pub fn coordinator_log(&self) -> String {
        let path = self.coordinator.as_ref().expect("a running coordinator").log.clone();
        fs::read_to_string(path).unwrap_or_default()
    }

    /// What worker `index` has logged so far (it runs with `--verbose`).
    pub fn worker_log(&self, index: usize) -> String {
        let name = format!("worker-{index}");
        let path = self.logs.iter().rev().find(|(n, _)| *n == name).map(|(_, p)| p.clone());
        path.map(|p| fs::read_to_string(p).unwrap_or_default()).unwrap_or_default()
    }

    /// The job (`SWEEP#INDEX`) worker `index` has leased and not yet
    /// finished, according to its log.
    pub fn job_held_by(&self, index: usize) -> Option<String> {
        let log = self.worker_log(index);
        let mut held: Vec<String> = Vec::new();
        for line in log.lines() {
            if let Some(rest) = line.split_once("leased job ").map(|(_, rest)| rest) {
                held.extend(rest.split_whitespace().next().map(str::to_owned));
            } else if ["completed", "dropping", "discarding", "failing"].iter().any(|w| line.contains(w)) {
                held.retain(|job| !line.contains(&format!("job {job} ")));
            }
        }
        held.pop()
    }

    pub fn worker_running(&mut self, index: usize) -> bool {
        match &mut self.workers[index] {
            Some(process) => process.child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// `--coordinator URL --token-file F`.
    pub fn remote(&self) -> Vec<String> {
        vec!["--coordinator".into(), self.url.clone(), "--token-file".into(), path_str(&self.token_file).into()]
    }

    /// Run a CLI command with ` --coordinator URL --token-file F` appended.
    pub fn cli(&self, args: &[&str]) -> Output {
        let remote = self.remote();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(remote.iter().map(String::as_str));
        zonesweep(&all)
    }

    /// Like [`Cluster::cli`], requiring success.
    pub fn cli_ok(&self, args: &[&str]) -> Output {
        let remote = self.remote();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(remote.iter().map(String::as_str));
        ok(&all)
    }

    /// `submit ARGS`; the sweep id.
    pub fn submit(&self, args: &[&str]) -> String {
        let mut all = vec!["submit"];
        all.extend_from_slice(args);
        let output = self.cli_ok(&all);
        let id = output.last_line().to_owned();
        assert!(id.starts_with("sw-"), "submit should print the sweep id last, not {id:?}:\n{}", output.stdout);
        id
    }

    /// The default sweep (demo dataset, default spec) with these overrides.
    pub fn submit_default(&self, samples: u64, seed: u64, job_size: u64) -> String {
        self.submit(&[
            "--samples",
            &samples.to_string(),
            "--seed",
            &seed.to_string(),
            "--job-size",
            &job_size.to_string(),
        ])
    }

    /// The sweep's status from the coordinator.
    pub fn status(&self, sweep: &str) -> SweepStatus {
        SweepStatus::parse(&self.cli_ok(&["status", sweep]).stdout)
    }

    /// The sweep's status read from the database file (no coordinator may hold it).
    pub fn status_from_db(&self, sweep: &str) -> SweepStatus {
        SweepStatus::parse(&ok(&["status", sweep, "--db", path_str(&self.db)]).stdout)
    }

    /// Poll the status until `accept` holds.
    pub fn wait_for(
        &self,
        sweep: &str,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&SweepStatus) -> bool,
    ) -> SweepStatus {
        poll_until(what, timeout, || {
            let status = self.status(sweep);
            if accept(&status) { Ok(status) } else { Err(Box::new(status)) }
        })
    }

    /// Poll until the sweep is final (done, failed or cancelled).
    pub fn wait_final(&self, sweep: &str) -> SweepStatus {
        self.wait_for(sweep, &format!("sweep {sweep} to end"), MAX_WAIT, SweepStatus::is_final)
    }

    /// Poll until the sweep is done, failing the test if it ends otherwise.
    pub fn wait_done(&self, sweep: &str) -> SweepStatus {
        let status = self.wait_final(sweep);
        assert_eq!(status.state, "done", "sweep {sweep} ended {}: {status:?}", status.state);
        status
    }

    /// The sweep's exports from the coordinator.
    pub fn export(&self, sweep: &str) -> Exports {
        let remote = self.remote();
        let source: Vec<&str> = remote.iter().map(String::as_str).collect();
        export_from(self.dir(), sweep, &source)
    }

    /// The sweep's exports read from the database file.
    pub fn export_from_db(&self, sweep: &str) -> Exports {
        export_from(self.dir(), sweep, &["--db", path_str(&self.db)])
    }

    /// Print the tail of every log (used when a test fails).
    pub fn dump_logs(&self) {
        for (name, path) in &self.logs {
            let text = fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("----- {name} ({}) last {} lines -----", path.display(), tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in self.workers.iter_mut().flatten() {
            process.kill();
        }
        if let Some(process) = &mut self.coordinator {
            process.kill();
        }
        if thread::panicking() {
            self.dump_logs();
            // Keep the database and logs for a post-mortem.
            self.dir.disable_cleanup(true);
            eprintln!("kept {} for inspection", self.dir.path().display());
        }
    }
}

/// A token no other cluster of this run shares.
pub fn unique_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    format!("e2e-{}-{nanos:x}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Send a signal (`TERM`, `KILL`, …) to a process.
pub fn signal(pid: u32, name: &str) {
    let output = run_with_timeout(
        {
            let mut command = Command::new("kill");
            command.args([format!("-{name}"), pid.to_string()]);
            command
        },
        Duration::from_secs(10),
    );
    assert!(output.status.success(), "kill -{name} {pid} failed: {}", output.stderr);
}

/// A runtime for tests that talk gRPC themselves.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}

/// A plain channel to the coordinator at `url`, every call bounded by a minute.
pub async fn channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("a URL")
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// The interceptor that sends `token`.
pub fn bearer(token: &str) -> zonesweep_proto::auth::BearerToken {
    zonesweep_proto::auth::BearerToken::new(token).expect("a printable token")
}
