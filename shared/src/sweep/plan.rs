//! A spec resolved against a configuration: the dimensions (one uncertain
//! parameter each, in a fixed order, readings last) and the noise levels;
//! and the draws of sample k.

use glob::Pattern;
use rand::Rng;
use rand::distr::Open01;

use crate::data::fields::{Field, FieldGroup, N_FIELDS, Row};
use crate::model::chain::Parameters;
use crate::model::coefficients::{COEFFICIENT_NAMES, N_COEFFICIENTS};
use crate::model::config::{Config, Driver, Period, Scenario};
use crate::numerics::math;
use crate::sweep::design::{DOMAIN_NOISE, DOMAIN_NOISE_B, Design, SOBOL_MAX_DIMENSIONS, Side, stream};
use crate::sweep::distribution::{Checked, Distribution};
use crate::sweep::sensitivity::{self, SensitivityPlan};
use crate::sweep::spec::{Categorical, ReadingValue, SweepError, SweepSpec};

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
    /// The groups of a sensitivity design; `None` for a plain sweep.
    pub sensitivity: Option<SensitivityPlan>,
}

impl SweepSpec {
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
            if !ReadingValue::NAMES.contains(&entry.name.as_str()) {
                problems.push(format!(
                    "{at}: `{}` is not a reading; the readings are {}",
                    entry.name,
                    ReadingValue::NAMES.join(", ")
                ));
                continue;
            }
            let mut options = Vec::new();
            let mut total = 0.0;
            for (option, &weight) in &entry.weights {
                match ReadingValue::parse(&entry.name, option) {
                    Err(message) => problems.push(format!("{at}: {message}")),
                    Ok(_) if !(weight.is_finite() && weight >= 0.0) => {
                        problems.push(format!("{at}: the weight of `{option}` is {weight}; it must be ≥ 0"))
                    }
                    // An option of weight 0 is never drawn, not even by a
                    // uniform number that rounds to 1.
                    Ok(_) if weight == 0.0 => {}
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
        let sensitivity =
            self.sensitivity.as_ref().and_then(|s| sensitivity::resolve(s, &dimensions, &noise_sigma, &mut problems));
        if self.design == Design::Sobol && self.sensitivity.is_some() && 2 * uncertain > SOBOL_MAX_DIMENSIONS {
            problems.push(format!(
                "a sensitivity design with Sobol' points takes two dimensions per uncertain parameter, at most {SOBOL_MAX_DIMENSIONS}; \
                 this spec has {uncertain} uncertain parameters (use at most {} or the monte-carlo or latin-hypercube design)",
                SOBOL_MAX_DIMENSIONS / 2
            ));
        }
        if self.design == Design::Sobol && self.samples > u64::from(u32::MAX) {
            problems.push(format!("the Sobol' design supports at most {} samples", u32::MAX));
        }
        if !problems.is_empty() {
            return Err(SweepError::Invalid(problems));
        }
        Ok(Plan {
            samples: self.samples,
            seed: self.seed,
            design: self.design,
            dimensions,
            noise_sigma,
            readings,
            sensitivity,
        })
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
    /// Sample k's parameters, starting from the configuration's nominal
    /// values, and its noisy rows when the plan has noise.
    pub fn draw(&self, k: u64, config: &Config, rows: &[Row]) -> Draw {
        let parameters = self.parameters(config, &self.uniforms(k));
        let rows = self.has_noise().then(|| self.noisy_rows(k, rows));
        Draw { parameters, rows }
    }

    /// The parameters at uniform numbers `uniforms` (one per dimension),
    /// starting from the configuration's nominal values.
    pub fn parameters(&self, config: &Config, uniforms: &[f64]) -> Parameters {
        let mut parameters = Parameters::nominal(config);
        for (dimension, &u) in self.dimensions.iter().zip(uniforms) {
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
        parameters
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
        let factors = self.noise_factors(k, Side::A, rows.len());
        self.apply_noise(rows, &factors, &factors, |_| false)
    }

    /// The noise factors of sample k of base matrix `side`, one per row and
    /// field (1 for fields without noise): drawn row by row, field by field,
    /// from the sample's own stream (B's independent of A's).
    pub(crate) fn noise_factors(&self, k: u64, side: Side, n_rows: usize) -> Vec<[f64; N_FIELDS]> {
        let domain = match side {
            Side::A => DOMAIN_NOISE,
            Side::B => DOMAIN_NOISE_B,
        };
        let mut rng = stream(self.seed, domain, k);
        // A log-normal factor e^(σ·z), z = Φ⁻¹(u) of a uniform u in (0, 1):
        // by the quantile rather than a ziggurat, whose accept tests call
        // the platform's exp and ln and so could take another branch on
        // another CPU (see `numerics::math`).
        (0..n_rows)
            .map(|_| {
                let mut row = [1.0; N_FIELDS];
                for (value, &sigma) in row.iter_mut().zip(&self.noise_sigma) {
                    if sigma > 0.0 {
                        let u: f64 = rng.sample(Open01);
                        *value = math::exp(sigma * math::normal_quantile(u));
                    }
                }
                row
            })
            .collect()
    }

    /// Rows with noise: field f of each row times `b`'s factor where
    /// `from_b(f)`, `a`'s otherwise (fields without noise unchanged).
    pub(crate) fn apply_noise(
        &self,
        rows: &[Row],
        a: &[[f64; N_FIELDS]],
        b: &[[f64; N_FIELDS]],
        from_b: impl Fn(Field) -> bool,
    ) -> Vec<Row> {
        let take: Vec<bool> = Field::ALL.iter().map(|&f| from_b(f)).collect();
        rows.iter()
            .zip(a.iter().zip(b))
            .map(|(row, (fa, fb))| {
                let mut noisy = *row;
                for f in 0..N_FIELDS {
                    if self.noise_sigma[f] > 0.0 {
                        noisy[f] *= if take[f] { fb[f] } else { fa[f] };
                    }
                }
                noisy
            })
            .collect()
    }
}
