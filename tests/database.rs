//! The database file under damage, with the real `zonesweep` binary: no
//! damaged file makes `list`, `export` or `coordinator` panic (exit 101),
//! no flipped bit changes an export (it is refused with DATA_LOSS instead),
//! an empty file is refused, a query never writes to the file, and the
//! file is private (mode 0600).

// Progress notes go to the test runner, whose standard error stays open.
#![allow(clippy::disallowed_macros)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use zonesweep_coordinator::offline;
use zonesweep_coordinator::store::Store;
use zonesweep_proto::convert::encode_aggregate_packed;
use zonesweep_proto::ids::SweepId;

const PAGE: usize = 4096;

/// A finished sweep in a cleanly closed database: the file's bytes, the
/// sweep id and its JSON export.
struct Real {
    dir: tempfile::TempDir,
    bytes: Vec<u8>,
    sweep: String,
    export: String,
}

fn real_database() -> Real {
    let dir = tempfile::tempdir().unwrap();
    let (sweep, exports) = run_locally(dir.path(), "real.redb", 12, 7, 4, 1, &[]);
    let bytes = fs::read(dir.path().join("real.redb")).unwrap();
    Real { dir, bytes, sweep, export: exports.json }
}

/// What a command on a (possibly damaged) file did: it must end with a code
/// that is not a panic's, and without printing one.
#[track_caller]
fn assert_no_panic(what: &str, output: &Output) {
    assert_ne!(output.status.code(), Some(101), "{what}: exit 101\n{}", output.stderr);
    assert!(output.status.code().is_some(), "{what}: ended by a signal: {:?}", output.status);
    assert!(!output.stderr.contains("panicked"), "{what}: panicked\n{}", output.stderr);
    if !output.status.success() {
        assert!(!output.stderr.trim().is_empty(), "{what}: failed without a message");
    }
}

/// `export --db` of `copy`: `Ok(json)` or `Err(stderr)`, never a panic, and
/// the file is left byte for byte.
fn export_db(dir: &Path, copy: &Path, sweep: &str, what: &str) -> Result<String, String> {
    let before = fs::read(copy).unwrap();
    let out = dir.join("export.json");
    let _ = fs::remove_file(&out);
    let output = zonesweep(&["export", sweep, "--db", path_str(copy), "--format", "json", "--out", path_str(&out)]);
    assert_no_panic(&format!("export ({what})"), &output);
    assert_eq!(fs::read(copy).unwrap(), before, "export ({what}) wrote to the database");
    if output.status.success() { Ok(fs::read_to_string(&out).unwrap()) } else { Err(output.stderr) }
}

/// `coordinator --db copy`: it listens (and is stopped) or exits with a
/// message, never with a panic.
fn coordinator_on(dir: &Path, copy: &Path, what: &str) {
    let token = dir.join("token");
    fs::write(&token, "damage-test-token\n").unwrap();
    let log = dir.join("coordinator.log");
    let out = dir.join("coordinator.out");
    let mut child = Command::new(binary())
        .args(["coordinator", "--listen", "127.0.0.1:0", "--db", path_str(copy), "--token-file", path_str(&token)])
        .env_remove("ZONESWEEP_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::from(fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = fs::read_to_string(&log).unwrap();
            let output = Output { status, stdout: fs::read_to_string(&out).unwrap(), stderr };
            assert!(!status.success(), "coordinator ({what}) exited 0 without being stopped");
            assert!(!output.stderr.contains("unexpected argument"), "{}", output.stderr);
            assert_no_panic(&format!("coordinator ({what})"), &output);
            return;
        }
        if fs::read_to_string(&out).unwrap().contains("coordinator listening on") {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = fs::read_to_string(&log).unwrap();
            assert!(!stderr.contains("panicked"), "coordinator ({what}) panicked:\n{stderr}");
            return;
        }
        assert!(Instant::now() < deadline, "coordinator ({what}) neither listened nor exited");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pages of `bytes` that hold something (not all zeros).
fn used_pages(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len().div_ceil(PAGE))
        .filter(|page| bytes[page * PAGE..((page + 1) * PAGE).min(bytes.len())].iter().any(|&b| b != 0))
        .collect()
}

/// At most `n` elements of `items`, evenly spread.
fn spread<T: Copy>(items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    (0..n).map(|i| items[i * items.len() / n]).collect()
}

#[test]
fn truncated_and_overwritten_databases_never_crash_list_export_or_the_coordinator() {
    let real = real_database();
    let dir = real.dir.path();
    let good = &real.bytes;
    let mut copies: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [1, 9, 100, 512, PAGE, PAGE + 1, good.len() / 3, good.len() / 2, good.len() - PAGE, good.len() - 1] {
        copies.push((format!("truncated to {cut} bytes"), good[..cut].to_vec()));
    }
    for page in spread(&used_pages(good), 24) {
        let mut junk = good.clone();
        let end = ((page + 1) * PAGE).min(good.len());
        for (i, byte) in junk[page * PAGE..end].iter_mut().enumerate() {
            *byte = (i as u8).wrapping_mul(151).wrapping_add(13);
        }
        copies.push((format!("page {page} overwritten with junk"), junk));
    }
    let copy = dir.join("copy.redb");
    for (what, bytes) in &copies {
        fs::write(&copy, bytes).unwrap();
        let listed = zonesweep(&["list", "--db", path_str(&copy)]);
        assert_no_panic(&format!("list ({what})"), &listed);
        assert_eq!(&fs::read(&copy).unwrap(), bytes, "list ({what}) wrote to the database");
        if let Ok(json) = export_db(dir, &copy, &real.sweep, what) {
            assert_same_text(&format!("the export of a copy whose {what}"), &real.export, &json);
        }
        coordinator_on(dir, &copy, what);
    }
}

#[test]
fn a_flipped_bit_never_changes_an_export() {
    let real = real_database();
    let dir = real.dir.path();
    let good = &real.bytes;
    // Where the stored aggregate lies in the file: its checksum, then its encoding.
    let aggregate = {
        let store = Store::open_existing(&real.dir.path().join("real.redb")).unwrap();
        offline::query(&store, &SweepId::parse(&real.sweep).unwrap()).unwrap().aggregate
    };
    let encoded = encode_aggregate_packed(&aggregate);
    let start =
        good.windows(encoded.len()).position(|w| w == encoded.as_slice()).expect("the aggregate is in the file");
    let value = (start - 32)..(start + encoded.len());

    let copy = dir.join("copy.redb");
    let flip = |bit: usize| {
        let mut bytes = good.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        fs::write(&copy, &bytes).unwrap();
    };
    // Inside the stored aggregate: refused with DATA_LOSS, naming the sweep.
    let value_bits: Vec<usize> = (value.start * 8..value.end * 8).collect();
    for bit in spread(&value_bits, 60) {
        flip(bit);
        let what = format!("bit {bit} of the aggregate flipped");
        let stderr = export_db(dir, &copy, &real.sweep, &what).expect_err(&what);
        assert!(stderr.contains(&real.sweep) && stderr.contains("checksum does not match"), "{what}:\n{stderr}");
    }
    // Anywhere in the used pages: the same export, or a clean refusal.
    let used_bits: Vec<usize> = used_pages(good)
        .into_iter()
        .flat_map(|page| page * PAGE * 8..((page + 1) * PAGE).min(good.len()) * 8)
        .collect();
    let mut refused = 0;
    for bit in spread(&used_bits, 240) {
        flip(bit);
        match export_db(dir, &copy, &real.sweep, &format!("bit {bit} flipped")) {
            Ok(json) => assert_same_text(&format!("the export with bit {bit} flipped"), &real.export, &json),
            Err(_) => refused += 1,
        }
    }
    eprintln!("{refused} of 240 flips across the file were refused; the others changed nothing exported");
}

#[test]
fn an_empty_database_file_is_refused_not_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.redb");
    fs::write(&empty, b"").unwrap();
    let stderr = fails(&["list", "--db", path_str(&empty)]);
    assert!(stderr.contains("empty file (0 bytes)") && stderr.contains("restore it from a backup"), "{stderr}");
    let token = dir.path().join("token");
    fs::write(&token, "t0k3n\n").unwrap();
    let args = ["coordinator", "--listen", "127.0.0.1:0", "--db", path_str(&empty), "--token-file", path_str(&token)];
    let output = zonesweep(&args);
    assert!(!output.status.success() && output.status.code() != Some(101), "{output:?}");
    assert!(output.stderr.contains("empty file (0 bytes)"), "{}", output.stderr);
    assert!(!output.stdout.contains("listening"), "{}", output.stdout);
    assert_eq!(fs::metadata(&empty).unwrap().len(), 0);
}

fn mode(path: &PathBuf) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_query_never_repairs_or_writes_and_the_file_is_private() {
    let mut cluster = Cluster::start(0, CoordinatorOptions::default());
    assert_eq!(mode(&cluster.db), 0o600, "the coordinator creates its database private");
    let sweep = cluster.submit_default(8, 7, 4);
    cluster.kill_coordinator();
    let db = path_str(&cluster.db).to_owned();
    let before = fs::read(&cluster.db).unwrap();
    for args in [vec!["list", "--db", &db], vec!["status", &sweep, "--db", &db]] {
        let stderr = fails(&args);
        assert!(stderr.contains("needs a repair") && stderr.contains("start the coordinator on it"), "{stderr}");
    }
    assert_eq!(fs::read(&cluster.db).unwrap(), before, "a query of a crashed database leaves it byte for byte");
    // Starting the coordinator repairs it; stopped cleanly, it reads again.
    cluster.restart_coordinator();
    assert_eq!(cluster.status(&sweep).state, "running");
    assert!(cluster.terminate_coordinator(Duration::from_secs(30)).success());
    let before = fs::read(&cluster.db).unwrap();
    assert!(ok(&["list", "--db", &db]).stdout.contains(&sweep));
    assert_eq!(fs::read(&cluster.db).unwrap(), before, "a query of a clean database leaves it byte for byte");
    assert_eq!(mode(&cluster.db), 0o600);
}

/// The start of `zonesweep coordinator` on `db`: its URL once it listens,
/// or what it printed when it exits first. The child is returned running.
fn start_coordinator(db: &Path, token: &Path) -> Result<(std::process::Child, String), String> {
    use std::io::BufRead as _;
    let mut child = zonesweep_command(&[
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--db",
        path_str(db),
        "--token-file",
        path_str(token),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    let _ = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    match line.strip_prefix("coordinator listening on ") {
        Some(rest) => Ok((child, rest.split_whitespace().next().unwrap_or_default().to_owned())),
        None => {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

/// A damaged sweep that the coordinator quarantined does not make a later
/// crash fatal: the quarantine rewrites the sweep's pages as they are, so
/// the repair after a kill -9 finds every page whole (it used to stop at the
/// damaged one: "All roots are corrupted"), the coordinator starts again
/// and still serves the other sweep.
#[test]
fn a_crash_after_a_quarantine_leaves_a_file_that_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let (damaged, _) = run_locally(dir.path(), "db.redb", 12, 7, 4, 1, &[]);
    let (kept, _) = run_locally(dir.path(), "db.redb", 12, 8, 4, 1, &[]);
    let db = dir.path().join("db.redb");
    // Damage every stored copy of one sweep's record: its id no longer parses.
    let mut bytes = fs::read(&db).unwrap();
    let needle = format!("{{\"id\":\"{damaged}\"");
    let mut copies = 0;
    let mut from = 0;
    while let Some(at) = bytes[from..].windows(needle.len()).position(|w| w == needle.as_bytes()) {
        bytes[from + at + 7] = b'#';
        copies += 1;
        from += at + 1;
    }
    assert!(copies > 0, "the record of {damaged} is in the file");
    fs::write(&db, bytes).unwrap();
    let token = dir.path().join("token");
    fs::write(&token, "a-token\n").unwrap();

    let (mut first, _) = start_coordinator(&db, &token).expect("the coordinator starts on a damaged sweep");
    first.kill().unwrap();
    first.wait().unwrap();
    let (mut second, url) = start_coordinator(&db, &token).expect("the file repairs after the crash");
    let listed = ok(&["list", "--coordinator", &url, "--token-file", path_str(&token)]).stdout;
    let _ = second.kill();
    let _ = second.wait();
    assert!(listed.lines().any(|l| l.starts_with(&kept) && l.contains("done")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with(&damaged) && l.contains("failed")), "{listed}");
    assert!(listed.contains("quarantined"), "{listed}");
}
