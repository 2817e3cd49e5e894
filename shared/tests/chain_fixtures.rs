//! The whole chain against an independent implementation of the model specification: two
//! datasets (tests/fixtures/{seed99,edge98}, copied from the project's shared
//! reference vectors) and the `evaluate --json` document that implementation
//! produced at K = 0.02. The comparison is a port of
//! vectors/chain/compare.py: rules are driven by the type found in the
//! expected document.

mod common;

use common::{CHAIN_ATOL, CHAIN_RTOL, FILL_RTOL, close, rel_diff};
use serde_json::Value;
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::fields::Field;
use zonesweep_shared::model::chain::{self, Detail, Parameters};
use zonesweep_shared::model::config::Config;
use zonesweep_shared::model::evaluation::EvaluateDocument;

/// compare.py's `Cmp`: every mismatch with its path, type warnings, and the
/// number of leaf values compared.
struct Compare {
    rtol: f64,
    atol: f64,
    mismatches: Vec<String>,
    type_warnings: Vec<String>,
    compared: usize,
    /// The largest relative difference among floats that matched, for the log.
    worst_float: (f64, String),
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

impl Compare {
    fn new(rtol: f64, atol: f64) -> Compare {
        Compare {
            rtol,
            atol,
            mismatches: Vec::new(),
            type_warnings: Vec::new(),
            compared: 0,
            worst_float: (0.0, String::new()),
        }
    }

    fn bad(&mut self, path: &str, e: impl std::fmt::Display, a: impl std::fmt::Display, why: &str) {
        let why = if why.is_empty() { String::new() } else { format!("  ({why})") };
        self.mismatches.push(format!("{path}  expected={e}  actual={a}{why}"));
    }

    fn run(&mut self, e: &Value, a: &Value, path: &str) {
        match e {
            Value::Object(eo) => {
                let Value::Object(ao) = a else {
                    return self.bad(path, "object", type_name(a), "type");
                };
                for (k, ev) in eo {
                    let p = format!("{path}.{k}");
                    match ao.get(k) {
                        None => self.bad(&p, "present", "missing", "missing key"),
                        Some(av) => self.run(ev, av, &p),
                    }
                }
            }
            Value::Array(ea) => {
                let Value::Array(aa) = a else {
                    return self.bad(path, "array", type_name(a), "type");
                };
                if ea.len() != aa.len() {
                    return self.bad(path, format!("len {}", ea.len()), format!("len {}", aa.len()), "length");
                }
                for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                    self.run(ev, av, &format!("{path}[{i}]"));
                }
            }
            _ => {
                self.compared += 1;
                self.leaf(e, a, path);
            }
        }
    }

    fn leaf(&mut self, e: &Value, a: &Value, path: &str) {
        match e {
            Value::Null => {
                if !a.is_null() {
                    self.bad(path, e, a, "");
                }
            }
            Value::Bool(eb) => {
                if a.as_bool() != Some(*eb) {
                    self.bad(path, e, a, "");
                }
            }
            Value::String(es) => {
                if a.as_str() != Some(es.as_str()) {
                    self.bad(path, e, a, "");
                }
            }
            Value::Number(en) if !en.is_f64() => {
                // Integer: exact numeric equality; an integer-valued float is
                // accepted with a type warning.
                let Value::Number(an) = a else {
                    return self.bad(path, e, a, "");
                };
                let equal = match (en.as_i64(), an.as_i64(), en.as_u64(), an.as_u64()) {
                    (Some(x), Some(y), _, _) => x == y,
                    (_, _, Some(x), Some(y)) => x == y,
                    _ if an.is_f64() => {
                        an.as_f64() == en.as_f64() && en.as_f64().is_some_and(|v| v.abs() < 2f64.powi(53))
                    }
                    _ => false,
                };
                if !equal {
                    self.bad(path, e, a, "");
                } else if an.is_f64() {
                    self.type_warnings.push(path.to_owned());
                }
            }
            Value::Number(en) => {
                let ev = en.as_f64().expect("a float");
                let Some(av) = a.as_f64().filter(|_| a.is_number()) else {
                    return self.bad(path, e, a, "type");
                };
                if !close(av, ev, self.rtol, self.atol) {
                    self.bad(path, e, a, &format!("rel {:.3e}", rel_diff(av, ev)));
                } else if rel_diff(av, ev) > self.worst_float.0 && (av - ev).abs() > self.atol {
                    self.worst_float = (rel_diff(av, ev), path.to_owned());
                }
            }
            Value::Array(_) | Value::Object(_) => unreachable!("containers are handled by run"),
        }
    }
}

/// The configuration of the earlier readings (`expected-readings-2026-11-28.json`):
/// one pooled fit, CEI over secondary GDP, year-over-year rates.
fn earlier_readings() -> Config {
    let text = "[stirpat]\nfit = \"pooled\"\ncei = \"secondary_gdp\"\n[scenarios]\ninterval_years = 1\n";
    Config::from_toml_overrides(text, "earlier readings").expect("a valid configuration")
}

/// Run the chain on a fixture at the nominal parameters (K = 0.02) and
/// compare its document with the expected one.
fn check_fixture(name: &str, units_csv: &str, panel_csv: &str, expected_json: &str, config: &Config) -> Dataset {
    let dataset = Dataset::from_csv(units_csv, panel_csv, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let config = config.clone();
    let parameters = Parameters::nominal(&config);
    assert_eq!(parameters.k, 0.02, "the fixtures were made at the paper's K");
    let result = chain::run(&dataset, &config, &parameters, Detail::Full).unwrap_or_else(|e| panic!("{name}: {e}"));
    let document = EvaluateDocument::new(&dataset, &result);
    let actual = serde_json::to_value(&document).expect("the document serializes");
    let expected: Value = serde_json::from_str(expected_json).expect("valid expected.json");

    let mut cmp = Compare::new(CHAIN_RTOL, CHAIN_ATOL);
    cmp.run(&expected, &actual, "$");
    println!(
        "{name}: {} value(s) compared, {} mismatch(es); largest matching float difference {:.3e} at {}",
        cmp.compared,
        cmp.mismatches.len(),
        cmp.worst_float.0,
        cmp.worst_float.1
    );
    if let Some(first) = cmp.type_warnings.first() {
        println!(
            "{name}: note: {} integer field(s) given as integer-valued floats, e.g. {first}",
            cmp.type_warnings.len()
        );
    }
    assert!(cmp.compared > 0, "{name}: nothing compared");
    if !cmp.mismatches.is_empty() {
        panic!(
            "{name}: {} mismatch(es) in {} compared values (rtol {CHAIN_RTOL:e}, atol {CHAIN_ATOL:e}):\n{}",
            cmp.mismatches.len(),
            cmp.compared,
            cmp.mismatches.join("\n")
        );
    }
    dataset
}

#[test]
fn seed99_matches_the_independent_implementation() {
    let dataset = check_fixture(
        "seed99",
        include_str!("fixtures/seed99/units.csv"),
        include_str!("fixtures/seed99/panel.csv"),
        include_str!("fixtures/seed99/expected.json"),
        &Config::default(),
    );
    assert!(dataset.fills().is_empty(), "seed99 has no gaps: {:?}", dataset.fills());
}

#[test]
fn seed99_under_the_earlier_readings_matches_too() {
    check_fixture(
        "seed99 (earlier readings)",
        include_str!("fixtures/seed99/units.csv"),
        include_str!("fixtures/seed99/panel.csv"),
        include_str!("fixtures/seed99/expected-readings-2026-11-28.json"),
        &earlier_readings(),
    );
}

#[test]
fn edge98_under_the_earlier_readings_matches_too() {
    check_fixture(
        "edge98 (earlier readings)",
        include_str!("fixtures/edge98/units.csv"),
        include_str!("fixtures/edge98/panel.csv"),
        include_str!("fixtures/edge98/expected-readings-2026-11-28.json"),
        &earlier_readings(),
    );
}

/// The two sets of readings give different documents: each fixture pair
/// really tests its own readings.
#[test]
fn the_readings_change_the_fixture_results() {
    let new: Value = serde_json::from_str(include_str!("fixtures/seed99/expected.json")).unwrap();
    let old: Value = serde_json::from_str(include_str!("fixtures/seed99/expected-readings-2026-11-28.json")).unwrap();
    assert_ne!(new["stirpat"], old["stirpat"]);
    assert_ne!(new["projection"]["low"]["peak_year"], old["projection"]["low"]["peak_year"]);
}

/// The interior gaps of edge98/panel.csv: (unit, year, field, panel.csv line,
/// value). The values are the natural cubic spline through the unit's known
/// values of that field over the years, evaluated in exact rational
/// arithmetic on the CSV's decimal strings (Python `fractions`), then rounded.
const EDGE98_FILLS: [(&str, i32, &str, u64, f64); 13] = [
    ("U002", 2004, "gdp", 27, 146010.34821803586),
    ("U002", 2005, "gdp", 28, 157971.46136909764),
    ("U002", 2007, "forest", 30, 96171.49103379245),
    ("U002", 2010, "forest", 33, 98323.83510383028),
    ("U002", 2016, "forest", 39, 102394.23171617641),
    ("U009", 2001, "population", 171, 200695.1246520304),
    ("U011", 2017, "forest", 229, 193401.01364820823),
    ("U016", 2019, "electricity", 336, 47351.16431583045),
    ("U018", 2007, "raw_coal", 366, 119029.28364594968),
    ("U019", 2008, "fertilizer", 388, 9263.65840786384),
    ("U020", 2015, "secondary_gdp", 416, 1508563.5174079037),
    ("U034", 2010, "cropland", 705, 20293.938624771927),
    ("U034", 2019, "gdp", 714, 615310.8571460639),
];

#[test]
fn edge98_matches_the_independent_implementation_and_reports_its_fills() {
    let dataset = check_fixture(
        "edge98",
        include_str!("fixtures/edge98/units.csv"),
        include_str!("fixtures/edge98/panel.csv"),
        include_str!("fixtures/edge98/expected.json"),
        &Config::default(),
    );

    let mut problems = Vec::new();
    let mut reported: Vec<(String, i32, String, u64)> =
        dataset.fills().iter().map(|f| (f.unit_id.clone(), f.year, f.field.clone(), f.line)).collect();
    reported.sort();
    let mut expected: Vec<(String, i32, String, u64)> =
        EDGE98_FILLS.iter().map(|&(u, y, f, l, _)| (u.to_owned(), y, f.to_owned(), l)).collect();
    expected.sort();
    if reported != expected {
        problems.push(format!("fills reported {reported:?}\n  expected {expected:?}"));
    }
    for &(unit_id, year, field, _, value) in &EDGE98_FILLS {
        let Some(fill) = dataset.fills().iter().find(|f| f.unit_id == unit_id && f.year == year && f.field == field)
        else {
            continue; // already reported above
        };
        if !close(fill.value, value, FILL_RTOL, 0.0) {
            problems.push(format!(
                "fill {unit_id} {year} {field}: {} , spline reference {value} (rel {:.3e})",
                fill.value,
                rel_diff(fill.value, value)
            ));
        }
        // The filled value is what the panel holds.
        let u = dataset.units().iter().position(|x| x.id == unit_id).expect("unit");
        let t = dataset.years().iter().position(|&y| y == year).expect("year");
        let f = Field::from_name(field).expect("field");
        let held = dataset.row(u, t)[f as usize];
        if held != fill.value {
            problems.push(format!("{unit_id} {year} {field}: the panel holds {held}, the fill says {}", fill.value));
        }
    }
    assert!(problems.is_empty(), "edge98 fills:\n  {}", problems.join("\n  "));
}

/// The port of compare.py catches each kind of difference it is meant to.
#[test]
fn comparison_reports_every_kind_of_mismatch() {
    let expected: Value = serde_json::from_str(
        r#"{"f": 1.0, "tiny": 0.0, "i": 3, "b": true, "n": null, "s": "x", "l": [1, 2], "o": {"k": 1.5}, "gone": 1}"#,
    )
    .unwrap();
    let same: Value = serde_json::from_str(
        r#"{"f": 1.0000005, "tiny": 1e-13, "i": 3.0, "b": true, "n": null, "s": "x", "l": [1, 2], "o": {"k": 1.5}, "gone": 1, "extra": 0}"#,
    )
    .unwrap();
    let mut cmp = Compare::new(CHAIN_RTOL, CHAIN_ATOL);
    cmp.run(&expected, &same, "$");
    assert!(cmp.mismatches.is_empty(), "{:?}", cmp.mismatches);
    assert_eq!(cmp.type_warnings, vec!["$.i"]);

    let different: Value = serde_json::from_str(
        r#"{"f": 1.000002, "tiny": 1e-11, "i": 4, "b": false, "n": 2020, "s": "y", "l": [1], "o": {"k": "1.5"}}"#,
    )
    .unwrap();
    let mut cmp = Compare::new(CHAIN_RTOL, CHAIN_ATOL);
    cmp.run(&expected, &different, "$");
    let paths: Vec<&str> = cmp.mismatches.iter().map(|m| m.split_whitespace().next().unwrap()).collect();
    // serde_json maps iterate in key order.
    assert_eq!(
        paths,
        vec!["$.b", "$.f", "$.gone", "$.i", "$.l", "$.n", "$.o.k", "$.s", "$.tiny"],
        "{:#?}",
        cmp.mismatches
    );
}
