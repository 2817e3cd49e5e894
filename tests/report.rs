//! `zonesweep report` end to end: a small sweep, its report, the files
//! parsed, the figures decoded, and the page opened in headless Chromium
//! (no console message, no network request, a non-blank screenshot).

// Progress notes go to the test runner, whose standard error stays open.
#![allow(clippy::disallowed_macros)]

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::Value;

fn zonesweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zonesweep")).args(args).output().expect("the zonesweep binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = zonesweep(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "zonesweep {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &stderr
}

fn fails(args: &[&str]) -> String {
    let out = zonesweep(args);
    assert!(!out.status.success(), "zonesweep {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Run a sweep into `db`; its id.
fn run(db: &Path, extra: &[&str]) -> String {
    let mut args = vec!["run", "--db", path_str(db), "--workers", "2"];
    args.extend(extra);
    let stdout = ok(&args);
    stdout
        .lines()
        .find(|l| l.trim().starts_with("sw-") && !l.contains(' '))
        .expect("run prints the sweep id")
        .trim()
        .to_owned()
}

/// The header and rows of a CSV file (the csv crate skips a UTF-8 BOM).
fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(bytes.starts_with("\u{feff}".as_bytes()), "{} starts with a UTF-8 BOM for Excel", path.display());
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let header: Vec<String> = reader.headers().expect("a header row").iter().map(str::to_owned).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", path.display())).iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// The standard deviation of the pixels' grey levels: 0 for a blank image.
fn pixel_spread(path: &Path) -> f64 {
    let image = image::open(path).unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display())).to_luma8();
    let n = f64::from(image.width() * image.height());
    let mean = image.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / n;
    (image.pixels().map(|p| (f64::from(p.0[0]) - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Every figure of the page: the SVGs it shows, each with its PNG beside it.
fn figures(dir: &Path) -> Vec<String> {
    let html = fs::read_to_string(dir.join("index.html")).expect("index.html");
    html.split("<img src=\"").skip(1).map(|rest| rest.split('"').next().expect("a quoted src").to_owned()).collect()
}

/// Nothing in the page or its figures points outside the folder.
fn check_offline(dir: &Path) {
    for entry in fs::read_dir(dir).expect("the report folder") {
        let path = entry.expect("an entry").path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["html", "svg"].contains(&ext) {
            continue;
        }
        let text = fs::read_to_string(&path).expect("text").to_lowercase();
        for remote in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "url(http",
            "url('http",
            "url(\"http",
            "@import",
            "//cdn",
        ] {
            assert!(!text.contains(remote), "{} refers to something online ({remote})", path.display());
        }
    }
    for src in figures(dir) {
        assert!(dir.join(&src).is_file(), "the page shows {src}, which is not beside it");
    }
}

/// The checks every report passes: files with a row per unit, figures not blank.
fn check_report(dir: &Path, n_units: usize) -> Vec<String> {
    let (header, rows) = csv_rows(&dir.join("units.csv"));
    assert_eq!(header[0], "id");
    assert_eq!(rows.len(), n_units, "units.csv has a row per unit");
    let ids: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), n_units, "unit ids are distinct");
    let p = column(&header, "p_modal");
    let (low, high) = (column(&header, "p_modal_low"), column(&header, "p_modal_high"));
    for row in &rows {
        assert_eq!(row.len(), header.len());
        let [p, low, high] = [p, low, high].map(|c| row[c].parse::<f64>().expect("a probability"));
        assert!((0.0..=1.0).contains(&p) && low <= p && p <= high, "{row:?}");
    }
    for name in ["low_p_peak_by_milestone", "baseline_peak_year_median", "high_p_neutral_by_horizon", "robust"] {
        column(&header, name);
    }
    let (peak_header, peak_rows) = csv_rows(&dir.join("peaking.csv"));
    assert_eq!(peak_rows.len(), 3 * n_units, "peaking.csv has a row per unit and scenario");
    let unit = column(&peak_header, "unit");
    assert!(peak_rows.iter().all(|r| ids.contains(&r[unit])));
    let (regional_header, regional_rows) = csv_rows(&dir.join("regional.csv"));
    let series = column(&regional_header, "series");
    for s in ["observed", "low", "baseline", "high"] {
        assert!(regional_rows.iter().any(|r| r[series] == s), "regional.csv has the {s} series");
    }
    let geojson: Value = serde_json::from_str(&fs::read_to_string(dir.join("units.geojson")).expect("units.geojson"))
        .expect("units.geojson is JSON");
    assert_eq!(geojson["type"], "FeatureCollection");
    let features = geojson["features"].as_array().expect("features");
    assert_eq!(features.len(), n_units, "a feature per unit");
    let mut kinds = Vec::new();
    for (feature, id) in features.iter().zip(&ids) {
        assert_eq!(feature["type"], "Feature");
        assert_eq!(&feature["properties"]["id"], id, "the features are in the order of units.csv");
        for key in &header {
            assert!(feature["properties"].get(key).is_some(), "property {key} of {id}");
        }
        let geometry = &feature["geometry"];
        let kind = geometry["type"].as_str().expect("a geometry type").to_owned();
        let position = |p: &Value| {
            let p = p.as_array().expect("a position");
            p.len() >= 2 && p.iter().all(|c| c.as_f64().is_some_and(f64::is_finite))
        };
        let ring = |r: &Value| {
            let r = r.as_array().expect("a ring");
            r.len() >= 4 && r.iter().all(position) && r.first() == r.last()
        };
        let polygon = |p: &Value| p.as_array().is_some_and(|rings| !rings.is_empty() && rings.iter().all(ring));
        let valid = match kind.as_str() {
            "Point" => position(&geometry["coordinates"]),
            "Polygon" => polygon(&geometry["coordinates"]),
            "MultiPolygon" => {
                geometry["coordinates"].as_array().is_some_and(|ps| !ps.is_empty() && ps.iter().all(polygon))
            }
            other => panic!("unexpected geometry {other}"),
        };
        assert!(valid, "valid {kind} geometry of {id}: {geometry}");
        kinds.push(kind);
    }
    let shown = figures(dir);
    assert!(shown.len() >= 7, "the page shows the figures: {shown:?}");
    for svg in &shown {
        let png = dir.join(svg.replace(".svg", ".png"));
        let spread = pixel_spread(&png);
        assert!(spread > 10.0, "{} is blank or nearly so (spread {spread:.1})", png.display());
        let text = fs::read_to_string(dir.join(svg)).expect("an SVG");
        assert!(text.contains("<svg") && text.contains("<text"), "{svg} is an SVG with text");
    }
    check_offline(dir);
    kinds
}

/// The Chromium binary, installed with apt-get when missing (as CI does).
fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
            let out = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
    };
    if let Some(path) = find() {
        return Some(path);
    }
    eprintln!("chromium is missing: installing it with apt-get");
    let _ = Command::new("sh")
        .args([
            "-c",
            "(apt-get install -y chromium || (apt-get update && apt-get install -y chromium)) >/dev/null 2>&1",
        ])
        .status();
    find()
}

/// Hosts Chromium itself calls in the background (updates, time, sign-in),
/// which no page asked for. A font or script CDN is not among them.
fn background_host(host: &str) -> bool {
    host.ends_with(".google.com")
        || host.ends_with(".gvt1.com")
        || (host.ends_with(".googleapis.com") && !host.starts_with("fonts."))
}

/// A proxy that takes every connection Chromium makes and records its
/// first line ("GET http://host/… HTTP/1.1" or "CONNECT host:443 …").
fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = listener.local_addr().expect("an address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            record.lock().expect("the record").push(line.trim().to_owned());
        }
    });
    (port, seen)
}

fn request_host(line: &str) -> String {
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let target = target.trim_start_matches("http://").trim_start_matches("https://");
    target.split(['/', ':']).next().unwrap_or("").to_owned()
}

/// Open `page` in headless Chromium through the recording proxy; its
/// stdout and stderr.
fn headless(chromium: &Path, port: u16, page: &Path, extra: &[&str]) -> (String, String) {
    let url = format!("file://{}", page.canonicalize().expect("the page").display());
    let proxy = format!("--proxy-server=127.0.0.1:{port}");
    let mut args = vec![
        "60",
        path_str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        &proxy,
        "--proxy-bypass-list=<-loopback>",
        "--enable-logging=stderr",
        "--v=0",
    ];
    args.extend(extra);
    args.push(&url);
    let out = Command::new("timeout").args(&args).output().expect("timeout and chromium run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed ({}):\n{stderr}", out.status);
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn the_report_of_a_sensitivity_sweep_has_every_file_and_opens_offline_in_chromium() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = dir.path().join("r.redb");
    let spec = dir.path().join("spec.toml");
    fs::write(
        &spec,
        "samples = 48\nseed = 7\nk = { dist = \"uniform\", low = 0.01, high = 0.05 }\n\
         [[cap]]\noffset = { dist = \"uniform\", low = -2.0, high = 2.0 }\n\
         [[rate]]\nscenario = \"*\"\nvariable = \"*\"\nperiod = \"*\"\nmultiplier = { dist = \"uniform\", low = 0.8, high = 1.2 }\n\
         [sensitivity]\nmethod = \"saltelli\"\n",
    )
    .expect("the spec");
    let sweep = run(&db, &["--spec", path_str(&spec)]);
    let out = dir.path().join("report");
    let printed = ok(&["report", &sweep, "--db", path_str(&db), "--out", path_str(&out)]);
    assert!(printed.contains("wrote the report of sweep") && printed.contains(" s"), "{printed}");
    let kinds = check_report(&out, 81);
    // The built-in demo has synthetic county polygons (its units.geojson).
    assert!(kinds.iter().all(|k| k == "Polygon"), "the demo's units are polygons: {kinds:?}");
    let (header, rows) = csv_rows(&out.join("sensitivity.csv"));
    let group = column(&header, "group");
    let groups: HashSet<&str> = rows.iter().map(|r| r[group].as_str()).collect();
    assert!(groups.len() >= 2, "several groups: {groups:?}");
    assert!(figures(&out).iter().any(|f| f == "sensitivity.svg"));
    let html = fs::read_to_string(out.join("index.html")).expect("index.html");
    for text in [
        "zone assignments are robust",
        "peaks by 2030 with probability",
        "<details>",
        "@media print",
        "class=\"sortable\"",
    ] {
        assert!(html.contains(text), "the page has {text}");
    }

    let Some(chromium) = chromium() else {
        eprintln!(
            "\n\n!!!!! SKIPPED the Chromium checks of the report: chromium is not installed and apt-get could not install it !!!!!\n\n"
        );
        return;
    };
    let (port, requests) = recording_proxy();
    let page = out.join("index.html");
    let (dom, log) = headless(&chromium, port, &page, &["--dump-dom"]);
    assert!(
        dom.contains("data-sortable=\"ready\""),
        "the page's script ran to its end:\n{}",
        &dom[..dom.len().min(2000)]
    );
    assert!(dom.contains("title=\"click to sort\""), "the table headers are sortable");
    let shot = dir.path().join("screenshot.png");
    let screenshot = format!("--screenshot={}", shot.display());
    let (_, shot_log) = headless(&chromium, port, &page, &[&screenshot, "--window-size=1280,3000"]);
    for line in log.lines().chain(shot_log.lines()) {
        assert!(!line.contains(":CONSOLE"), "the page wrote to the console: {line}");
        assert!(!line.contains("ERR_FILE_NOT_FOUND"), "the page misses a file: {line}");
    }
    let from_page: Vec<String> =
        requests.lock().expect("the record").iter().filter(|l| !background_host(&request_host(l))).cloned().collect();
    assert!(from_page.is_empty(), "the page made network requests: {from_page:?}");
    let spread = pixel_spread(&shot);
    assert!(spread > 10.0, "the screenshot is blank or nearly so (spread {spread:.1})");
    let image = image::open(&shot).expect("the screenshot").to_rgb8();
    assert_eq!((image.width(), image.height()), (1280, 3000));
    // Each band of the screenshot holds something: the figures were drawn, not left empty.
    let band = 500;
    for top in (0..image.height() - band).step_by(band as usize) {
        let crop = image::imageops::crop_imm(&image, 0, top, image.width(), band).to_image();
        let grey = image::DynamicImage::ImageRgb8(crop).to_luma8();
        let n = f64::from(grey.width() * grey.height());
        let mean = grey.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / n;
        let spread = (grey.pixels().map(|p| (f64::from(p.0[0]) - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(spread > 5.0, "the screenshot's rows {top}–{} are blank", top + band);
    }
}

/// A square ring of half-side `r` around (x, y), closed.
fn square(x: f64, y: f64, r: f64) -> Value {
    serde_json::json!([[[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r], [x - r, y - r]]])
}

#[test]
fn a_dataset_with_polygons_gives_polygon_features_and_a_polygon_map() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data = dir.path().join("data");
    ok(&["data", "demo", "--out", path_str(&data), "--units", "9"]);
    let units = fs::read_to_string(data.join("units.csv")).expect("units.csv");
    let mut features = Vec::new();
    for (i, line) in units.lines().skip(1).enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let (id, x, y) = (fields[0], fields[3].parse::<f64>().expect("lon"), fields[4].parse::<f64>().expect("lat"));
        let geometry = if i == 0 {
            // Two parts, the second a square with a hole.
            let mut outer = square(x, y, 0.2)[0].clone();
            let hole = square(x + 1.0, y, 0.05)[0].clone();
            let second = serde_json::json!([square(x + 1.0, y, 0.2)[0].clone(), hole]);
            outer = serde_json::json!([outer]);
            serde_json::json!({ "type": "MultiPolygon", "coordinates": [outer, second] })
        } else {
            serde_json::json!({ "type": "Polygon", "coordinates": square(x, y, 0.2) })
        };
        features.push(serde_json::json!({ "type": "Feature", "properties": { "id": id }, "geometry": geometry }));
    }
    let collection = serde_json::json!({ "type": "FeatureCollection", "features": features });
    fs::write(data.join("units.geojson"), collection.to_string()).expect("units.geojson");
    let db = dir.path().join("p.redb");
    let sweep = run(&db, &["--data", path_str(&data), "--samples", "30", "--seed", "3"]);
    let out = dir.path().join("report");
    ok(&["report", &sweep, "--db", path_str(&db), "--out", path_str(&out)]);
    let kinds = check_report(&out, 9);
    assert_eq!(kinds[0], "MultiPolygon");
    assert!(kinds[1..].iter().all(|k| k == "Polygon"), "{kinds:?}");
    let written: Value =
        serde_json::from_str(&fs::read_to_string(out.join("units.geojson")).expect("geojson")).expect("JSON");
    assert_eq!(written["features"][1]["geometry"], features[1]["geometry"], "the dataset's polygons are kept");
    let html = fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(html.contains("unit polygons from the dataset"), "the map says what it draws");
    assert!(!out.join("sensitivity.csv").exists(), "no sensitivity file without a sensitivity design");

    let refused =
        fails(&["report", &sweep, "--db", path_str(&db), "--out", path_str(&out), "--robust-threshold", "1.5"]);
    assert!(refused.contains("1.5") && refused.contains("0 to 1"), "{refused}");
    let missing = fails(&["report", "sw-0000000000000000", "--db", path_str(&db), "--out", path_str(&out)]);
    assert!(missing.contains("sw-0000000000000000"), "{missing}");
}

/// Without `units.geojson` the map and the GeoJSON fall back to the units'
/// points (lon, lat).
#[test]
fn a_dataset_without_polygons_gives_point_features_and_a_point_map() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let data = dir.path().join("data");
    ok(&["data", "demo", "--out", path_str(&data), "--units", "9"]);
    fs::remove_file(data.join("units.geojson")).expect("the demo writes units.geojson");
    let db = dir.path().join("p.redb");
    let sweep = run(&db, &["--data", path_str(&data), "--samples", "20", "--seed", "3"]);
    let out = dir.path().join("report");
    ok(&["report", &sweep, "--db", path_str(&db), "--out", path_str(&out)]);
    let kinds = check_report(&out, 9);
    assert!(kinds.iter().all(|k| k == "Point"), "{kinds:?}");
}
