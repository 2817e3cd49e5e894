//! The coordinator's network edge, against the real binary on loopback:
//! idle connections are closed and bounded while clients and workers are
//! served, refusals fit in a gRPC status however much was wrong or sent,
//! and the health service wants the token like every other call.

mod common;

use std::collections::HashSet;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use zonesweep_proto::pb;
use zonesweep_proto::pb::sweeps_client::SweepsClient;

/// The most bytes of a refusal's message (the coordinator's wire budget).
const MAX_MESSAGE: usize = 4096;

/// A submission of the demonstration dataset as the repository ships it.
fn demo_submission() -> pb::SubmitRequest {
    let read = |name: &str| fs::read_to_string(demo_data_dir().join(name)).expect("the demo dataset");
    pb::SubmitRequest {
        units_csv: read("units.csv"),
        panel_csv: read("panel.csv"),
        samples: 4,
        seed: 1,
        has_seed: true,
        ..Default::default()
    }
}

/// Submit `request` with the token; the refusal.
fn refusal(cluster: &Cluster, request: pb::SubmitRequest) -> tonic::Status {
    runtime().block_on(async {
        let mut sweeps = SweepsClient::with_interceptor(channel(&cluster.url).await, bearer(&cluster.token()))
            .max_encoding_message_size(usize::MAX);
        sweeps.submit(request).await.expect_err("the submission is refused")
    })
}

/// Raise this process's soft limit of open files to the hard limit; the limit.
fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The socket inodes of TCP connections (not listeners) whose local port is `port`.
fn connection_inodes(port: u16) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port =
                fields.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            let listening = fields.get(3) == Some(&"0A");
            if local_port == Some(port) && !listening {
                inodes.extend(fields.get(9).and_then(|inode| inode.parse::<u64>().ok()));
            }
        }
    }
    inodes
}

/// The connections process `pid` holds open on its listening `port`.
fn open_connections(pid: u32, port: u16) -> usize {
    let inodes = connection_inodes(port);
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    entries
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let text = target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned();
            text.parse::<u64>().ok()
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

/// The HTTP/2 client preface and an empty SETTINGS frame: a connection
/// that speaks HTTP/2 and then never sends a request.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Thousands of idle connections (silent, or with the HTTP/2 preface and
/// nothing more) never hold more than the limit, are closed by the
/// coordinator after the handshake timeout, and neither a worker connected
/// before them nor a client or worker arriving during them is shut out.
#[test]
fn idle_connections_are_bounded_and_closed_while_clients_and_workers_are_served() {
    let files = raise_file_limit();
    let flood = usize::try_from(files.saturating_sub(300)).unwrap_or(usize::MAX).min(3000);
    assert!(flood >= 400, "this test needs about 3,300 open files; the hard limit is {files}");
    let limit = flood / 4;
    let options = CoordinatorOptions {
        max_connections: Some(limit),
        handshake_timeout: Some(2.0),
        ..CoordinatorOptions::fast_leases()
    };
    let mut cluster = Cluster::start(1, options);
    let first = cluster.submit(&["--samples", "4", "--job-size", "2"]);
    cluster.wait_done(&first);
    let pid = cluster.coordinator_pid();
    let address: SocketAddr = cluster.address().parse().expect("host:port");

    let mut idle = Vec::new();
    for i in 0..flood {
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(10)) else { continue };
        if i % 4 == 0 {
            let _ = stream.write_all(PREFACE);
        }
        idle.push(stream);
    }
    assert!(idle.len() >= flood / 2, "only {} of {flood} connections opened", idle.len());
    let open = open_connections(pid, address.port());
    assert!(open <= limit, "the coordinator holds {open} connections open; the limit is {limit}");

    // A worker arriving now, and a client: both get through.
    cluster.add_worker();
    poll_until("a client call to get through", MAX_WAIT, || {
        let output = cluster.cli(&["list"]);
        if output.status.success() { Ok(()) } else { Err(output.stderr) }
    });
    let open = open_connections(pid, address.port());
    assert!(open <= limit, "the coordinator holds {open} connections open; the limit is {limit}");

    // Every idle connection is closed by the coordinator (an end of file,
    // or a reset), none left waiting.
    for stream in &mut idle {
        stream.set_read_timeout(Some(MAX_WAIT)).expect("a read timeout");
        let mut sink = Vec::new();
        if let Err(e) = stream.read_to_end(&mut sink) {
            assert!(
                !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "an idle connection was still open after {MAX_WAIT:?}"
            );
        }
    }
    drop(idle);

    // The worker connected before the flood and the one that came during it
    // run a sweep to its end.
    let second = cluster.submit(&["--samples", "8", "--job-size", "2"]);
    cluster.wait_done(&second);
    let open = open_connections(pid, address.port());
    assert!(open <= 8, "after the flood the coordinator still holds {open} connections");
    assert!(cluster.worker_running(0) && cluster.worker_running(1));
}

/// One trailing comma in the panel header makes a problem of every row:
/// the refusal names the first ones and how many more, within a few KB,
/// and the coordinator's log lists every one.
#[test]
fn a_refusal_with_thousands_of_problems_fits_in_a_status() {
    let cluster = Cluster::start(0, CoordinatorOptions::default());
    let mut request = demo_submission();
    let (header, rows) = request.panel_csv.split_once('\n').expect("a header line");
    request.panel_csv = format!("{header},\n{rows}");
    let status = refusal(&cluster, request);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let message = status.message();
    assert!(message.len() <= MAX_MESSAGE, "a message of {} bytes", message.len());
    let count: usize = message
        .strip_prefix("the dataset has ")
        .and_then(|rest| rest.split_once(" problem(s):"))
        .and_then(|(count, _)| count.parse().ok())
        .unwrap_or_else(|| panic!("the message does not count the problems: {message}"));
    assert!(count > 1000, "{count} problems");
    let shown: Vec<&str> = message.lines().filter(|l| l.starts_with("  - ")).collect();
    assert!(shown.len() >= 5 && shown[0].contains("panel.csv line"), "{message}");
    assert!(message.contains(&format!("… and {} more", count - shown.len())), "{message}");

    let listed = poll_until("the coordinator to log every problem", MAX_WAIT, || {
        let log = cluster.coordinator_log();
        let listed = log.lines().filter(|l| l.starts_with("  - ")).count();
        if listed >= count { Ok(listed) } else { Err(listed) }
    });
    assert_eq!(listed, count);
}

/// Megabytes of junk in a submission are never sent back, nor logged
/// whole: neither in a CSV header, nor in a TOML line, nor in the
/// configuration.
#[test]
fn a_refusal_does_not_echo_the_junk_it_was_sent() {
    let cluster = Cluster::start(0, CoordinatorOptions::default());
    let junk = "Zq7".repeat(4 << 20);
    let mut in_units = demo_submission();
    in_units.units_csv = junk.clone();
    let mut in_spec = demo_submission();
    in_spec.spec_toml = junk.clone();
    let mut in_config = demo_submission();
    in_config.config_toml = format!("x = \"{junk}");
    for (what, request) in [("units.csv", in_units), ("spec", in_spec), ("config", in_config)] {
        let status = refusal(&cluster, request);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        let message = status.message();
        assert!(message.len() <= MAX_MESSAGE, "{what}: a message of {} bytes", message.len());
        // At most a line's worth (300 bytes) of it is quoted.
        assert!(!message.contains(&"Zq7".repeat(100)), "{what}: the junk is echoed: {message}");
    }
    let log = cluster.coordinator_log();
    assert!(!log.contains(&"Zq7".repeat(400)), "the log holds the junk whole");
}

/// The health service needs no token (Kubernetes probes send none) and
/// tells nothing but SERVING; every other call still needs the token.
#[test]
fn health_answers_without_a_token_and_tells_only_serving() {
    let cluster = Cluster::start(0, CoordinatorOptions::default());
    runtime().block_on(async {
        let channel = channel(&cluster.url).await;
        let request = || HealthCheckRequest { service: "zonesweep.v1.Sweeps".into() };
        let answer = HealthClient::new(channel.clone()).check(request()).await.expect("health without a token");
        assert_eq!(answer.into_inner().status, ServingStatus::Serving as i32);
        let mut wrong = HealthClient::with_interceptor(channel.clone(), bearer("not-the-token"));
        let overall = wrong.check(HealthCheckRequest { service: String::new() }).await.expect("overall health");
        assert_eq!(overall.into_inner().status, ServingStatus::Serving as i32);
        let list = SweepsClient::new(channel).list(pb::ListRequest {}).await.expect_err("list without a token");
        assert_eq!(list.code(), Code::Unauthenticated, "{list:?}");
    });
}
