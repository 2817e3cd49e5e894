//! A sweep spec as written in TOML: which parameters are uncertain, with
//! what distribution, and which readings of the paper are drawn.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::config::{CeiBasis, Fit, NeutralSink, Readings};
use crate::sweep::design::Design;
use crate::sweep::distribution::Distribution;

/// Scenario rule cells a rate or cap entry applies to; each key is a glob
/// (`*` for all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateEntry {
    #[serde(default = "any")]
    pub scenario: String,
    #[serde(default = "any")]
    pub variable: String,
    #[serde(default = "any")]
    pub period: String,
    /// Multiplies the rule's final annual rate.
    pub multiplier: Distribution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapEntry {
    #[serde(default = "any")]
    pub scenario: String,
    #[serde(default = "any")]
    pub variable: String,
    #[serde(default = "any")]
    pub period: String,
    /// Added to the period's cap (percentage points for IS and UR).
    pub offset: Distribution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoefficientEntry {
    /// A glob over dotted coefficient names (`energy.*.carbon`, `*`).
    #[serde(default = "any")]
    pub name: String,
    /// Multiplies the coefficient.
    pub multiplier: Distribution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseEntry {
    /// A field group (`land_use`, `agriculture`, `livestock`, `crop_yield`,
    /// `energy`, `socioeconomic`) or a glob over them.
    #[serde(default = "any")]
    pub group: String,
    /// σ of the relative lognormal error: every value of the group is
    /// multiplied by exp(N(0, σ)), drawn per unit, year and field.
    pub sigma: f64,
}

/// A reading of the paper drawn per sample (docs/model.md section 8): `name` is
/// `fit`, `cei`, `interval_years` or `neutral_sink`, and `weights` gives each
/// option a relative weight, e.g. `weights = { regional = 0.7, pooled = 0.3 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingEntry {
    pub name: String,
    pub weights: BTreeMap<String, f64>,
}

/// One option of a reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadingValue {
    Fit(Fit),
    Cei(CeiBasis),
    IntervalYears(u32),
    NeutralSink(NeutralSink),
}

impl ReadingValue {
    /// The reading names and their options as written in a spec.
    pub const NAMES: [&'static str; 4] = ["fit", "cei", "interval_years", "neutral_sink"];

    /// Parse option `option` of reading `name`, or say what is allowed.
    pub(crate) fn parse(name: &str, option: &str) -> Result<ReadingValue, String> {
        let one_of = |choices: &str| format!("reading `{name}` has no option `{option}`; the options are {choices}");
        match name {
            "fit" => match option {
                "regional" => Ok(ReadingValue::Fit(Fit::Regional)),
                "pooled" => Ok(ReadingValue::Fit(Fit::Pooled)),
                _ => Err(one_of("regional, pooled")),
            },
            "cei" => match option {
                "gdp" => Ok(ReadingValue::Cei(CeiBasis::Gdp)),
                "secondary_gdp" => Ok(ReadingValue::Cei(CeiBasis::SecondaryGdp)),
                _ => Err(one_of("gdp, secondary_gdp")),
            },
            "interval_years" => match option.parse::<u32>() {
                Ok(years) if (1..=100).contains(&years) => Ok(ReadingValue::IntervalYears(years)),
                _ => Err(one_of("whole numbers of years from 1 to 100")),
            },
            "neutral_sink" => match option {
                "base-year" => Ok(ReadingValue::NeutralSink(NeutralSink::BaseYear)),
                "sen-extrapolation" => Ok(ReadingValue::NeutralSink(NeutralSink::SenExtrapolation)),
                _ => Err(one_of("base-year, sen-extrapolation")),
            },
            _ => Err(format!("`{name}` is not a reading; the readings are {}", ReadingValue::NAMES.join(", "))),
        }
    }

    pub(crate) fn apply(self, readings: &mut Readings) {
        match self {
            ReadingValue::Fit(fit) => readings.fit = fit,
            ReadingValue::Cei(cei) => readings.cei = cei,
            ReadingValue::IntervalYears(years) => readings.interval_years = years,
            ReadingValue::NeutralSink(rule) => readings.neutral_sink = rule,
        }
    }
}

/// A categorical draw: options with their cumulative weights, normalised so
/// that the last is 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Categorical {
    pub options: Vec<(ReadingValue, f64)>,
}

impl Categorical {
    /// The option a uniform number in (0, 1) falls on.
    pub fn pick(&self, u: f64) -> ReadingValue {
        self.options.iter().find(|(_, cumulative)| u < *cumulative).unwrap_or(&self.options[self.options.len() - 1]).0
    }
}

fn any() -> String {
    "*".to_owned()
}

fn default_samples() -> u64 {
    10_000
}

fn default_seed() -> u64 {
    1
}

/// A sweep spec as written in TOML. Later entries override earlier ones for
/// the cells they both match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    #[serde(default = "default_samples")]
    pub samples: u64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default)]
    pub design: Design,
    /// Ridge K; the configuration's K when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<Distribution>,
    /// The trend threshold z*; the configuration's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend_threshold: Option<Distribution>,
    #[serde(default)]
    pub rate: Vec<RateEntry>,
    #[serde(default)]
    pub cap: Vec<CapEntry>,
    #[serde(default)]
    pub coefficient: Vec<CoefficientEntry>,
    #[serde(default)]
    pub noise: Vec<NoiseEntry>,
    /// Readings of the paper drawn per sample; the configuration's otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reading: Vec<ReadingEntry>,
    /// Variance-based group sensitivity computed alongside the sweep
    /// (docs/model.md section 8, "Group sensitivity"); every sample then costs 2 + G chain runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<SensitivitySpec>,
}

/// The sensitivity design of a sweep: `{ method = "saltelli", groups = "default" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitivitySpec {
    pub method: SensitivityMethod,
    #[serde(default)]
    pub groups: SensitivityGroups,
}

/// How the indices are estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SensitivityMethod {
    /// Saltelli (2010) first-order and Jansen (1999) total indices from the
    /// A, B and A_B^g matrices of one base sample per sample index.
    Saltelli,
}

/// The groups of factors: `"default"` (one group per kind of parameter), or
/// a table naming groups by globs over dimension names, e.g.
/// `{ growth = ["rate.*"], caps = ["cap.*"] }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SensitivityGroups {
    #[default]
    #[serde(serialize_with = "serialize_default_groups")]
    Default,
    Custom(BTreeMap<String, Vec<String>>),
}

fn serialize_default_groups<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("default")
}

impl<'de> Deserialize<'de> for SensitivityGroups {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SensitivityGroups;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#""default" or a table of groups, each a list of globs over parameter names (e.g. { growth = ["rate.*"] })"#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "default" {
                    Ok(SensitivityGroups::Default)
                } else {
                    Err(E::custom(format!(
                        "sensitivity groups `{v}` are unknown; write \"default\" or a table of groups such as {{ growth = [\"rate.*\"] }}"
                    )))
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                BTreeMap::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(SensitivityGroups::Custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Default for SweepSpec {
    /// The shipped default: K ~ U(0.01, 0.05); every rule's rate × N(1, 0.1)
    /// truncated to [0.5, 1.5] and every cap + U(−2, 2), each drawn per
    /// scenario, variable and period; every coefficient × N(1, 0.05)
    /// truncated to [0.8, 1.2]; no data noise; Monte Carlo.
    fn default() -> Self {
        SweepSpec {
            samples: default_samples(),
            seed: default_seed(),
            design: Design::MonteCarlo,
            k: Some(Distribution::Uniform { low: 0.01, high: 0.05 }),
            trend_threshold: None,
            rate: vec![RateEntry {
                scenario: any(),
                variable: any(),
                period: any(),
                multiplier: Distribution::TruncatedNormal { mean: 1.0, sd: 0.1, low: 0.5, high: 1.5 },
            }],
            cap: vec![CapEntry {
                scenario: any(),
                variable: any(),
                period: any(),
                offset: Distribution::Uniform { low: -2.0, high: 2.0 },
            }],
            coefficient: vec![CoefficientEntry {
                name: any(),
                multiplier: Distribution::TruncatedNormal { mean: 1.0, sd: 0.05, low: 0.8, high: 1.2 },
            }],
            noise: Vec::new(),
            reading: Vec::new(),
            sensitivity: None,
        }
    }
}

/// A sweep spec that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{source_name}: not a valid sweep spec: {message}")]
    Parse { source_name: String, message: String },
    #[error("the sweep spec has {} problem(s): {}", .0.len(), .0.join("; "))]
    Invalid(Vec<String>),
    /// The configuration does not validate, or does not fit the dataset.
    #[error("the configuration has {} problem(s): {}", .0.len(), .0.join("; "))]
    Config(Vec<String>),
}

impl SweepSpec {
    /// Parse a spec from TOML; `source_name` names the file in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<SweepSpec, SweepError> {
        toml::from_str(text).map_err(|e: toml::de::Error| SweepError::Parse {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a sweep spec serializes")
    }

    /// The default spec as commented TOML (`zonesweep spec default`): every
    /// key with its meaning, the optional ones commented out. It parses to
    /// [`SweepSpec::default`].
    pub fn default_toml() -> &'static str {
        DEFAULT_SPEC_TOML
    }
}

const DEFAULT_SPEC_TOML: &str = r#"# The default sweep spec (`zonesweep spec default`); run a changed copy with
# `--spec FILE`, and `zonesweep spec check FILE` lists what it expands to.
# Distributions are inline tables with a `dist` key: fixed (value),
# uniform (low, high), normal (mean, sd), truncated-normal (mean, sd, low,
# high), triangular (low, mode, high), lognormal (mu, sigma of the logarithm).
# Top-level keys come before any table; a later entry overrides an earlier
# one for the cells both match.

samples = 10000                   # samples to run (--samples overrides it)
seed = 1                          # the seed of every random stream (--seed overrides it)
design = "monte-carlo"            # monte-carlo, latin-hypercube or sobol
k = { dist = "uniform", low = 0.01, high = 0.05 }  # ridge K; without it, the configuration's K
# trend_threshold = { dist = "fixed", value = 1.66 }  # trend threshold z*; without it, the configuration's

[[rate]]                          # multiplies the final annual rate of every rule it matches
scenario = "*"                    # a glob over low, baseline, high
variable = "*"                    # a glob over P, W, IS, TI, UR, CEI
period = "*"                      # a glob over first, second
multiplier = { dist = "truncated-normal", mean = 1.0, sd = 0.1, low = 0.5, high = 1.5 }  # drawn per scenario, variable and period

[[cap]]                           # added to the cap of every rule it matches that has one
scenario = "*"                    # a glob over low, baseline, high
variable = "*"                    # a glob over P, W, IS, TI, UR, CEI
period = "*"                      # a glob over first, second
offset = { dist = "uniform", low = -2.0, high = 2.0 }  # percentage points for IS and UR

[[coefficient]]                   # multiplies every coefficient it matches (docs/model.md section 3)
name = "*"                        # a glob over dotted names, e.g. "energy.*.carbon", "crops.rice.water"
multiplier = { dist = "truncated-normal", mean = 1.0, sd = 0.05, low = 0.8, high = 1.2 }  # drawn per coefficient

# [[noise]]                       # relative lognormal data noise; none by default
# group = "energy"                # land_use, agriculture, livestock, crop_yield, energy, socioeconomic (a glob)
# sigma = 0.05                    # σ of the log error, drawn per unit, year and field

# [[reading]]                     # a reading of the paper drawn per sample (docs/model.md section 8)
# name = "fit"                    # fit, cei, interval_years or neutral_sink
# weights = { regional = 0.7, pooled = 0.3 }  # each option's relative weight

# [sensitivity]                   # group sensitivity; every sample then costs 2 + G chain runs
# method = "saltelli"             # the one method: Saltelli first-order, Jansen total indices
# groups = "default"              # "default", or a table of globs over parameter names: { growth = ["rate.*"] }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Config;

    /// A commented line that is a key or a table (not prose), uncommented.
    fn uncomment(line: &str) -> &str {
        match line.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(key, _)| !key.contains(' ')) =>
            {
                rest
            }
            _ => line,
        }
    }

    #[test]
    fn the_default_toml_is_the_default_spec_with_every_key_commented() {
        let text = SweepSpec::default_toml();
        assert_eq!(SweepSpec::from_toml(text, "default").unwrap(), SweepSpec::default());
        let mut keys = 0;
        for line in text.lines().map(uncomment) {
            if line.starts_with('[') || line.split_once(" = ").is_some_and(|(key, _)| !key.contains(' ')) {
                keys += 1;
                let comment = line.rsplit_once(" # ").map(|(_, c)| c.trim());
                assert!(comment.is_some_and(|c| c.len() > 5), "no comment on `{line}`");
            }
        }
        assert!(keys >= 25, "{keys} keys");
        assert!(SweepSpec::default().plan(&Config::default()).unwrap().dimensions.len() > 100);
    }

    #[test]
    fn the_default_toml_uncommented_plans_with_every_option() {
        let uncommented: String = SweepSpec::default_toml().lines().map(|l| format!("{}\n", uncomment(l))).collect();
        let spec = SweepSpec::from_toml(&uncommented, "uncommented").unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert!(spec.trend_threshold.is_some());
        assert_eq!(spec.noise.len(), 1);
        assert_eq!(spec.reading.len(), 1);
        assert!(spec.sensitivity.is_some());
        let plan = spec.plan(&Config::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(plan.has_noise());
        assert!(plan.dimensions.iter().any(|d| d.name == "trend_threshold"));
        assert!(plan.dimensions.iter().any(|d| d.name == "reading.fit"));
        assert!(plan.sensitivity.is_some_and(|s| !s.groups.is_empty()));
    }
}
