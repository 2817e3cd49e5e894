//! The `zonesweep` program end to end: each test runs the built binary and
//! checks its exit status, output and error messages.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use zonesweep_shared::data::demo::{self, DEMO_SEED, DEMO_UNITS};

fn zonesweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zonesweep")).args(args).output().expect("the zonesweep binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run and require success; the stdout.
fn ok(args: &[&str]) -> String {
    let output = zonesweep(args);
    assert!(output.status.success(), "zonesweep {args:?} failed ({:?}):\n{}", output.status, text(&output.stderr));
    assert!(!text(&output.stderr).contains("panicked"), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// Run and require a clean failure (non-zero status, no panic); the stderr.
fn fails(args: &[&str]) -> String {
    let output = zonesweep(args);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "zonesweep {args:?} should fail; stdout:\n{}", text(&output.stdout));
    assert!(output.status.code().is_some_and(|c| c != 0), "zonesweep {args:?} ended by a signal: {:?}", output.status);
    assert!(!stderr.contains("panicked"), "zonesweep {args:?} panicked:\n{stderr}");
    assert!(!stderr.trim().is_empty(), "zonesweep {args:?} failed without a message");
    stderr
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("shared/tests/fixtures").join(name)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn evaluate_json(args: &[&str]) -> Value {
    let mut all = vec!["evaluate", "--json"];
    all.extend_from_slice(args);
    let stdout = ok(&all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("evaluate --json is not JSON ({e}):\n{stdout}"))
}

/// Zones, totals and scores of an `evaluate --json` document, checked for
/// shape and range; the number of units.
fn check_document(document: &Value) -> usize {
    let units = document["units"].as_array().expect("units");
    let n = units.len();
    let zone = document["zone"].as_array().expect("zone");
    assert_eq!(zone.len(), n);
    for z in zone {
        let z = z.as_u64().expect("a zone is an integer");
        assert!((1..=5).contains(&z), "zone {z}");
    }
    let total = document["total"].as_array().expect("total");
    assert_eq!(total.len(), n);
    let scores = document["scores"].as_object().expect("scores");
    assert_eq!(scores.len(), 10);
    for (u, t) in total.iter().enumerate() {
        let sum: u64 = scores.values().map(|s| s[u].as_u64().expect("a score is an integer")).sum();
        assert_eq!(t.as_u64(), Some(sum), "unit {u}: the total is the sum of the ten scores");
        assert!((10..=50).contains(&sum));
    }
    n
}

#[test]
fn evaluate_json_on_a_dataset_folder() {
    let dir = fixture("seed99");
    let document = evaluate_json(&["--data", path_str(&dir)]);
    assert_eq!(check_document(&document), 81);
    assert_eq!(document["years"].as_array().unwrap().len(), 21);
    assert_eq!(document["stirpat"]["k"].as_f64(), Some(0.02));
    for key in ["indices", "trend", "stirpat", "projection", "cep", "breaks"] {
        assert!(!document[key].is_null(), "{key}");
    }
    // The reference implementation's zones for this dataset.
    let expected: Value = serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(document["zone"], expected["zone"]);
    assert_eq!(document["units"], expected["units"]);
}

#[test]
fn evaluate_without_data_uses_the_embedded_dataset() {
    let document = evaluate_json(&[]);
    assert_eq!(check_document(&document), DEMO_UNITS);
    assert_eq!(document["units"][0].as_str(), Some("QB01"));
    // The same as the bundled files named explicitly.
    let explicit = evaluate_json(&["--data", path_str(&manifest_dir().join("data/demo"))]);
    assert_eq!(document, explicit);
    // The human-readable report works too.
    let report = ok(&["evaluate"]);
    assert!(report.contains("81 units") && report.contains("zone 1"), "{report}");
}

#[test]
fn bad_k_values_are_refused_naming_the_option() {
    for bad in [["--k", "-1"], ["--k", "abc"], ["--k", "-0.5"], ["--k", "NaN"], ["--k", "inf"]] {
        let stderr = fails(&["evaluate", bad[0], bad[1]]);
        assert!(stderr.contains("--k"), "{bad:?}: {stderr}");
    }
    let stderr = fails(&["evaluate", "--k=-1"]);
    assert!(stderr.contains("--k"), "{stderr}");
    let stderr = fails(&["evaluate", "--k"]);
    assert!(stderr.contains("--k"), "{stderr}");
}

#[test]
fn k_values_and_auto_are_used() {
    let document = evaluate_json(&["--k", "0.05"]);
    assert_eq!(document["stirpat"]["k"].as_f64(), Some(0.05));
    let document = evaluate_json(&["--k", "0"]);
    assert_eq!(document["stirpat"]["k"].as_f64(), Some(0.0));
    let auto = evaluate_json(&["--k", "auto"]);
    check_document(&auto);
    let k = auto["stirpat"]["k"].as_f64().expect("K is a number");
    assert!((0.0..=1.0 + 1e-9).contains(&k), "automatic K {k}");
    // The program's automatic K is the one ridge-trace marks.
    let trace = ok(&["ridge-trace"]);
    assert!(trace.contains("automatic K = "), "{trace}");
    let stated: f64 = trace
        .lines()
        .find_map(|l| l.strip_prefix("automatic K = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("ridge-trace states the automatic K");
    assert_eq!(stated, k);
}

#[test]
fn the_default_configuration_reads_back_as_a_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("default.toml");
    let default = ok(&["config", "default"]);
    assert!(default.contains("[ridge]") && default.contains("k = 0.02"), "{default}");
    fs::write(&path, &default).unwrap();
    let with_file = evaluate_json(&["--config", path_str(&path)]);
    let without = evaluate_json(&[]);
    assert_eq!(with_file, without, "the default configuration file changes nothing");

    // A subset overrides.
    let subset = dir.path().join("subset.toml");
    fs::write(&subset, "[ridge]\nk = 0.04\n").unwrap();
    let document = evaluate_json(&["--config", path_str(&subset)]);
    assert_eq!(document["stirpat"]["k"].as_f64(), Some(0.04));
}

#[test]
fn a_configuration_with_an_unknown_key_is_refused_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    fs::write(&path, "[ridge]\nvif_limt = 5.0\n").unwrap();
    let stderr = fails(&["evaluate", "--config", path_str(&path)]);
    assert!(stderr.contains("vif_limt") && stderr.contains("typo.toml"), "{stderr}");

    let top = dir.path().join("top.toml");
    fs::write(&top, "sceanrios = 1\n").unwrap();
    let stderr = fails(&["evaluate", "--config", path_str(&top)]);
    assert!(stderr.contains("sceanrios") && stderr.contains("top.toml"), "{stderr}");

    let missing = dir.path().join("missing.toml");
    let stderr = fails(&["evaluate", "--config", path_str(&missing)]);
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

/// A milestone far outside the years a configuration may name is refused
/// by name, and crashes nothing (it once overflowed a subtraction).
#[test]
fn a_milestone_far_before_the_data_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("early.toml");
    fs::write(&path, "[scenarios]\nmilestone = -2147483648\n").unwrap();
    let stderr = fails(&["evaluate", "--config", path_str(&path)]);
    assert!(stderr.contains("scenarios.milestone is -2147483648"), "{stderr}");
}

/// A copy of a fixture folder whose panel.csv line `line` (the header is line
/// 1) has `value` in column `column`.
fn damaged_copy(fixture_name: &str, line: usize, column: &str, value: &str) -> tempfile::TempDir {
    let source = fixture(fixture_name);
    let dir = tempfile::tempdir().unwrap();
    fs::copy(source.join("units.csv"), dir.path().join("units.csv")).unwrap();
    let panel = fs::read_to_string(source.join("panel.csv")).unwrap();
    let mut lines: Vec<String> = panel.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let c = header.iter().position(|h| *h == column).expect("the column exists");
    let mut cells: Vec<String> = lines[line - 1].split(',').map(str::to_owned).collect();
    cells[c] = value.to_owned();
    lines[line - 1] = cells.join(",");
    fs::write(dir.path().join("panel.csv"), lines.join("\n") + "\n").unwrap();
    dir
}

#[test]
fn validate_names_file_line_and_column_of_a_negative_value() {
    let ok_out = ok(&["data", "validate", path_str(&fixture("seed99"))]);
    assert!(ok_out.contains("valid") && ok_out.contains("81 units"), "{ok_out}");

    let dir = damaged_copy("seed99", 37, "forest", "-12.5");
    let stderr = fails(&["data", "validate", path_str(dir.path())]);
    assert!(stderr.contains("panel.csv"), "{stderr}");
    assert!(stderr.contains("line 37"), "{stderr}");
    assert!(stderr.contains("forest"), "{stderr}");
    assert!(stderr.contains("-12.5"), "{stderr}");
    // evaluate refuses the same folder with the same detail.
    let stderr = fails(&["evaluate", "--data", path_str(dir.path())]);
    assert!(stderr.contains("panel.csv") && stderr.contains("line 37") && stderr.contains("forest"), "{stderr}");

    // A folder that does not exist is named.
    let gone = dir.path().join("nothing-here");
    let stderr = fails(&["data", "validate", path_str(&gone)]);
    assert!(stderr.contains("nothing-here"), "{stderr}");
}

/// The bundled demonstration dataset with its years moved to start at `first`.
fn demo_from_year(first: i64) -> tempfile::TempDir {
    let source = manifest_dir().join("data/demo");
    let dir = tempfile::tempdir().unwrap();
    fs::copy(source.join("units.csv"), dir.path().join("units.csv")).unwrap();
    let panel = fs::read_to_string(source.join("panel.csv")).unwrap();
    let mut lines = panel.lines();
    let mut moved = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
        cells[1] = (cells[1].parse::<i64>().unwrap() - 2000 + first).to_string();
        moved.push_str(&cells.join(","));
        moved.push('\n');
    }
    fs::write(dir.path().join("panel.csv"), moved).unwrap();
    dir
}

/// Horizons and dataset years outside the documented bounds are refused by
/// every command that reads them, naming the file, the key or line, the value
/// and the allowed range; none of them is run (a horizon of 2^31 − 1 once
/// sized the projection by it).
#[test]
fn horizons_and_years_outside_the_bounds_are_refused_by_every_model_command() {
    let dir = tempfile::tempdir().unwrap();
    let demo = manifest_dir().join("data/demo");
    for (horizon, milestone, message) in [
        (3100, 2030, "scenarios.horizon is 3100; it must be a year 1900–2200"),
        (2010, 2005, "scenarios.horizon is 2010; with the data's base year 2020 it must be 2021–2200"),
        (2_147_483_647, 2030, "scenarios.horizon is 2147483647; it must be a year 1900–2200"),
        (3_000_000, 2030, "scenarios.horizon is 3000000; it must be a year 1900–2200"),
        (-2_147_483_000, -2_147_483_600, "scenarios.horizon is -2147483000; it must be a year 1900–2200"),
    ] {
        let config = dir.path().join(format!("horizon{horizon}.toml"));
        fs::write(&config, format!("[scenarios]\nhorizon = {horizon}\nmilestone = {milestone}\n")).unwrap();
        let config = path_str(&config);
        for args in [
            vec!["evaluate", "--config", config],
            vec!["evaluate", "--json", "--data", path_str(&demo), "--config", config],
            vec!["ridge-trace", "--config", config],
            vec!["data", "validate", path_str(&demo), "--config", config],
        ] {
            let stderr = fails(&args);
            assert!(
                stderr.contains(&format!("horizon{horizon}.toml: ")) && stderr.contains(message),
                "{args:?}: {stderr}"
            );
        }
    }
    // The farthest horizon is taken.
    let farthest = dir.path().join("farthest.toml");
    fs::write(&farthest, "[scenarios]\nhorizon = 2200\n").unwrap();
    let stdout = ok(&["data", "validate", path_str(&demo), "--config", path_str(&farthest)]);
    assert!(stdout.contains("valid"), "{stdout}");

    for first in [10, 3050, 9979] {
        let data = demo_from_year(first);
        let message =
            format!("panel.csv line 2, column `year`, value `{first}`: not a year in the allowed range 1900–2200");
        for args in [vec!["data", "validate", path_str(data.path())], vec!["evaluate", "--data", path_str(data.path())]]
        {
            let stderr = fails(&args);
            assert!(stderr.contains(&message), "{args:?}: {stderr}");
        }
    }
    let stderr = fails(&["data", "demo", "--out", path_str(&dir.path().join("big")), "--units", "20001"]);
    assert!(stderr.contains("--units is 20001; it must be 1–20000"), "{stderr}");
}

#[test]
fn demo_writes_a_dataset_that_validates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo5");
    let stdout = ok(&["data", "demo", "--out", path_str(&out), "--units", "5", "--seed", "3"]);
    assert!(stdout.contains("5 units"), "{stdout}");
    let validated = ok(&["data", "validate", path_str(&out)]);
    assert!(validated.contains("valid") && validated.contains("5 units"), "{validated}");
    // Exactly the generator's output.
    let (units, panel) = demo::generate(5, 3).unwrap().to_csv();
    assert_eq!(fs::read_to_string(out.join("units.csv")).unwrap(), units);
    assert_eq!(fs::read_to_string(out.join("panel.csv")).unwrap(), panel);
    // The five units evaluate.
    let document = evaluate_json(&["--data", path_str(&out)]);
    assert_eq!(check_document(&document), 5);

    let stderr = fails(&["data", "demo", "--out", path_str(&out), "--units", "0"]);
    assert!(stderr.contains("--units"), "{stderr}");
}

#[test]
fn the_bundled_demo_dataset_is_the_generators_output() {
    let (units, panel) = demo::generate(DEMO_UNITS, DEMO_SEED).expect("the demo generator works").to_csv();
    assert_eq!(DEMO_UNITS, 81);
    let dir = manifest_dir().join("data/demo");
    let bundled_units = fs::read_to_string(dir.join("units.csv")).unwrap();
    let bundled_panel = fs::read_to_string(dir.join("panel.csv")).unwrap();
    assert!(bundled_units == units, "data/demo/units.csv differs from demo::generate(81, DEMO_SEED)");
    if bundled_panel != panel {
        let first = bundled_panel.lines().zip(panel.lines()).position(|(a, b)| a != b);
        panic!(
            "data/demo/panel.csv differs from demo::generate(81, DEMO_SEED) (first differing line {:?}; {} vs {} lines)",
            first.map(|i| i + 1),
            bundled_panel.lines().count(),
            panel.lines().count()
        );
    }
    // And `data demo` with its defaults writes the same files.
    let out = tempfile::tempdir().unwrap();
    ok(&["data", "demo", "--out", path_str(out.path())]);
    assert!(fs::read_to_string(out.path().join("units.csv")).unwrap() == bundled_units);
    assert!(fs::read_to_string(out.path().join("panel.csv")).unwrap() == bundled_panel);
}

/// The README's sweep-spec block is the default spec, and stays a valid
/// spec when its commented lines are uncommented.
#[test]
fn the_readme_spec_block_works_as_shown_and_uncommented() {
    use zonesweep_shared::model::config::Config;
    use zonesweep_shared::sweep::SweepSpec;
    let readme = fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
    let start = readme.find("```toml\n").expect("a toml block in the README") + "```toml\n".len();
    let block = &readme[start..start + readme[start..].find("```").expect("the block ends")];
    let as_shown = SweepSpec::from_toml(block, "README").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(as_shown, SweepSpec::default(), "the README shows the default spec");
    let uncommented: String = block
        .lines()
        .map(|line| line.strip_prefix("# ").filter(|rest| !rest.starts_with(' ')).unwrap_or(line))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(uncommented, block);
    let spec =
        SweepSpec::from_toml(&uncommented, "README uncommented").unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    let plan = spec.plan(&Config::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        spec.trend_threshold.is_some()
            && !spec.noise.is_empty()
            && !spec.reading.is_empty()
            && spec.sensitivity.is_some(),
        "{spec:?}"
    );
    assert!(plan.has_noise() && plan.dimensions.iter().any(|d| d.name == "reading.fit"));
}

/// A reader that stops early (`evaluate --json | head -c 100`) ends the
/// program quietly with status 0, not with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    // The JSON document (about half a megabyte) is larger than a pipe's
    // buffer, so the program is still writing when the reader goes away.
    let mut child = Command::new(env!("CARGO_BIN_EXE_zonesweep"))
        .args(["evaluate", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the zonesweep binary runs");
    let mut first = [0u8; 100];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("some output");
    // The read end is dropped here: the rest of the output meets a closed pipe.
    let output = child.wait_with_output().expect("the program ends");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A coordinator started without a token generates one once, beside its
/// database, and reuses it on every later start, so the workers and clients
/// that hold it keep working across restarts.
#[test]
fn a_generated_token_survives_a_restart() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = dir.path().join("z.redb");
    let token_file = dir.path().join("z.redb.token");
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_zonesweep"))
            .args(["coordinator", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .env_remove("ZONESWEEP_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the coordinator starts")
    };
    let wait_for_token = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = fs::read_to_string(&token_file) {
                if !text.trim().is_empty() {
                    return text;
                }
            }
            assert!(Instant::now() < deadline, "no token file after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut first = start();
    let token = wait_for_token();
    first.kill().expect("stop the first coordinator");
    let _ = first.wait();
    let mut second = start();
    // The second start has read the file once it says so on stderr; stop it
    // then. The lines are read on a thread, so a start that never says so
    // fails the test at the deadline instead of blocking it.
    let stderr = second.stderr.take().expect("stderr");
    let (lines, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match said.recv_timeout(left) {
            Ok(line) if line.contains("using the one in") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = second.kill();
                panic!("the second start did not reuse the token; it said: {seen:?}");
            }
        }
    }
    second.kill().expect("stop the second coordinator");
    let _ = second.wait();
    assert_eq!(fs::read_to_string(&token_file).unwrap(), token, "the token file is unchanged");

    // A damaged token file is refused with its name, not replaced.
    fs::write(&token_file, "two tokens\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_zonesweep"))
        .args(["coordinator", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .env_remove("ZONESWEEP_TOKEN")
        .output()
        .expect("the coordinator runs");
    let stderr = text(&output.stderr);
    assert!(!output.status.success() && stderr.contains("z.redb.token") && !stderr.contains("panicked"), "{stderr}");
}

// --- queries of a finished sweep -------------------------------------------------

/// Unit names of the query tests: Chinese names of different display widths,
/// one wider than a table's name column.
const CJK_NAMES: [&str; 8] = [
    "郑州市中原区",
    "Alpha County",
    "洛阳市",
    "北京市朝阳区望京街道办事处社区服务中心",
    "開封市龍亭區",
    "Beta",
    "武汉市江岸区",
    "Gamma 县",
];

/// A finished sweep of eight demonstration units renamed to [`CJK_NAMES`],
/// in a database file: the folder, the file and the sweep id.
fn cjk_sweep() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&["data", "demo", "--out", path_str(&data), "--units", "8", "--seed", "3"]);
    let units = fs::read_to_string(data.join("units.csv")).unwrap();
    let mut lines: Vec<String> = units.lines().map(str::to_owned).collect();
    for (line, name) in lines.iter_mut().skip(1).zip(CJK_NAMES) {
        let mut fields: Vec<&str> = line.split(',').collect();
        fields[1] = name;
        *line = fields.join(",");
    }
    fs::write(data.join("units.csv"), lines.join("\n") + "\n").unwrap();
    let db = dir.path().join("q.redb");
    let stdout = ok(&["run", "--data", path_str(&data), "--samples", "60", "--seed", "5", "--db", path_str(&db)]);
    let sweep = stdout.lines().last().expect("run prints the sweep id").trim().to_owned();
    assert!(sweep.starts_with("sw-"), "{stdout}");
    (dir, db, sweep)
}

fn query(args: &[&str], db: &Path) -> String {
    let mut all = args.to_vec();
    all.extend(["--db", path_str(db)]);
    ok(&all)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().expect("a header row").iter().map(str::to_owned).collect();
    let rows = reader.records().map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect()).collect();
    (header, rows)
}

fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

#[test]
fn zones_labels_its_columns_aligns_wide_names_and_says_how_many_units_each_zone_holds() {
    let (_dir, db, sweep) = cjk_sweep();
    let table = query(&["zones", &sweep], &db);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(table.matches("1 = carbon sink functional zone").count(), 1, "the legend once:\n{table}");
    let header = lines.iter().position(|l| l.starts_with("unit ")).expect("a header row");
    for label in ["name", "nominal zone", "modal zone", "P(modal)", "95 % interval", "runner-up", "robust", "P(zone 5)"]
    {
        assert!(lines[header].contains(label), "`{label}` labels a column: {}", lines[header]);
    }
    // Every row of the unit table ends at the same display column, and each
    // column starts where its header does, whatever the names' scripts.
    let rows = &lines[header..header + 9];
    let ends: Vec<usize> = rows.iter().map(|l| width(l)).collect();
    assert!(ends.iter().all(|&w| w == ends[0]), "rows end at {ends:?}:\n{table}");
    let column_of = |line: &str, needle: &str| width(&line[..line.find(needle).unwrap()]);
    let nominal_end = column_of(rows[0], "nominal zone") + width("nominal zone");
    for (row, name) in rows[1..].iter().zip(CJK_NAMES) {
        // Cut to at most 24 columns: eleven two-column characters and "…".
        let shown = if width(name) > 24 { "北京市朝阳区望京街道办…" } else { name };
        assert!(row.contains(shown), "`{shown}` in {row}");
        // The (right-aligned) nominal zone after the name ends under its
        // header in every row, however wide the name's characters are.
        let after_name = row.find(shown).unwrap() + shown.len();
        let rest = &row[after_name..];
        let cell = rest.split_whitespace().next().unwrap();
        let cell_start = after_name + (rest.len() - rest.trim_start().len());
        assert_eq!(width(&row[..cell_start]) + width(cell), nominal_end, "{row}");
    }
    assert!(!table.contains("望京街道办事处社区服务中心"), "the long name is cut:\n{table}");
    assert!(table.contains("units per zone") && table.contains("5–95 %") && table.contains("expected"), "{table}");

    let document = json_of(&query(&["zones", &sweep, "--format", "json"], &db));
    assert_eq!(document["sweep"], sweep.as_str());
    assert_eq!(document["robust_threshold"], 0.8);
    let units = document["units"].as_array().unwrap();
    assert_eq!(units.len(), 8);
    assert_eq!(units[3]["name"], CJK_NAMES[3], "JSON keeps names whole");
    for unit in units {
        let modal = &unit["modal"];
        let p = modal["p"].as_f64().unwrap();
        assert!(modal["low"].as_f64().unwrap() <= p && p <= modal["high"].as_f64().unwrap(), "{unit}");
        assert_eq!(unit["robust"].as_bool().unwrap(), modal["low"].as_f64().unwrap() >= 0.8, "{unit}");
        assert!(unit["nominal_zone"].as_u64().is_some_and(|z| (1..=5).contains(&z)), "{unit}");
        assert_eq!(unit["zones"].as_array().unwrap().len(), 5);
        let entropy = unit["entropy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&entropy), "{unit}");
    }
    let sizes = document["zone_sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 5);
    let expected: f64 = sizes.iter().map(|z| z["expected"].as_f64().unwrap()).sum();
    assert!((expected - 8.0).abs() < 1e-9, "the zones hold the 8 units on average: {expected}");
    for size in sizes {
        let (low, high) = (size["p05"].as_u64().unwrap(), size["p95"].as_u64().unwrap());
        assert!(low <= size["median"].as_u64().unwrap() && size["median"].as_u64().unwrap() <= high && high <= 8);
    }

    let (header, rows) = csv_rows(&query(&["zones", &sweep, "--format", "csv"], &db));
    assert_eq!(header[..4], ["unit", "name", "nominal_zone", "modal_zone"]);
    assert_eq!(header.last().unwrap(), "p_zone_5");
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0][1], CJK_NAMES[0]);
}

#[test]
fn zones_selects_filters_and_sorts_units() {
    let (_dir, db, sweep) = cjk_sweep();
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["zones", sweep.as_str(), "--format", "json"];
        all.extend_from_slice(args);
        json_of(&query(&all, &db))["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&["--unit", "QB05", "--unit", "QB02", "--unit", "QB05"]), ["QB05", "QB02"]);
    // A threshold of 0 makes every unit robust; of 1, none that ever varied.
    assert!(ids(&["--only-uncertain", "--robust-threshold", "0"]).is_empty());
    assert_eq!(ids(&["--only-uncertain", "--robust-threshold", "1"]).len(), 8);
    let document = json_of(&query(&["zones", &sweep, "--format", "json", "--sort", "robustness"], &db));
    let lows: Vec<f64> =
        document["units"].as_array().unwrap().iter().map(|u| u["modal"]["low"].as_f64().unwrap()).collect();
    assert!(lows.windows(2).all(|w| w[0] <= w[1]), "least robust first: {lows:?}");
    let table = query(&["zones", &sweep, "--only-uncertain", "--robust-threshold", "0"], &db);
    assert!(table.contains("no unit matches"), "{table}");
}

#[test]
fn unknown_units_scenarios_and_bad_options_are_refused_by_name_and_change_nothing() {
    let (_dir, db, sweep) = cjk_sweep();
    let before = fs::read(&db).unwrap();
    for args in [["zones", sweep.as_str(), "--unit", "QB99"], ["peaking", sweep.as_str(), "--unit", "QB99"]] {
        let mut all = args.to_vec();
        all.extend(["--db", path_str(&db)]);
        let stderr = fails(&all);
        assert!(stderr.contains("no unit `QB99`") && stderr.contains("QB01, QB02"), "{stderr}");
    }
    let stderr = fails(&["peaking", &sweep, "--scenario", "medium", "--db", path_str(&db)]);
    assert!(stderr.contains("`medium`") && stderr.contains("low, baseline or high"), "{stderr}");
    let stderr = fails(&["zones", &sweep, "--robust-threshold", "1.5", "--db", path_str(&db)]);
    assert!(stderr.contains("1.5") && stderr.contains("from 0 to 1"), "{stderr}");
    let stderr = fails(&["zones", &sweep, "--format", "xml", "--db", path_str(&db)]);
    assert!(stderr.contains("xml") && stderr.contains("table, csv, json"), "{stderr}");
    let stderr = fails(&["zones", &sweep, "--sort", "name", "--db", path_str(&db)]);
    assert!(stderr.contains("name") && stderr.contains("id, robustness"), "{stderr}");
    let stderr = fails(&["peaking", &sweep, "--region", "--unit", "QB01", "--db", path_str(&db)]);
    assert!(stderr.contains("--region") && stderr.contains("--unit"), "{stderr}");
    assert_eq!(fs::read(&db).unwrap(), before, "a refused query leaves the database as it was");
}

#[test]
fn peaking_per_unit_and_for_the_region_in_every_format() {
    let (_dir, db, sweep) = cjk_sweep();
    let table = query(&["peaking", &sweep, "--unit", "QB04"], &db);
    for label in ["P(peak by 2030)", "95 % interval", "median", "P(no peak by 2060)", "P(neutral by 2060)"] {
        assert!(table.contains(label), "`{label}`:\n{table}");
    }
    assert_eq!(table.lines().filter(|l| l.starts_with("QB04")).count(), 3, "{table}");
    let document = json_of(&query(&["peaking", &sweep, "--format", "json", "--scenario", "low"], &db));
    let units = document["units"].as_array().unwrap();
    assert_eq!(units.len(), 8);
    for unit in units {
        assert_eq!(unit["scenario"], "low");
        let by = unit["by_milestone"]["p"].as_f64().unwrap();
        let never = unit["not_by_horizon"]["p"].as_f64().unwrap();
        assert!(by + never <= 1.0 + 1e-12, "{unit}");
        assert!(unit["quantiles"]["median"].is_null() || unit["quantiles"]["median"].as_i64().is_some());
        assert!(unit["neutral"]["low"].as_f64().is_some());
    }
    let (header, rows) = csv_rows(&query(&["peaking", &sweep, "--format", "csv"], &db));
    assert_eq!(header[..4], ["unit", "name", "scenario", "p_peak_by_milestone"]);
    assert_eq!(rows.len(), 24);

    let region = query(&["peaking", &sweep, "--region"], &db);
    for label in ["the region's total CE of 8 units", "P(peak by 2030)", "P(no peak by 2060)", "regional CE, Mt"] {
        assert!(region.contains(label), "`{label}`:\n{region}");
    }
    let document = json_of(&query(&["peaking", &sweep, "--region", "--format", "json"], &db));
    let scenarios = document["region"].as_array().unwrap();
    assert_eq!(scenarios.len(), 3);
    for s in scenarios {
        let counted = s["by_milestone"]["samples"].as_u64().unwrap();
        assert_eq!(counted, document["samples_ok"].as_u64().unwrap());
        let fan = s["fan"].as_array().unwrap();
        assert_eq!(fan.len(), 41, "2020–2060");
        for year in fan {
            let q: Vec<f64> =
                ["p05", "p25", "median", "p75", "p95"].iter().map(|k| year[*k].as_f64().unwrap()).collect();
            assert!(q.windows(2).all(|w| w[0] <= w[1]), "{year}");
        }
    }
    let (header, rows) =
        csv_rows(&query(&["peaking", &sweep, "--region", "--format", "csv", "--scenario", "high"], &db));
    assert_eq!(header, ["scenario", "statistic", "year", "value", "low", "high"]);
    assert!(rows.iter().all(|r| r[0] == "high"));
    assert!(rows.iter().any(|r| r[1] == "p_no_peak_by_horizon" && r[2] == "2060"));
    assert_eq!(rows.iter().filter(|r| r[1] == "ce_median").count(), 41);
}

#[test]
fn status_and_list_in_every_format() {
    let (_dir, db, sweep) = cjk_sweep();
    let line = query(&["status", &sweep], &db);
    assert!(line.starts_with(&sweep) && line.contains("done"), "{line}");
    let status = json_of(&query(&["status", &sweep, "--format", "json"], &db));
    assert_eq!((status["id"].as_str(), status["state"].as_str()), (Some(sweep.as_str()), Some("done")));
    assert_eq!(
        (status["samples"].as_u64(), status["samples_done"].as_u64(), status["units"].as_u64()),
        (Some(60), Some(60), Some(8))
    );
    let listed = json_of(&query(&["list", "--format", "json"], &db));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0], status);
    let (header, rows) = csv_rows(&query(&["list", "--format", "csv"], &db));
    assert_eq!(header[..3], ["id", "state", "samples"]);
    assert_eq!((rows.len(), rows[0][0].as_str(), rows[0][1].as_str()), (1, sweep.as_str(), "done"));
    let (_, rows) = csv_rows(&query(&["status", &sweep, "--format", "csv"], &db));
    assert_eq!(rows.len(), 1);
}

/// `sensitivity` of a small sensitivity sweep run with `run --db`: a table
/// ranking the groups per unit, CSV and JSON of the same indices, the
/// modal-zone output; an unknown unit, a plain sweep and bad option values
/// are refused by name.
#[test]
fn sensitivity_ranks_groups_of_a_sensitivity_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo4");
    ok(&["data", "demo", "--out", path_str(&data), "--units", "4", "--seed", "3"]);
    let spec = dir.path().join("spec.toml");
    fs::write(
        &spec,
        "samples = 40\nk = { dist = \"uniform\", low = 0.01, high = 0.05 }\n\
         [[rate]]\nmultiplier = { dist = \"uniform\", low = 0.7, high = 1.3 }\n\
         [sensitivity]\nmethod = \"saltelli\"\ngroups = { growth = [\"rate.*\"], ridge = [\"k\"] }\n",
    )
    .unwrap();
    let db = dir.path().join("sweeps.redb");
    let run = |spec: &Path| {
        let stdout = ok(&[
            "run",
            "--db",
            path_str(&db),
            "--data",
            path_str(&data),
            "--spec",
            path_str(spec),
            "--job-size",
            "7",
            "--threads",
            "2",
        ]);
        stdout.lines().last().expect("run prints the sweep id").trim().to_owned()
    };
    let sweep = run(&spec);
    let (units, _) = demo::generate(4, 3).unwrap().to_csv();
    let first_unit = units.lines().nth(1).unwrap().split(',').next().unwrap().to_owned();

    let table = ok(&["sensitivity", &sweep, "--db", path_str(&db)]);
    assert!(
        table.contains("group sensitivity of the total score, 40 base samples (2 groups, 4 chain runs each)"),
        "{table}"
    );
    let header = table.lines().nth(2).unwrap();
    for label in ["unit", "output", "variance", "rank", "group", "S1", "S1 low", "S1 high", "ST", "ST low", "ST high"] {
        assert!(header.contains(label), "{header}");
    }
    // Two rows per unit, ranked 1 and 2.
    assert_eq!(table.lines().skip(3).count(), 8, "{table}");

    let csv = ok(&["sensitivity", &sweep, "--db", path_str(&db), "--unit", &first_unit, "--format", "csv"]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "unit,name,output,samples,mean,variance,rank,group,s1,s1_low,s1_high,st,st_low,st_high");
    assert_eq!(rows.len(), 3, "{csv}");
    let json = ok(&["sensitivity", &sweep, "--db", path_str(&db), "--format", "json", "--output", "zone"]);
    let document: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(document["samples"].as_u64(), Some(40));
    assert_eq!(document["groups"], serde_json::json!(["growth", "ridge"]));
    let units = document["units"].as_array().unwrap();
    assert_eq!(units.len(), 4);
    for unit in units {
        assert!(unit["output"]["zone"].as_u64().is_some_and(|z| (1..=5).contains(&z)), "{unit}");
        assert_eq!(unit["groups"].as_array().unwrap().len(), 2);
    }
    // The long CSV export carries every sum: 4 units × 6 outputs × 4 base
    // slots, and × 2 groups × 6 group slots; and the regional counts.
    let export = ok(&["export", &sweep, "--db", path_str(&db), "--format", "csv", "--out", "-"]);
    let count = |quantity: &str| export.lines().filter(|l| l.starts_with(&format!("{quantity},"))).count();
    assert_eq!((count("sensitivity_base"), count("sensitivity_group")), (96, 288));
    assert!(export.contains("\nsensitivity_samples,,,,40\n"), "{export}");
    assert_eq!(count("regional_peak_year"), 3 * (2060 - 2020 + 1), "a row per scenario and peak bin");
    // The total score varies somewhere: a ranked group with an index whose
    // interval holds it.
    let totals: Value =
        serde_json::from_str(&ok(&["sensitivity", &sweep, "--db", path_str(&db), "--format", "json"])).unwrap();
    let indexed: Vec<&Value> = totals["units"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["groups"].as_array().unwrap())
        .filter(|g| g["total"].is_object())
        .collect();
    assert!(!indexed.is_empty(), "{totals}");
    for g in indexed {
        let (low, estimate, high) = (
            g["total"]["low"].as_f64().unwrap(),
            g["total"]["estimate"].as_f64().unwrap(),
            g["total"]["high"].as_f64().unwrap(),
        );
        assert!(low <= estimate && estimate <= high, "{g}");
    }

    let error = fails(&["sensitivity", &sweep, "--db", path_str(&db), "--unit", "nowhere"]);
    assert!(error.contains("no unit `nowhere`"), "{error}");
    let error = fails(&["sensitivity", &sweep, "--db", path_str(&db), "--output", "peak"]);
    assert!(error.contains("peak") && error.contains("total") && error.contains("zone"), "{error}");
    let error = fails(&["sensitivity", &sweep, "--db", path_str(&db), "--format", "xml"]);
    assert!(error.contains("xml") && error.contains("table"), "{error}");

    let plain = dir.path().join("plain.toml");
    fs::write(&plain, "samples = 3\nk = { dist = \"uniform\", low = 0.01, high = 0.05 }\n").unwrap();
    let plain_sweep = run(&plain);
    let error = fails(&["sensitivity", &plain_sweep, "--db", path_str(&db)]);
    assert!(error.contains("add `sensitivity = { method = \"saltelli\" }` to its spec"), "{error}");
}
