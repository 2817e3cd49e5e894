//! Writes the seed corpora under `fuzz/corpus/` from the fuzz fixtures:
//! `cargo +nightly run --example write_seeds` from `fuzz/`.

use std::fs;
use std::path::Path;

use zonesweep_coordinator::submission::{JobSizing, Submission, prepare};
use zonesweep_fuzz::{complete_request, complete_request_packed, fixture_csv, result_fixture};
use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::data::demo;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;

fn write(target: &str, name: &str, bytes: &[u8]) {
    check(target, name, bytes);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// Seeds meant to be valid must be: a seed refused at the first step
/// explores little.
fn check(target: &str, name: &str, bytes: &[u8]) {
    if target == "result" {
        return;
    }
    let parts: Vec<&str> = bytes.split(|&b| b == 0).map(|p| std::str::from_utf8(p).unwrap()).collect();
    let valid = match target {
        "dataset" if name == "mistakes" => return,
        "dataset" => Dataset::from_csv(parts[0], parts[1], parts.get(2).copied()).map(drop).map_err(|e| e.to_string()),
        "config" => Config::from_toml_overrides(parts[0], name).map(drop).map_err(|e| e.to_string()),
        "spec" => {
            let (units_csv, panel_csv) = fixture_csv().clone();
            let submission = Submission {
                units_csv,
                panel_csv,
                spec_toml: parts[0].to_owned(),
                config_toml: parts.get(1).copied().unwrap_or_default().to_owned(),
                ..Submission::default()
            };
            prepare(submission, JobSizing::Fixed(100)).map(drop).map_err(|e| e.to_string())
        }
        _ => Ok(()),
    };
    if let Err(e) = valid {
        panic!("seed {target}/{name} is refused: {e}");
    }
}

fn joined(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// The panel of `panel` with only the years from `first` on.
fn from_year(panel: &str, first: i32) -> String {
    let mut lines = panel.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let year: i32 = line.split(',').nth(1).unwrap().parse().unwrap();
        if year >= first {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn main() {
    // Datasets: 3 units over 2014–2020, with polygons, with an interior gap,
    // and with a few typical mistakes.
    let (units, panel) = demo::generate(3, 5).unwrap().to_csv();
    let panel = from_year(&panel, 2014);
    write("dataset", "three-units", &joined(&[&units, &panel]));
    let geojson = r#"{"type":"FeatureCollection","features":[
        {"type":"Feature","properties":{"id":"QB01"},"geometry":null},
        {"type":"Feature","properties":{"id":"QB02"},"geometry":null},
        {"type":"Feature","properties":{"id":"QB03"},"geometry":null}]}"#;
    write("dataset", "with-polygons", &joined(&[&units, &panel, geojson]));
    let mut lines: Vec<String> = panel.lines().map(str::to_owned).collect();
    let mut cells: Vec<&str> = lines[3].split(',').collect();
    cells[5] = "";
    lines[3] = cells.join(",");
    write("dataset", "interior-gap", &joined(&[&units, &(lines.join("\n") + "\n")]));
    let broken = panel.replacen(",2015,", ",2015.5,", 1).replacen("QB02", "QB09", 1);
    write("dataset", "mistakes", &joined(&[&units.replacen("QB03", "QB01", 1), &broken]));

    // Configurations: the whole default, and a few overrides.
    write("config", "default", Config::default_toml().as_bytes());
    write(
        "config",
        "overrides",
        b"[ridge]\nk = 0.03\ntrace = [{ to = 0.5, step = 0.05 }]\n[stirpat]\nfit = \"pooled\"\ncei = \"secondary_gdp\"\n\
          [scenarios]\nhorizon = 2050\nmilestone = 2035\ninterval_years = 1\nneutral_sink = \"sen-extrapolation\"\n\
          [scenarios.low.UR]\nsecond = { rate = \"delta\", sign = \"keep\", factor = 1.0, offset = 0.0, cap = { value = 72.0, offset = 0.0 } }\n\
          [zoning]\nzones = 3\ntrend_threshold = 1.96\n[coefficients.energy.raw_coal]\ncarbon = 0.7\n",
    );

    write("config", "ridge-trace", b"[ridge]\ntrace = [{ to = 0.005, step = 0.0005 }, { to = 2.0, step = 0.05 }]\nvif_limit = 5.0\nstability = 0.02\n");

    write("config", "early-milestone", b"[scenarios]\nhorizon = 2100\nmilestone = 1990\n");

    // Sweep specs, alone and with a configuration.
    write("spec", "default", SweepSpec::default().to_toml().as_bytes());
    let spec = r#"samples = 50
seed = 9
design = "latin-hypercube"
k = { dist = "triangular", low = 0.01, mode = 0.02, high = 0.05 }
trend_threshold = { dist = "fixed", value = 1.96 }

[[rate]]
scenario = "high"
variable = "W"
period = "second"
multiplier = { dist = "normal", mean = 1.0, sd = 0.05 }

[[cap]]
scenario = "low"
variable = "UR"
period = "*"
offset = { dist = "uniform", low = -2.0, high = 2.0 }

[[coefficient]]
name = "energy.*.carbon"
multiplier = { dist = "lognormal", mu = 0.0, sigma = 0.1 }

[[noise]]
group = "energy"
sigma = 0.05

[[reading]]
name = "fit"
weights = { regional = 0.7, pooled = 0.3 }

[[reading]]
name = "interval_years"
weights = { "1" = 0.5, "5" = 0.5 }
"#;
    write("spec", "every-entry", spec.as_bytes());
    write(
        "spec",
        "sobol-with-config",
        &joined(&["samples = 8\ndesign = \"sobol\"\n", "[scenarios]\nhorizon = 2045\n"]),
    );

    // Job results: the real results of jobs 1 and 2, and a failed job.
    let fixture = result_fixture();
    write("result", "job-1", &complete_request(1, &fixture.results[1]));
    write("result", "job-2", &complete_request(2, &fixture.results[2]));
    let mut failed = Aggregate::empty(fixture.shape);
    for sample in 4..8 {
        failed.add_failure(sample, "diverges", &format!("sample {sample}: the projection diverges"));
    }
    write("result", "job-1-failed", &complete_request(1, &failed));
    // The packed form workers send.
    write("result", "job-2-packed", &complete_request_packed(2, &fixture.results[2]));
    write("result", "job-1-failed-packed", &complete_request_packed(1, &failed));
}
