//! The command line without traps: one name per concept, queries that find
//! `run`'s database by default, readers that stop early, `--out -`, spec
//! files explained, and zonings of other than five zones.

mod common;

use std::fs;
use std::path::Path;

use common::*;

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

/// A small sweep of the demonstration dataset by `run` in `dir`, in its
/// default database; the sweep id.
fn small_run(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["run", "--samples", "30", "--job-size", "10", "--threads", "2"];
    args.extend_from_slice(extra);
    let sweep = ok_in(dir, &args).last_line().to_owned();
    assert!(sweep.starts_with("sw-"), "{sweep}");
    sweep
}

#[test]
fn queries_read_the_database_run_wrote_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    let sweep = small_run(here, &[]);
    assert!(here.join("zonesweep.redb").exists());
    let listed = ok_in(here, &["list"]).stdout;
    assert!(listed.contains(&sweep), "{listed}");
    assert!(ok_in(here, &["status", &sweep]).stdout.contains("done"));
    assert!(ok_in(here, &["zones", &sweep, "--format", "csv"]).stdout.lines().count() > 1);
    assert!(ok_in(here, &["peaking", &sweep, "--region"]).stdout.contains("baseline"));
    assert!(ok_in(here, &["show", &sweep, "--spec"]).stdout.contains("samples = 30"));
    ok_in(here, &["export", &sweep, "--format", "csv", "--out", "sweep.csv"]);
    let explicit = ok_in(here, &["export", &sweep, "--format", "csv", "--db", "zonesweep.redb", "--out", "db.csv"]);
    assert!(explicit.status.success());
    assert_eq!(fs::read(here.join("sweep.csv")).unwrap(), fs::read(here.join("db.csv")).unwrap());

    let empty = tempfile::tempdir().unwrap();
    for args in [
        vec!["list"],
        vec!["status", &sweep],
        vec!["zones", &sweep],
        vec!["peaking", &sweep],
        vec!["show", &sweep],
        vec!["sensitivity", &sweep],
        vec!["export", &sweep, "--format", "json", "--out", "x.json"],
        vec!["delete", &sweep],
        vec!["prune", "--older-than", "0"],
        vec!["extend", &sweep, "--samples", "10"],
        vec!["run", "--resume", &sweep],
    ] {
        let error = fails_in(empty.path(), &args);
        assert!(
            error.contains("no database zonesweep.redb here")
                && error.contains("--db FILE")
                && error.contains("--coordinator URL"),
            "{args:?}: {error}"
        );
    }
    let error = fails_in(empty.path(), &["list", "--db", "elsewhere.redb"]);
    assert!(error.contains("no database elsewhere.redb") && error.contains("--coordinator URL"), "{error}");
    let error = fails_in(empty.path(), &["delete", &sweep, "--db", "elsewhere.redb"]);
    assert!(error.contains("no database elsewhere.redb"), "{error}");
    let left: Vec<_> = fs::read_dir(empty.path()).unwrap().collect();
    assert!(left.is_empty(), "a failed query created files: {left:?}");
}

/// `zonesweep ARGS` in `dir` with a reader that stops early: it reads one
/// line (none when `lines` is 0) and closes the pipe, like `| head -1`.
/// The program must end quietly with status 0.
fn reader_stops_early(dir: &Path, args: &[&str], lines: usize) {
    use std::io::BufRead as _;
    use std::process::Stdio;
    let mut command = zonesweep_command(args);
    command.current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("zonesweep starts");
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    for _ in 0..lines {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "zonesweep {args:?} printed nothing");
    }
    drop(reader);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let status = wait_timeout(&mut child, MAX_WAIT).unwrap_or_else(|| panic!("zonesweep {args:?} did not end"));
    assert_eq!(status.code(), Some(0), "zonesweep {args:?} with its reader gone: {status:?}\n{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("error"), "zonesweep {args:?}:\n{stderr}");
}

#[test]
fn a_reader_that_stops_early_ends_the_program_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    let sweep = small_run(here, &[]);
    let commands: Vec<Vec<&str>> = vec![
        vec!["evaluate"],
        vec!["evaluate", "--json"],
        vec!["ridge-trace"],
        vec!["zones", &sweep],
        vec!["peaking", &sweep],
        vec!["list"],
        vec!["config", "default"],
        vec!["export", &sweep, "--format", "csv", "--out", "/dev/stdout"],
        vec!["export", &sweep, "--format", "json", "--out", "/dev/stdout"],
    ];
    for args in &commands {
        reader_stops_early(here, args, 0);
        reader_stops_early(here, args, 1);
    }
}

#[test]
fn out_dash_is_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    let sweep = small_run(here, &[]);
    for format in ["csv", "json"] {
        let file = format!("sweep.{format}");
        ok_in(here, &["export", &sweep, "--format", format, "--out", &file]);
        let piped = ok_in(here, &["export", &sweep, "--format", format, "--out", "-"]);
        assert_eq!(piped.stdout, fs::read_to_string(here.join(&file)).unwrap(), "{format}");
        assert!(!piped.stderr.contains("wrote"), "{}", piped.stderr);
        assert!(!here.join("-").exists(), "--out - wrote a file named -");
        reader_stops_early(here, &["export", &sweep, "--format", format, "--out", "-"], 0);
        reader_stops_early(here, &["export", &sweep, "--format", format, "--out", "-"], 1);
    }
}

#[test]
fn spec_default_prints_the_default_spec_and_spec_check_explains_a_file() {
    use zonesweep_shared::sweep::SweepSpec;
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    let printed = ok(&["spec", "default"]).stdout;
    assert_eq!(SweepSpec::from_toml(&printed, "spec default").unwrap(), SweepSpec::default());
    fs::write(here.join("default.toml"), &printed).unwrap();
    let checked = ok_in(here, &["spec", "check", "default.toml"]).stdout;
    assert!(checked.starts_with("default.toml: valid; 10000 samples, seed 1, design monte-carlo"), "{checked}");
    assert!(checked.contains("k ") && checked.contains("uniform low=0.01 high=0.05"), "{checked}");
    assert!(checked.contains("rate.low.P.first") && checked.contains("coefficient."), "{checked}");
    assert!(checked.contains("noise: none") && checked.contains("sensitivity: none"), "{checked}");

    fs::write(
        here.join("rich.toml"),
        "samples = 50\ndesign = \"latin-hypercube\"\nk = { dist = \"fixed\", value = 0.02 }\n\
         rate = []\ncap = []\ncoefficient = [{ name = \"energy.*\", multiplier = { dist = \"uniform\", low = 0.9, high = 1.1 } }]\n\
         [[noise]]\ngroup = \"energy\"\nsigma = 0.05\n\
         [[reading]]\nname = \"fit\"\nweights = { regional = 3, pooled = 1 }\n\
         [sensitivity]\nmethod = \"saltelli\"\ngroups = { energy = [\"coefficient.energy.*\", \"noise.*\"], fit = [\"reading.*\"] }\n",
    )
    .unwrap();
    let checked = ok_in(here, &["spec", "check", "rich.toml"]).stdout;
    for expected in [
        "50 samples",
        "design latin-hypercube",
        "fixed value=0.02",
        "coefficient.energy.",
        "noise: energy σ=0.05",
        "reading.fit",
        "categorical pooled 0.250, regional 0.750",
        "readings drawn: fit",
        "sensitivity: 2 groups, 4 chain runs per sample",
        "  fit: reading.fit",
    ] {
        assert!(checked.contains(expected), "`{expected}` missing:\n{checked}");
    }
    assert!(!checked.contains("rate."), "{checked}");

    // Problems name the file and the valid choices, in `spec check` and in `run`.
    let cases = [
        ("design = \"sobel\"\n", "monte-carlo`, `latin-hypercube`, `sobol"),
        ("k = { dist = \"unifrm\", low = 0.0, high = 1.0 }\n", "`truncated-normal`, `triangular`, `lognormal`"),
        ("sampels = 3\n", "expected one of `samples`"),
        (
            "[[noise]]\ngroup = \"enrgy\"\nsigma = 0.1\n",
            "land_use, agriculture, livestock, crop_yield, energy, socioeconomic",
        ),
        (
            "[[reading]]\nname = \"fitt\"\nweights = { a = 1 }\n",
            "the readings are fit, cei, interval_years, neutral_sink",
        ),
        ("[[reading]]\nname = \"fit\"\nweights = { local = 1 }\n", "the options are regional, pooled"),
        ("[sensitivity]\nmethod = \"saltelli\"\ngroups = { g = [\"nothing.*\"] }\n", "matches no uncertain parameter"),
    ];
    for (i, (text, choices)) in cases.iter().enumerate() {
        let name = format!("bad{i}.toml");
        fs::write(here.join(&name), text).unwrap();
        for args in [vec!["spec", "check", name.as_str()], vec!["run", "--spec", name.as_str(), "--samples", "5"]] {
            let error = fails_in(here, &args);
            assert!(error.contains(&name) && error.contains(choices), "{args:?}: {error}");
        }
    }
    assert!(!here.join("zonesweep.redb").exists(), "a refused spec started a sweep");
    let error = fails_in(here, &["spec", "check", "missing.toml"]);
    assert!(error.contains("missing.toml"), "{error}");
}

/// The numbers after the last `[` of `line` (a printed list).
fn printed_list(line: &str) -> Vec<usize> {
    let inner = line.rsplit_once('[').unwrap().1.trim_end().trim_end_matches(']');
    inner.split(',').map(|n| n.trim().parse().unwrap()).collect()
}

#[test]
fn zonings_of_three_and_seven_zones_work_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    ok_in(here, &["data", "demo", "--out", "demo", "--units", "12"]);
    for zones in [3usize, 7] {
        let config = format!("z{zones}.toml");
        fs::write(here.join(&config), format!("[zoning]\nzones = {zones}\n")).unwrap();
        let model = ["--data", "demo", "--config", config.as_str()];

        // evaluate: every unit in one of the zones, each zone labelled.
        let text = ok_in(here, &[&["evaluate"][..], &model].concat()).stdout;
        let zone_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("zone ")).collect();
        assert_eq!(zone_lines.len(), zones, "{text}");
        let listed: usize = zone_lines
            .iter()
            .map(|l| l.split_once(": ").unwrap().1.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(listed, 12, "every unit is in a zone:\n{text}");
        if zones == 7 {
            assert!(zone_lines[5].starts_with("zone 6: ") && zone_lines[6].starts_with("zone 7: "), "{text}");
        }
        let json = json(&ok_in(here, &[&["evaluate", "--json"][..], &model].concat()).stdout);
        let zone: Vec<u64> = json["zone"].as_array().unwrap().iter().map(|z| z.as_u64().unwrap()).collect();
        assert_eq!(zone.len(), 12);
        assert!(zone.iter().all(|z| (1..=zones as u64).contains(z)), "{zone:?}");
        if zones == 7 {
            assert!(zone.iter().any(|&z| z > 5), "a zone beyond the five named ones is used: {zone:?}");
        }

        // run: the summary counts units over every zone.
        let db = format!("z{zones}.redb");
        let run = ok_in(
            here,
            &[&["run", "--db", db.as_str(), "--samples", "24", "--job-size", "8", "--threads", "2"][..], &model]
                .concat(),
        );
        let sweep = run.last_line().to_owned();
        let by_zone = run.stdout.lines().find(|l| l.starts_with("units by modal zone")).expect("units by modal zone");
        let counts = printed_list(by_zone);
        assert_eq!((counts.len(), counts.iter().sum::<usize>()), (zones, 12), "{by_zone}");
        assert!(by_zone.contains(&format!("{zones} = ")), "{by_zone}");
        assert!(!run.stdout.contains("zone sizes in the paper"), "{}", run.stdout);

        // zones: a probability per zone, labels beyond the five named ones.
        let table = ok_in(here, &["zones", &sweep, "--db", &db]).stdout;
        assert!(table.contains(&format!("P(zone {zones})")) && !table.contains(&format!("P(zone {})", zones + 1)));
        if zones == 7 {
            assert!(table.contains("6 = zone 6, 7 = zone 7"), "{table}");
        }
        let csv = ok_in(here, &["zones", &sweep, "--db", &db, "--format", "csv"]).stdout;
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        assert_eq!(header.iter().filter(|h| h.starts_with("p_zone_")).count(), zones, "{csv}");
        assert_eq!(csv.lines().count(), 13, "{csv}");
        let sizes = json_of(here, &["zones", &sweep, "--db", &db, "--format", "json"]);
        assert_eq!(sizes["zone_sizes"].as_array().unwrap().len(), zones, "{sizes}");
        assert_eq!(sizes["zone_names"].as_array().unwrap().len(), zones, "{sizes}");

        // peaking and the exports.
        let peaking = ok_in(here, &["peaking", &sweep, "--db", &db, "--format", "csv"]).stdout;
        assert_eq!(peaking.lines().count(), 1 + 12 * 3, "{peaking}");
        let export = ok_in(here, &["export", &sweep, "--db", &db, "--format", "csv", "--out", "-"]).stdout;
        let zone_rows = export.lines().filter(|l| l.starts_with("zone,")).count();
        assert_eq!(zone_rows, 12 * zones, "one count per unit and zone");
        let export = json_of(here, &["export", &sweep, "--db", &db, "--format", "json", "--out", "-"]);
        assert_eq!(export["samples"], 24);
    }
}

fn json_of(dir: &Path, args: &[&str]) -> serde_json::Value {
    json(&ok_in(dir, args).stdout)
}

/// `zonesweep run ARGS` started in `dir`, its stderr going to `run.err` there.
fn start_run(dir: &Path, args: &[&str]) -> std::process::Child {
    use std::process::Stdio;
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    let mut command = zonesweep_command(&all);
    let stderr = fs::File::create(dir.join("run.err")).unwrap();
    let stdout = fs::File::create(dir.join("run.out")).unwrap();
    command.current_dir(dir).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    command.spawn().expect("zonesweep run starts")
}

/// The sweeps `list --format csv` shows in `dir`: id, state, samples done.
fn listed_all(dir: &Path) -> Vec<(String, String, u64)> {
    let csv = ok_in(dir, &["list", "--format", "csv"]).stdout;
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name}: {csv}"));
    let (id, state, done) = (column("id"), column("state"), column("samples_done"));
    csv.lines()
        .skip(1)
        .map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            (cells[id].to_owned(), cells[state].to_owned(), cells[done].parse().unwrap())
        })
        .collect()
}

/// The one sweep listed in `dir`.
fn listed(dir: &Path) -> (String, String, u64) {
    let mut all = listed_all(dir);
    assert_eq!(all.len(), 1, "one sweep: {all:?}");
    all.pop().unwrap()
}

#[test]
fn queries_of_a_database_are_answered_while_run_holds_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    let samples = if debug_build() { "4000" } else { "200000" };
    let mut run = start_run(here, &["--samples", samples, "--job-size", "20", "--threads", "1"]);
    let address = here.join("zonesweep.redb.coordinator");
    let token = here.join("zonesweep.redb.token");
    poll_until("run's coordinator file", START_TIMEOUT, || if address.exists() { Ok(()) } else { Err("missing") });
    let url = fs::read_to_string(&address).unwrap();
    assert!(url.trim().starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(fs::metadata(&token).unwrap().permissions().mode() & 0o777, 0o600);

    let (sweep, state, _) = poll_until("a sweep with samples done", START_TIMEOUT, || match listed_all(here).pop() {
        Some(listed) if listed.2 > 0 => Ok(listed),
        other => Err(other),
    });
    assert_eq!(state, "running");
    assert!(ok_in(here, &["status", &sweep]).stdout.contains("running"));
    assert!(ok_in(here, &["status", &sweep, "--db", "zonesweep.redb"]).stdout.contains("running"));
    assert!(ok_in(here, &["zones", &sweep, "--format", "csv"]).stdout.lines().count() > 1);
    assert!(ok_in(here, &["show", &sweep, "--spec"]).stdout.contains(&format!("samples = {samples}")));
    let err = fs::read_to_string(here.join("run.err")).unwrap();
    assert!(err.contains("while it runs, queries of zonesweep.redb are answered by it"), "{err}");
    assert!(err.contains(&format!("zonesweep status {sweep}")), "{err}");

    signal(run.id(), "INT");
    wait_timeout(&mut run, MAX_WAIT).expect("run ends after Ctrl-C");
    assert!(!address.exists() && !token.exists(), "run's files are removed when it ends");

    // Files a killed run left behind are ignored: the database is read.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    fs::write(&address, format!("http://127.0.0.1:{closed_port}\n")).unwrap();
    fs::write(&token, "stale-token\n").unwrap();
    let (again, state, _) = listed(here);
    assert_eq!((again.as_str(), state.as_str()), (sweep.as_str(), "cancelled"));
    let quiet = ok_in(here, &["status", &sweep]);
    assert!(!quiet.stderr.contains("coordinator"), "{}", quiet.stderr);

    // The next run replaces a killed run's own token file, and removes both
    // files when it ends: nothing of the killed run lingers.
    fs::write(&address, format!("http://127.0.0.1:{closed_port}\nrun-token\n")).unwrap();
    ok_in(here, &["run", "--samples", "4", "--job-size", "2", "--threads", "1", "--seed", "9"]);
    assert!(!address.exists() && !token.exists(), "a killed run's files are gone after the next run");
    // A token file a coordinator keeps (no address file of a run) is used and kept.
    fs::write(&token, "kept-token\n").unwrap();
    ok_in(here, &["run", "--samples", "4", "--job-size", "2", "--threads", "1", "--seed", "10"]);
    assert_eq!(fs::read_to_string(&token).unwrap(), "kept-token\n", "a coordinator's token file is kept");
    assert!(!address.exists());
}

#[test]
fn an_interrupted_run_is_continued_by_the_same_command() {
    let interrupted = tempfile::tempdir().unwrap();
    let whole = tempfile::tempdir().unwrap();
    // A small dataset, so that a few thousand samples take seconds.
    let data = interrupted.path().join("data");
    ok(&["data", "demo", "--out", path_str(&data), "--units", "12"]);
    let samples = if debug_build() { "3000" } else { "100000" };
    let command =
        ["--data", path_str(&data), "--samples", samples, "--seed", "7", "--job-size", "20", "--threads", "2"];
    let mut run = start_run(interrupted.path(), &command);
    let address = interrupted.path().join("zonesweep.redb.coordinator");
    poll_until("run's coordinator file", START_TIMEOUT, || if address.exists() { Ok(()) } else { Err("missing") });
    let (sweep, _, _) = poll_until("samples done", START_TIMEOUT, || match listed_all(interrupted.path()).pop() {
        Some(listed) if listed.2 >= 40 => Ok(listed),
        other => Err(other),
    });
    signal(run.id(), "INT");
    let status = wait_timeout(&mut run, MAX_WAIT).expect("run ends after Ctrl-C");
    assert!(!status.success(), "an interrupted run says so in its status");
    let err = fs::read_to_string(interrupted.path().join("run.err")).unwrap();
    assert!(err.contains("interrupted") && err.contains("running the same command again"), "{err}");
    let (id, state, before) = listed(interrupted.path());
    assert_eq!((id.as_str(), state.as_str()), (sweep.as_str(), "cancelled"));
    assert!(before < samples.parse().unwrap(), "{before} samples done before the interruption");

    let again = ok_in(interrupted.path(), &[&["run"][..], &command].concat());
    assert_eq!(again.last_line(), sweep, "the same sweep ends the re-run:\n{}", again.stdout);
    assert!(again.stderr.contains(&format!("continuing sweep {sweep}")), "{}", again.stderr);
    let (id, state, after) = listed(interrupted.path());
    assert_eq!((id.as_str(), state.as_str()), (sweep.as_str(), "done"));
    assert!(before <= after && after == samples.parse::<u64>().unwrap(), "{before} then {after}");

    let uninterrupted = ok_in(whole.path(), &[&["run"][..], &command].concat()).last_line().to_owned();
    for format in ["csv", "json"] {
        let resumed = ok_in(interrupted.path(), &["export", &sweep, "--format", format, "--out", "-"]).stdout;
        let straight = ok_in(whole.path(), &["export", &uninterrupted, "--format", format, "--out", "-"]).stdout;
        assert_same_text(&format!("{format} export"), &straight, &resumed);
    }

    // A done sweep is left alone: the same command once more starts a sweep of its own.
    let third = ok_in(interrupted.path(), &[&["run"][..], &command].concat());
    assert_ne!(third.last_line(), sweep);
    assert_eq!(listed_all(interrupted.path()).len(), 2);
    // `run --resume SWEEP` keeps working (on a final sweep it says why not).
    let refused = fails_in(interrupted.path(), &["run", "--resume", &sweep]);
    assert!(refused.contains(&sweep), "{refused}");
}
