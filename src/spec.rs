//! `zonesweep spec`: the default sweep spec, and what a spec file expands to.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use zonesweep_shared::data::fields::{Field, FieldGroup};
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::distribution::Distribution;
use zonesweep_shared::sweep::spec::SweepError;
use zonesweep_shared::sweep::{Plan, SweepSpec};

#[derive(Subcommand)]
pub enum SpecCommand {
    /// Print the default sweep spec as TOML, every key commented.
    Default,
    /// List the uncertain parameters a spec file expands to (with their
    /// distributions), its noise, readings and sensitivity groups; or its
    /// problems.
    Check {
        /// The sweep spec (TOML).
        file: PathBuf,
        /// Resolve it against this configuration (the caps a rule has come
        /// from it); the default configuration when omitted.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

pub fn run(command: SpecCommand) -> Result<()> {
    match command {
        SpecCommand::Default => {
            print!("{}", SweepSpec::default_toml());
            Ok(())
        }
        SpecCommand::Check { file, config } => {
            let config = match &config {
                Some(path) => {
                    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                    Config::from_toml_overrides(&text, &path.display().to_string())?
                }
                None => Config::default(),
            };
            let text = fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let (spec, plan) = checked_spec(&text, &file, &config, None, None)?;
            print!("{}", describe(&file, &spec, &plan));
            Ok(())
        }
    }
}

/// Parse and plan the spec of `path` (`samples` and `seed` override the
/// file's, as on the command line); errors name the file, one problem per line.
pub fn checked_spec(
    text: &str,
    path: &Path,
    config: &Config,
    samples: Option<u64>,
    seed: Option<u64>,
) -> Result<(SweepSpec, Plan)> {
    let name = path.display().to_string();
    let mut spec = SweepSpec::from_toml(text, &name)?;
    if let Some(samples) = samples {
        spec.samples = samples;
    }
    if let Some(seed) = seed {
        spec.seed = seed;
    }
    match spec.plan(config) {
        Ok(plan) => Ok((spec, plan)),
        Err(SweepError::Invalid(problems)) => {
            let mut message = format!("{name}: the sweep spec has {} problem(s):", problems.len());
            for problem in &problems {
                let _ = write!(message, "\n  {problem}");
            }
            bail!("{message}")
        }
        Err(e) => bail!("{name}: {e}"),
    }
}

/// A distribution as a spec writes it, e.g. `uniform low=0.01 high=0.05`.
fn distribution(d: Distribution) -> String {
    match d {
        Distribution::Fixed { value } => format!("fixed value={value}"),
        Distribution::Uniform { low, high } => format!("uniform low={low} high={high}"),
        Distribution::Normal { mean, sd } => format!("normal mean={mean} sd={sd}"),
        Distribution::TruncatedNormal { mean, sd, low, high } => {
            format!("truncated-normal mean={mean} sd={sd} low={low} high={high}")
        }
        Distribution::Triangular { low, mode, high } => format!("triangular low={low} mode={mode} high={high}"),
        Distribution::Lognormal { mu, sigma } => format!("lognormal mu={mu} sigma={sigma}"),
    }
}

/// What `spec check` prints: the plan of a spec, part by part.
fn describe(file: &Path, spec: &SweepSpec, plan: &Plan) -> String {
    let mut out = String::new();
    let uncertain = plan.dimensions.iter().filter(|d| !d.distribution.is_fixed()).count();
    let _ = writeln!(
        out,
        "{}: valid; {} samples, seed {}, design {}; {} parameters ({uncertain} uncertain)",
        file.display(),
        plan.samples,
        plan.seed,
        design_name(spec),
        plan.dimensions.len()
    );
    let width = plan.dimensions.iter().map(|d| d.name.chars().count()).max().unwrap_or(0);
    let _ = writeln!(out, "parameters:");
    for (d, dimension) in plan.dimensions.iter().enumerate() {
        let drawn = match dimension.target {
            zonesweep_shared::sweep::Target::Reading(r) => {
                let entry = &spec.reading[r];
                let total: f64 = entry.weights.values().sum();
                let options: Vec<String> =
                    entry.weights.iter().map(|(option, w)| format!("{option} {:.3}", w / total)).collect();
                format!("categorical {}", options.join(", "))
            }
            _ => distribution(dimension.distribution.spec()),
        };
        let _ = writeln!(out, "  {:>4}  {:<width$}  {drawn}", d + 1, dimension.name);
    }
    let mut noisy = Vec::new();
    for group in FieldGroup::ALL {
        let sigma =
            Field::ALL.iter().filter(|f| f.group() == group).map(|f| plan.noise_sigma[*f as usize]).fold(0.0, f64::max);
        if sigma > 0.0 {
            noisy.push(format!("{} σ={sigma}", group.key()));
        }
    }
    let _ = writeln!(out, "noise: {}", if noisy.is_empty() { "none".to_owned() } else { noisy.join(", ") });
    let readings: Vec<&str> = spec.reading.iter().map(|r| r.name.as_str()).collect();
    let _ = writeln!(
        out,
        "readings drawn: {}",
        if readings.is_empty() { "none (the configuration's)".to_owned() } else { readings.join(", ") }
    );
    match &plan.sensitivity {
        None => {
            let _ = writeln!(out, "sensitivity: none");
        }
        Some(sensitivity) => {
            let _ = writeln!(
                out,
                "sensitivity: {} groups, {} chain runs per sample",
                sensitivity.groups.len(),
                2 + sensitivity.groups.len()
            );
            for group in &sensitivity.groups {
                let mut members: Vec<String> =
                    group.dimensions.iter().map(|&d| plan.dimensions[d].name.clone()).collect();
                members.extend(group.noise.iter().map(|g| format!("noise.{}", g.key())));
                let _ = writeln!(out, "  {}: {}", group.name, members.join(", "));
            }
        }
    }
    out
}

fn design_name(spec: &SweepSpec) -> String {
    serde_json::to_value(spec.design).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
