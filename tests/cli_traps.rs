//! The command line without traps: one name per concept, queries that find
//! `run`'s database by default, readers that stop early, `--out -`, spec
//! files explained, and zonings of other than five zones.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// `run DIR ARGS` in `dir`; the output.
fn ok_in(dir: &Path, args: &[&str]) -> Output {
    let mut command = zonesweep_command(args);
    command.current_dir(dir);
    let output = run_with_timeout(command, MAX_WAIT);
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

/// `zonesweep ARGS` in `dir`, required to fail cleanly; the stderr.
fn fails_in(dir: &Path, args: &[&str]) -> String {
    let mut command = zonesweep_command(args);
    command.current_dir(dir);
    let output = run_with_timeout(command, CLI_TIMEOUT);
    assert!(output.status.code().is_some_and(|c| c != 0), "zonesweep {args:?} should fail: {:?}", output.status);
    assert!(!output.stderr.contains("panicked"), "zonesweep {args:?} panicked:\n{}", output.stderr);
    output.stderr
}

#[test]
fn threads_is_the_one_name_for_local_worker_threads() {
    for command in ["run", "extend", "worker"] {
        let help = ok(&[command, "--help"]).stdout;
        assert!(help.contains("--threads"), "`{command} --help` should offer --threads:\n{help}");
        assert!(!help.contains("--workers"), "`{command} --help` should not offer --workers:\n{help}");
    }
    let dir = tempfile::tempdir().unwrap();
    let run = ok_in(dir.path(), &["run", "--db", "a.redb", "--samples", "20", "--job-size", "10", "--threads", "1"]);
    assert!(run.stderr.contains("1 local worker thread"), "{}", run.stderr);
    // The older name keeps working for scripts.
    let old = ok_in(dir.path(), &["run", "--db", "b.redb", "--samples", "20", "--job-size", "10", "--workers", "2"]);
    assert!(old.stderr.contains("2 local worker thread"), "{}", old.stderr);
    let sweep = run.last_line().to_owned();
    ok_in(dir.path(), &["extend", &sweep, "--samples", "10", "--db", "a.redb", "--threads", "1"]);
    let zero = fails_in(dir.path(), &["run", "--db", "c.redb", "--samples", "20", "--threads", "0"]);
    assert!(zero.contains("--threads must be at least 1"), "{zero}");
    let _ = fs::remove_file(dir.path().join("c.redb"));
}
