//! The `data` commands end to end: `data validate` (by `--data` or by
//! position, capped listings, the delimiter hint, Windows line ends) and
//! `data demo` (refusing to overwrite without `--force`).

mod common;

use std::fs;
use std::path::Path;

use common::*;
use zonesweep_shared::data::demo;

/// A demo dataset of `units` units written by `data demo` into `dir`.
fn write_demo(dir: &Path, units: usize) {
    ok(&["data", "demo", "--out", path_str(dir), "--units", &units.to_string(), "--seed", "5"]);
}

#[test]
fn validate_takes_the_folder_by_data_or_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    write_demo(&out, 4);
    let by_option = ok(&["data", "validate", "--data", path_str(&out)]).stdout;
    let by_position = ok(&["data", "validate", path_str(&out)]).stdout;
    assert!(by_option.contains("valid; 4 units, 21 years"), "{by_option}");
    assert_eq!(by_option, by_position);

    let stderr = fails(&["data", "validate"]);
    assert!(stderr.contains("--data DIR"), "{stderr}");
    let stderr = fails(&["data", "validate", path_str(&out), "--data", path_str(&out)]);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn validate_reports_the_right_lines_of_a_file_with_windows_line_ends() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crlf");
    write_demo(&out, 2);
    let panel = fs::read_to_string(out.join("panel.csv")).unwrap();
    // Line 7 (the header is line 1) gets a bad population; saved with CRLF.
    let mut lines: Vec<String> = panel.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = header.iter().position(|h| *h == "population").unwrap();
    let mut cells: Vec<String> = lines[6].split(',').map(str::to_owned).collect();
    cells[column] = "n/a".into();
    lines[6] = cells.join(",");
    fs::write(out.join("panel.csv"), lines.join("\r\n") + "\r\n").unwrap();
    let units = fs::read_to_string(out.join("units.csv")).unwrap();
    fs::write(out.join("units.csv"), units.replace('\n', "\r\n")).unwrap();

    let stderr = fails(&["data", "validate", "--data", path_str(&out)]);
    assert!(stderr.contains("panel.csv line 7, column `population`, value `n/a`: not a number"), "{stderr}");
}

#[test]
fn validate_names_a_semicolon_separated_file_first_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("semicolons");
    write_demo(&out, 3);
    let panel = fs::read_to_string(out.join("panel.csv")).unwrap();
    fs::write(out.join("panel.csv"), panel.replace(',', ";")).unwrap();
    let stderr = fails(&["data", "validate", "--data", path_str(&out)]);
    assert!(stderr.contains("the dataset has 1 problem(s)"), "{stderr}");
    assert!(
        stderr.contains(
            "panel.csv line 1: the header looks `;`-separated; zonesweep reads comma-separated files \
             (save it as CSV UTF-8 (comma delimited))"
        ),
        "{stderr}"
    );
}

#[test]
fn validate_caps_repeated_problems_and_all_lists_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("many");
    write_demo(&out, 3);
    let panel = fs::read_to_string(out.join("panel.csv")).unwrap();
    // Every row's `heat` is text, and the header misses `unused`.
    let mut lines: Vec<Vec<String>> = panel.lines().map(|l| l.split(',').map(str::to_owned).collect()).collect();
    let heat = lines[0].iter().position(|h| h == "heat").unwrap();
    let unused = lines[0].iter().position(|h| h == "unused").unwrap();
    for row in lines.iter_mut().skip(1) {
        row[heat] = "lots".into();
    }
    for row in &mut lines {
        row.remove(unused);
    }
    let text: String = lines.iter().map(|row| row.join(",") + "\n").collect();
    fs::write(out.join("panel.csv"), text).unwrap();

    let stderr = fails(&["data", "validate", "--data", path_str(&out)]);
    assert!(stderr.contains("the dataset has 64 problem(s)"), "{stderr}");
    assert!(stderr.contains("panel.csv line 1, column `unused`: missing required column"), "{stderr}");
    assert!(stderr.contains("panel.csv line 2, column `heat`, value `lots`: not a number"), "{stderr}");
    assert!(stderr.contains("… and 58 more of the same kind"), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.contains("not a number")).count(), 5, "{stderr}");

    let stderr = fails(&["data", "validate", "--data", path_str(&out), "--all"]);
    assert_eq!(stderr.lines().filter(|l| l.contains("not a number")).count(), 63, "{stderr}");
    assert!(stderr.contains("panel.csv line 64, column `heat`, value `lots`: not a number"), "{stderr}");
}

#[test]
fn demo_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    write_demo(&out, 3);
    let before = fs::read_to_string(out.join("units.csv")).unwrap();

    let stderr = fails(&["data", "demo", "--out", path_str(&out), "--units", "4"]);
    assert!(stderr.contains("units.csv already exists") && stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read_to_string(out.join("units.csv")).unwrap(), before, "nothing was overwritten");

    // One file of the set is enough to refuse.
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("panel.csv"), "mine").unwrap();
    let stderr = fails(&["data", "demo", "--out", path_str(&other)]);
    assert!(stderr.contains("panel.csv already exists") && stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read_to_string(other.join("panel.csv")).unwrap(), "mine");

    // Other files do not matter; --force overwrites.
    let notes = dir.path().join("notes");
    fs::create_dir(&notes).unwrap();
    fs::write(notes.join("README.txt"), "my notes").unwrap();
    write_demo(&notes, 2);
    ok(&["data", "demo", "--out", path_str(&out), "--units", "4", "--seed", "5", "--force"]);
    let (units, _) = demo::generate(4, 5).unwrap().to_csv();
    assert_eq!(fs::read_to_string(out.join("units.csv")).unwrap(), units);
}

#[test]
fn demo_writes_synthetic_polygons_that_validate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    write_demo(&out, 6);
    let dataset = demo::generate(6, 5).unwrap();
    let geojson = fs::read_to_string(out.join("units.geojson")).unwrap();
    assert_eq!(geojson, demo::units_geojson(dataset.units()));
    assert!(geojson.contains("synthetic"), "{geojson}");
    let stdout = ok(&["data", "validate", "--data", path_str(&out)]).stdout;
    assert!(stdout.contains("valid; 6 units") && stdout.contains("with polygons"), "{stdout}");

    // The bundled demo folder is `data demo` with its defaults, polygons included.
    let defaults = dir.path().join("defaults");
    ok(&["data", "demo", "--out", path_str(&defaults)]);
    for name in ["units.csv", "panel.csv", "units.geojson"] {
        let bundled = fs::read_to_string(demo_data_dir().join(name)).unwrap();
        assert!(fs::read_to_string(defaults.join(name)).unwrap() == bundled, "data/demo/{name} is not `data demo`'s");
    }
}
