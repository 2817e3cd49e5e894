//! Sweep specs (docs/model.md section 8): which parameters are uncertain, with
//! what distribution, under which design; and the draws of sample k, which
//! depend only on (seed, k) (and, for a Latin hypercube, the sample count),
//! so any subset of a sweep's samples can be computed anywhere, in any order.

use std::collections::BTreeMap;

use glob::Pattern;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, LogNormal};
use serde::{Deserialize, Serialize};

use crate::chain::Parameters;
use crate::coefficients::{COEFFICIENT_NAMES, N_COEFFICIENTS};
use crate::config::{CeiBasis, Config, Driver, Fit, NeutralSink, Period, Readings, Scenario};
use crate::distribution::{Checked, Distribution};
use crate::fields::{Field, FieldGroup, N_FIELDS, Row};

/// How sample points are spread over the parameter space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Independent uniform draws per sample.
    #[default]
    MonteCarlo,
    /// Each parameter's range cut into `samples` equal-probability strata,
    /// one sample per stratum, strata shuffled independently per parameter.
    LatinHypercube,
    /// Owen-scrambled Sobol' points (at most 256 uncertain parameters).
    Sobol,
}

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
    fn parse(name: &str, option: &str) -> Result<ReadingValue, String> {
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

    fn apply(self, readings: &mut Readings) {
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
}

/// What one uncertain parameter changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    K,
    TrendThreshold,
    Rate {
        scenario: Scenario,
        driver: Driver,
        period: Period,
    },
    Cap {
        scenario: Scenario,
        driver: Driver,
        period: Period,
    },
    Coefficient(usize),
    /// Index into [`Plan::readings`].
    Reading(usize),
}

/// One uncertain parameter: a dimension of the design.
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    pub target: Target,
    pub distribution: Checked,
    /// A readable name (`rate.low.P.first`, `coefficient.breathing`).
    pub name: String,
}

/// A spec resolved against a configuration: the list of dimensions, in a
/// fixed order, and the noise levels. Built once per sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub samples: u64,
    pub seed: u64,
    pub design: Design,
    pub dimensions: Vec<Dimension>,
    /// σ of each field's noise (0 = none), by field.
    pub noise_sigma: [f64; N_FIELDS],
    /// The categorical readings, in spec order; their dimensions come last,
    /// so adding one leaves every other parameter's draws unchanged.
    pub readings: Vec<Categorical>,
}

/// The largest Sobol' dimension count of the scrambled-Sobol' generator.
pub const SOBOL_MAX_DIMENSIONS: usize = sobol_burley::NUM_DIMENSIONS as usize;

/// Random streams are keyed by (seed, domain), so the parameter draws, the
/// Latin-hypercube jitter and the data noise never share numbers.
const DOMAIN_PARAMETERS: u64 = 1;
const DOMAIN_NOISE: u64 = 2;
const DOMAIN_PERMUTATION: u64 = 3;

fn stream(seed: u64, domain: u64, sample: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&domain.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(sample);
    rng
}

/// A uniform number strictly inside (0, 1), from 52 random bits: the middle
/// of one of 2^52 equal cells, so neither 0 nor 1 can come out (with 53 bits
/// the top cell's middle would round up to 1).
fn open_unit(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
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

    /// Resolve the wildcards against `config` and check every value.
    pub fn plan(&self, config: &Config) -> Result<Plan, SweepError> {
        let mut problems = Vec::new();
        if self.samples == 0 {
            problems.push("`samples` must be at least 1".to_owned());
        }
        // Every distribution is checked once, where the spec gives it; the
        // plan holds only checked ones.
        let mut check = |what: String, d: Distribution| match Checked::try_from(d) {
            Ok(checked) => Some(checked),
            Err(p) => {
                problems.push(format!("{what}: {p}"));
                None
            }
        };
        let k = self.k.and_then(|d| check("k".into(), d));
        let trend_threshold = self.trend_threshold.and_then(|d| check("trend_threshold".into(), d));
        let rate_distributions: Vec<_> =
            self.rate.iter().enumerate().map(|(i, e)| check(format!("rate[{i}].multiplier"), e.multiplier)).collect();
        let cap_distributions: Vec<_> =
            self.cap.iter().enumerate().map(|(i, e)| check(format!("cap[{i}].offset"), e.offset)).collect();
        let coefficient: Vec<_> = self
            .coefficient
            .iter()
            .enumerate()
            .map(|(i, e)| check(format!("coefficient[{i}].multiplier"), e.multiplier))
            .collect();

        let mut dimensions = Vec::new();
        let mut push = |target, distribution: Option<Checked>, name: String| {
            if let Some(distribution) = distribution {
                dimensions.push(Dimension { target, distribution, name });
            }
        };
        if let Some(d) = k {
            if d.lower_bound() < 0.0 {
                problems.push("k: the distribution allows a ridge K below 0; bound it at 0 or above (a truncated normal, uniform, triangular or lognormal)".to_owned());
            }
            push(Target::K, Some(d), "k".into());
        }
        if let Some(d) = trend_threshold {
            if d.lower_bound() < 0.0 {
                problems.push(
                    "trend_threshold: the distribution allows a threshold below 0; bound it at 0 or above".to_owned(),
                );
            }
            push(Target::TrendThreshold, Some(d), "trend_threshold".into());
        }

        // Rule cells: the last matching entry wins.
        let pattern = |text: &str, what: &str, problems: &mut Vec<String>| match Pattern::new(text) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(format!("{what}: `{text}` is not a valid pattern: {e}"));
                None
            }
        };
        let mut rate_matched = vec![false; self.rate.len()];
        let mut cap_matched = vec![false; self.cap.len()];
        let cell_patterns = |what: &str, cells: &mut dyn Iterator<Item = [&str; 3]>, problems: &mut Vec<String>| {
            cells
                .enumerate()
                .map(|(i, keys)| keys.map(|text| pattern(text, &format!("{what}[{i}]"), problems)))
                .collect::<Vec<_>>()
        };
        let rate_patterns = cell_patterns(
            "rate",
            &mut self.rate.iter().map(|e| [&*e.scenario, &*e.variable, &*e.period]),
            &mut problems,
        );
        let cap_patterns =
            cell_patterns("cap", &mut self.cap.iter().map(|e| [&*e.scenario, &*e.variable, &*e.period]), &mut problems);
        let matches = |p: &[Option<Pattern>; 3], s: Scenario, d: Driver, q: Period| {
            [s.key(), d.key(), q.key()].iter().zip(p).all(|(key, p)| p.as_ref().is_some_and(|p| p.matches(key)))
        };
        for scenario in Scenario::ALL {
            for driver in Driver::ALL {
                for period in Period::ALL {
                    let cell = format!("{}.{}.{}", scenario.key(), driver.key(), period.key());
                    let rate = rate_patterns.iter().rposition(|p| matches(p, scenario, driver, period));
                    if let Some(i) = rate {
                        rate_matched[i] = true;
                    }
                    push(
                        Target::Rate { scenario, driver, period },
                        rate.and_then(|i| rate_distributions[i]),
                        format!("rate.{cell}"),
                    );
                    let has_cap = config.scenarios.rules(scenario).get(driver).get(period).cap.is_some();
                    let cap = cap_patterns.iter().rposition(|p| matches(p, scenario, driver, period));
                    if let Some(i) = cap {
                        cap_matched[i] = true;
                        if !has_cap
                            && !self.cap[i].scenario.contains(['*', '?', '['])
                            && !self.cap[i].variable.contains(['*', '?', '['])
                            && !self.cap[i].period.contains(['*', '?', '['])
                        {
                            problems.push(format!("cap[{i}]: the rule {cell} has no cap to offset"));
                        }
                    }
                    push(
                        Target::Cap { scenario, driver, period },
                        cap.filter(|_| has_cap).and_then(|i| cap_distributions[i]),
                        format!("cap.{cell}"),
                    );
                }
            }
        }
        for (i, matched) in rate_matched.iter().enumerate() {
            if !matched {
                problems.push(format!(
                    "rate[{i}] matches no scenario rule, or later entries override every rule it matches"
                ));
            }
        }
        for (i, matched) in cap_matched.iter().enumerate() {
            if !matched {
                problems.push(format!(
                    "cap[{i}] matches no scenario rule, or later entries override every rule it matches"
                ));
            }
        }

        let coefficient_patterns: Vec<_> = self
            .coefficient
            .iter()
            .enumerate()
            .map(|(i, e)| pattern(&e.name, &format!("coefficient[{i}]"), &mut problems))
            .collect();
        let mut coefficient_matched = vec![false; self.coefficient.len()];
        for (c, name) in COEFFICIENT_NAMES.iter().enumerate() {
            let entry = coefficient_patterns.iter().rposition(|p| p.as_ref().is_some_and(|p| p.matches(name)));
            if let Some(i) = entry {
                coefficient_matched[i] = true;
            }
            push(Target::Coefficient(c), entry.and_then(|i| coefficient[i]), format!("coefficient.{name}"));
        }
        for (i, matched) in coefficient_matched.iter().enumerate() {
            if !matched {
                problems.push(format!("coefficient[{i}]: `{}` matches no coefficient", self.coefficient[i].name));
            }
        }
        debug_assert!(
            dimensions.iter().filter(|d| matches!(d.target, Target::Coefficient(_))).count() <= N_COEFFICIENTS
        );

        let mut noise_sigma = [0.0; N_FIELDS];
        for (i, entry) in self.noise.iter().enumerate() {
            if !(entry.sigma.is_finite() && entry.sigma >= 0.0) {
                problems.push(format!("noise[{i}].sigma is {}; it must be ≥ 0", entry.sigma));
                continue;
            }
            let Some(p) = pattern(&entry.group, &format!("noise[{i}]"), &mut problems) else { continue };
            let groups: Vec<FieldGroup> = FieldGroup::ALL.into_iter().filter(|g| p.matches(g.key())).collect();
            if groups.is_empty() {
                problems.push(format!(
                    "noise[{i}]: `{}` matches no field group (land_use, agriculture, livestock, crop_yield, energy, socioeconomic)",
                    entry.group
                ));
            }
            for field in Field::ALL {
                if groups.contains(&field.group()) {
                    noise_sigma[field as usize] = entry.sigma;
                }
            }
        }

        // Readings: categorical dimensions after all others.
        let mut readings = Vec::new();
        let mut seen_readings = Vec::new();
        for (i, entry) in self.reading.iter().enumerate() {
            let at = format!("reading[{i}]");
            if seen_readings.contains(&entry.name) {
                problems.push(format!("{at}: reading `{}` is named twice", entry.name));
                continue;
            }
            seen_readings.push(entry.name.clone());
            let mut options = Vec::new();
            let mut total = 0.0;
            for (option, &weight) in &entry.weights {
                match ReadingValue::parse(&entry.name, option) {
                    Err(message) => problems.push(format!("{at}: {message}")),
                    Ok(_) if !(weight.is_finite() && weight >= 0.0) => {
                        problems.push(format!("{at}: the weight of `{option}` is {weight}; it must be ≥ 0"))
                    }
                    Ok(value) => {
                        total += weight;
                        options.push((value, total));
                    }
                }
            }
            if entry.weights.is_empty() || !(total > 0.0) {
                problems.push(format!("{at}: reading `{}` needs at least one option with a weight > 0", entry.name));
                continue;
            }
            for (_, cumulative) in &mut options {
                *cumulative /= total;
            }
            options.retain(|(_, cumulative)| *cumulative > 0.0);
            dimensions.push(Dimension {
                target: Target::Reading(readings.len()),
                distribution: Checked::UNIT_UNIFORM,
                name: format!("reading.{}", entry.name),
            });
            readings.push(Categorical { options });
        }

        // Fixed values are dimensions too, but spend no draw (see `uniforms`).
        let uncertain = dimensions.iter().filter(|d| !d.distribution.is_fixed()).count();
        if self.design == Design::Sobol && uncertain > SOBOL_MAX_DIMENSIONS {
            problems.push(format!(
                "the Sobol' design supports at most {SOBOL_MAX_DIMENSIONS} uncertain parameters; this spec has {uncertain}"
            ));
        }
        if self.design == Design::Sobol && self.samples > u64::from(u32::MAX) {
            problems.push(format!("the Sobol' design supports at most {} samples", u32::MAX));
        }
        if !problems.is_empty() {
            return Err(SweepError::Invalid(problems));
        }
        Ok(Plan { samples: self.samples, seed: self.seed, design: self.design, dimensions, noise_sigma, readings })
    }
}

/// A random permutation of 0..n evaluated at one index, keyed by `key`:
/// Kensler's hash-based permutation ("Correlated Multi-Jittered Sampling",
/// Pixar 2013) with cycle walking, so a Latin-hypercube stratum can be found
/// for sample k without building the whole permutation.
fn permute(mut i: u64, n: u64, key: u64) -> u64 {
    debug_assert!(i < n);
    if n <= 1 {
        return 0;
    }
    let mask = u64::MAX >> (n - 1).leading_zeros();
    loop {
        // A bijection on 0..=mask: xorshift-multiply rounds keyed by `key`.
        let mut x = i;
        for round in 0..4u64 {
            let k = key.wrapping_add(round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            x ^= k & mask;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9 | 1) & mask;
            x ^= (x & mask) >> (mask.count_ones() / 2 + 1);
            x = x.wrapping_add(k >> 7) & mask;
        }
        if x < n {
            return x;
        }
        i = x;
    }
}

/// The draws of one sample: the model parameters and, when the spec has
/// noise, the noisy panel rows.
#[derive(Clone, Debug)]
pub struct Draw {
    pub parameters: Parameters,
    /// `None` when the spec has no data noise (use the dataset's rows).
    pub rows: Option<Vec<Row>>,
}

impl Plan {
    /// The uniform number of dimension `d` for sample `k`, per the design.
    fn uniforms(&self, k: u64) -> Vec<f64> {
        let mut rng = stream(self.seed, DOMAIN_PARAMETERS, k);
        let mut u = Vec::with_capacity(self.dimensions.len());
        let mut sobol_dimension = 0u32;
        // The Sobol' scramble seed: the user's seed folded to 32 bits.
        let sobol_seed = (self.seed ^ (self.seed >> 32)) as u32;
        for (d, dimension) in self.dimensions.iter().enumerate() {
            if dimension.distribution.is_fixed() {
                u.push(0.5);
                continue;
            }
            let value = match self.design {
                Design::MonteCarlo => open_unit(&mut rng),
                Design::LatinHypercube => {
                    let mut key_rng = stream(self.seed, DOMAIN_PERMUTATION, d as u64);
                    let stratum = permute(k, self.samples, key_rng.next_u64());
                    (stratum as f64 + open_unit(&mut rng)) / self.samples as f64
                }
                Design::Sobol => {
                    let x = sobol_burley::sample(k as u32, sobol_dimension, sobol_seed);
                    sobol_dimension += 1;
                    // The generator gives multiples of 2^-24 in [0, 1); move to
                    // the middle of the cell so the quantile is never at 0.
                    f64::from(x) + 0.5 / f64::from(1u32 << 24)
                }
            };
            u.push(value);
        }
        u
    }

    /// Sample k's parameters, starting from the configuration's nominal
    /// values, and its noisy rows when the plan has noise.
    pub fn draw(&self, k: u64, config: &Config, rows: &[Row]) -> Draw {
        let mut parameters = Parameters::nominal(config);
        for (dimension, u) in self.dimensions.iter().zip(self.uniforms(k)) {
            let value = dimension.distribution.quantile(u);
            match dimension.target {
                Target::K => parameters.k = value,
                Target::TrendThreshold => parameters.trend_threshold = value,
                Target::Rate { scenario, driver, period } => {
                    parameters.adjustments.rate_multiplier[scenario as usize][driver as usize][period as usize] = value;
                }
                Target::Cap { scenario, driver, period } => {
                    parameters.adjustments.cap_offset[scenario as usize][driver as usize][period as usize] = value;
                }
                Target::Coefficient(c) => {
                    let nominal = parameters.coefficients.get(c);
                    parameters.coefficients.set(c, nominal * value);
                }
                Target::Reading(r) => self.readings[r].pick(value).apply(&mut parameters.readings),
            }
        }
        let rows = self.has_noise().then(|| self.noisy_rows(k, rows));
        Draw { parameters, rows }
    }

    /// Every interval length a sample of this plan can use: the
    /// configuration's and those a drawn reading offers.
    pub fn interval_years_drawn(&self, config: &Config) -> Vec<u32> {
        let mut years = vec![config.scenarios.interval_years];
        for categorical in &self.readings {
            for (value, _) in &categorical.options {
                if let ReadingValue::IntervalYears(y) = value {
                    if !years.contains(y) {
                        years.push(*y);
                    }
                }
            }
        }
        years
    }

    pub fn has_noise(&self) -> bool {
        self.noise_sigma.iter().any(|s| *s > 0.0)
    }

    fn noisy_rows(&self, k: u64, rows: &[Row]) -> Vec<Row> {
        let mut rng = stream(self.seed, DOMAIN_NOISE, k);
        let factors: Vec<Option<LogNormal<f64>>> = self
            .noise_sigma
            .iter()
            .map(|&s| (s > 0.0).then(|| LogNormal::new(0.0, s).expect("σ was checked")))
            .collect();
        rows.iter()
            .map(|row| {
                let mut noisy = *row;
                for (value, factor) in noisy.iter_mut().zip(&factors) {
                    if let Some(factor) = factor {
                        *value *= factor.sample(&mut rng);
                    }
                }
                noisy
            })
            .collect()
    }
}

/// Uniform numbers for tests of designs: dimension `d` of samples 0..n.
pub fn design_points(plan: &Plan, n: u64) -> Vec<Vec<f64>> {
    (0..n).map(|k| plan.uniforms(k)).collect()
}
