//! Token roles and TLS, end to end with the real binary: each role against
//! each kind of call (a refused call changes nothing), token files that do
//! not parse, certificates that are wrong in each way a user gets them
//! wrong, and a plaintext client against a TLS coordinator and the reverse.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;

use common::*;

/// A coordinator process on 127.0.0.1:0 with its URL; killed on drop.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    /// Stop the coordinator; what it logged.
    fn stop_and_log(mut self) -> String {
        let _ = self.child.kill();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
        }
        log
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `zonesweep coordinator ARGS --listen 127.0.0.1:0`; its URL once it
/// listens, or what it printed when it exits first.
fn coordinator(args: &[&str]) -> Result<Served, String> {
    let mut all = vec!["coordinator", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut child = zonesweep_command(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the coordinator starts");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    match receiver.recv_timeout(START_TIMEOUT) {
        Ok(line) if line.starts_with("coordinator listening on ") => {
            let url = line["coordinator listening on ".len()..].split_whitespace().next().unwrap().to_owned();
            Ok(Served { child, url })
        }
        _ => {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

/// A tokens file with one token per role; the token files of each role.
fn tokens(dir: &Path) -> (PathBuf, [PathBuf; 3]) {
    let file = dir.join("tokens");
    let mut lines = String::new();
    let mut each = Vec::new();
    for role in ["worker", "submit", "read"] {
        let line = ok(&["token", "new", "--role", role]).stdout;
        let token = line.split_whitespace().nth(1).expect("ROLE TOKEN").to_owned();
        assert_eq!(line.split_whitespace().next(), Some(role), "{line}");
        lines.push_str(&line);
        let path = dir.join(format!("{role}.token"));
        fs::write(&path, format!("{token}\n")).unwrap();
        each.push(path);
    }
    fs::write(&file, lines).unwrap();
    (file, each.try_into().unwrap())
}

fn with<'a>(args: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend_from_slice(extra);
    all
}

/// Each role against each kind of call: `read` queries but cannot submit or
/// cancel; `worker` runs jobs but cannot read results or cancel; `submit`
/// does both sides of a client. A refused call changes nothing.
#[test]
fn each_role_may_make_its_calls_only() {
    let dir = tempfile::tempdir().unwrap();
    let (tokens, [worker, submit, read]) = tokens(dir.path());
    let db = dir.path().join("db.redb");
    let served = coordinator(&["--db", path_str(&db), "--tokens", path_str(&tokens)]).expect("starts");
    fn as_role<'a>(url: &'a str, token: &'a Path) -> Vec<&'a str> {
        vec!["--coordinator", url, "--token-file", path_str(token)]
    }
    let url = served.url.as_str();
    let (worker_args, submit_args, read_args) = (as_role(url, &worker), as_role(url, &submit), as_role(url, &read));

    let denied = fails(&with(&["submit", "--samples", "20"], &read_args));
    assert!(denied.contains("PermissionDenied") && denied.contains("needs the `submit` role"), "{denied}");
    let denied = fails(&with(&["submit", "--samples", "20"], &worker_args));
    assert!(denied.contains("PermissionDenied"), "{denied}");
    assert_eq!(ok(&with(&["list"], &read_args)).stdout.trim(), "no sweeps", "a refused submit stores nothing");

    let sweep = ok(&with(&["submit", "--samples", "40", "--seed", "3", "--job-size", "10"], &submit_args))
        .last_line()
        .to_owned();
    for (who, args) in [("read", &read_args), ("worker", &worker_args)] {
        let denied = fails(&with(&["cancel", &sweep], args));
        assert!(denied.contains("PermissionDenied"), "{who} cancels: {denied}");
    }
    let denied = fails(&with(&["export", &sweep, "--format", "json", "--out", "unused.json"], &worker_args));
    assert!(denied.contains("PermissionDenied") && denied.contains("needs the `read` role"), "{denied}");
    let denied = fails(&with(&["list"], &worker_args));
    assert!(denied.contains("PermissionDenied"), "{denied}");
    assert!(ok(&with(&["status", &sweep], &read_args)).stdout.contains("running"), "nothing was cancelled");

    // A worker with a read token stops at once; one with the worker token runs the sweep.
    let wrong = fails(&with(&["worker", "--threads", "1"], &read_args));
    assert!(wrong.contains("PermissionDenied") || wrong.contains("refused this worker's token"), "{wrong}");
    let mut runner = zonesweep_command(&with(&["worker", "--threads", "1", "--exit-when-idle", "1"], &worker_args));
    runner.stderr(Stdio::piped());
    let output = run_with_timeout(runner, MAX_WAIT);
    assert!(output.status.success(), "{}", output.stderr);
    assert!(ok(&with(&["status", &sweep], &read_args)).stdout.contains("done"));
    ok(&with(&["cancel", &sweep], &submit_args));
}

/// A token file that does not parse stops the coordinator at start with
/// every problem and its line; nothing is opened or created.
#[test]
fn a_bad_token_file_is_refused_with_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    fs::write(&tokens, "# team tokens\nadmin aaaa\nread bbbb\nsubmit bbbb\n").unwrap();
    let db = dir.path().join("db.redb");
    let error = coordinator(&["--db", path_str(&db), "--tokens", path_str(&tokens)]).err().expect("refused");
    assert!(error.contains("line 2: unknown role `admin`; the roles are worker, submit and read"), "{error}");
    assert!(error.contains("line 4: this token is listed twice"), "{error}");
    assert!(!db.exists(), "no database was created");
    let refused = fails(&["token", "new", "--role", "admin"]);
    assert!(refused.contains("--role must be worker, submit or read"), "{refused}");
}

/// TLS: a client and a worker with `--ca` run a sweep over https; every
/// way of getting it wrong is a clear, immediate error naming the cause:
/// no or the wrong CA, a certificate for another name, an expired one,
/// http:// against TLS and https:// against plain HTTP/2, a key that does
/// not belong to its certificate, and a non-loopback address without TLS.
#[test]
fn tls_works_and_each_mistake_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    ok(&["tls", "self-signed", "--out", path_str(&certs), "--host", "127.0.0.1", "--host", "localhost"]);
    let again = fails(&["tls", "self-signed", "--out", path_str(&certs), "--host", "localhost"]);
    assert!(again.contains("exists already"), "{again}");
    let other = dir.path().join("other");
    ok(&["tls", "self-signed", "--out", path_str(&other), "--host", "example.org"]);
    let token = dir.path().join("token");
    fs::write(&token, "tls-test-token\n").unwrap();
    let (cert, key) = (certs.join("server.pem"), certs.join("server-key.pem"));
    let db = dir.path().join("db.redb");
    let tls_args = ["--db", path_str(&db), "--token-file", path_str(&token), "--tls-cert", path_str(&cert)];
    let served = coordinator(&with(&tls_args, &["--tls-key", path_str(&key)])).expect("starts with TLS");
    assert!(served.url.starts_with("https://127.0.0.1:"), "{}", served.url);
    let remote = |url: &str, ca: Option<&Path>| {
        let mut args = vec!["--coordinator".to_owned(), url.to_owned(), "--token-file".into(), path_str(&token).into()];
        if let Some(ca) = ca {
            args.extend(["--ca".to_owned(), path_str(ca).to_owned()]);
        }
        args.extend(["--connect-timeout".to_owned(), "5".to_owned()]);
        args
    };
    let call = |command: &[&str], url: &str, ca: Option<&Path>| {
        let extra = remote(url, ca);
        let mut args: Vec<&str> = command.to_vec();
        args.extend(extra.iter().map(String::as_str));
        args.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let run_ok = |args: Vec<String>| ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let run_fails = |args: Vec<String>| fails(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let ca = certs.join("ca.pem");
    let sweep =
        run_ok(call(&["submit", "--samples", "20", "--job-size", "10"], &served.url, Some(&ca))).last_line().to_owned();
    let mut worker = zonesweep_command(
        &call(&["worker", "--threads", "1", "--exit-when-idle", "1"], &served.url, Some(&ca))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    worker.stderr(Stdio::piped());
    let output = run_with_timeout(worker, MAX_WAIT);
    assert!(output.status.success(), "a worker over TLS: {}", output.stderr);
    assert!(run_ok(call(&["status", &sweep], &served.url, Some(&ca))).stdout.contains("done"));
    let localhost = served.url.replace("127.0.0.1", "localhost");
    run_ok(call(&["wait-ready", "--timeout", "5"], &localhost, Some(&ca)));

    let no_ca = run_fails(call(&["list"], &served.url, None));
    assert!(no_ca.contains("certificate is refused: it is not signed by the CA"), "{no_ca}");
    let wrong_ca = run_fails(call(&["list"], &served.url, Some(&other.join("ca.pem"))));
    assert!(wrong_ca.contains("not signed by the CA"), "{wrong_ca}");
    let plain = run_fails(call(&["list"], &served.url.replace("https://", "http://"), None));
    assert!(plain.contains("did not answer plain HTTP/2; if it serves TLS, use https://"), "{plain}");
    let not_a_cert = run_fails(call(&["list"], &served.url, Some(&token)));
    assert!(not_a_cert.contains("holds no PEM certificate"), "{not_a_cert}");
    let mut worker =
        zonesweep_command(&call(&["worker"], &served.url, None).iter().map(String::as_str).collect::<Vec<_>>());
    worker.stderr(Stdio::piped());
    let refused = run_with_timeout(worker, MAX_WAIT);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a worker that does not trust the certificate stops: {}",
        refused.stderr
    );
    assert!(refused.stderr.contains("TLS with the coordinator failed"), "{}", refused.stderr);

    // The coordinator's side of the refused handshakes is in its log.
    let log = served.stop_and_log();
    assert!(log.contains("tls accept error"), "the coordinator logs refused handshakes:\n{log}");

    // A certificate for another name.
    let other_db = dir.path().join("other.redb");
    let other_cert = other.join("server.pem");
    let misnamed = coordinator(&[
        "--db",
        path_str(&other_db),
        "--token-file",
        path_str(&token),
        "--tls-cert",
        path_str(&other_cert),
        "--tls-key",
        path_str(&other.join("server-key.pem")),
    ])
    .expect("starts");
    let wrong_name = run_fails(call(&["list"], &misnamed.url, Some(&other.join("ca.pem"))));
    assert!(wrong_name.contains("not made out for the host name"), "{wrong_name}");
    drop(misnamed);

    // An expired certificate, from a CA the client trusts.
    let expired = expired_certificate(dir.path());
    let old = coordinator(&[
        "--db",
        path_str(&other_db),
        "--token-file",
        path_str(&token),
        "--tls-cert",
        path_str(&expired.join("server.pem")),
        "--tls-key",
        path_str(&expired.join("server-key.pem")),
    ])
    .expect("starts");
    let expired_error = run_fails(call(&["list"], &old.url, Some(&expired.join("ca.pem"))));
    assert!(expired_error.contains("has expired"), "{expired_error}");
    drop(old);

    // https:// against a plain coordinator.
    let plain_db = dir.path().join("plain.redb");
    let plain_served = coordinator(&["--db", path_str(&plain_db), "--token-file", path_str(&token)]).expect("starts");
    let https = run_fails(call(&["list"], &plain_served.url.replace("http://", "https://"), Some(&ca)));
    assert!(https.contains("does not speak TLS"), "{https}");

    // A key that is not the certificate's.
    let mismatch_db = dir.path().join("mismatch.redb");
    let mismatch_args =
        ["--db", path_str(&mismatch_db), "--token-file", path_str(&token), "--tls-cert", path_str(&cert)];
    let mismatched = coordinator(&with(&mismatch_args, &["--tls-key", path_str(&other.join("server-key.pem"))]))
        .err()
        .expect("refused");
    assert!(mismatched.contains("the TLS certificate and key cannot be used together"), "{mismatched}");

    // Off loopback without TLS: refused unless --insecure.
    let open =
        fails(&["coordinator", "--listen", "0.0.0.0:0", "--db", path_str(&plain_db), "--token-file", path_str(&token)]);
    assert!(open.contains("without TLS") && open.contains("--insecure"), "{open}");
}

/// A CA and a server certificate for 127.0.0.1 that expired a year ago.
fn expired_certificate(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let out = dir.join("expired");
    fs::create_dir_all(&out).unwrap();
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(730);
    let before = time::OffsetDateTime::now_utc() - time::Duration::days(365);
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    (server.not_before, server.not_after) = (then, before);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    fs::write(out.join("ca.pem"), ca_cert.pem()).unwrap();
    fs::write(out.join("server.pem"), server_cert.pem()).unwrap();
    fs::write(out.join("server-key.pem"), server_key.serialize_pem()).unwrap();
    out
}
