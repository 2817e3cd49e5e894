//! The model configuration (docs/model.md sections 3–7) as one TOML schema: the
//! coefficients, the scenario rules of Table 5 as data, the ridge settings,
//! the trend threshold and the zoning criteria. [`Config::default`] holds the
//! paper's values; a user file overrides any subset of it.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::data::dataset::{Dataset, MAX_YEAR, MIN_YEAR};
use crate::keyed::keyed_enum;
use crate::model::coefficients::Coefficients;

/// The most years the horizon may lie past the data's base year T₀: the
/// projection, the peak-year counts and the regional CE of a sweep are
/// sized by it.
pub const MAX_YEARS_AHEAD: i32 = 200;
/// The most zones (Jenks classes) `zoning.zones` may ask for.
pub const MAX_ZONES: usize = 50;
/// The longest interval `scenarios.interval_years` may give.
pub const MAX_INTERVAL_YEARS: u32 = 100;
/// The most K values the ridge-trace grid (`ridge.trace`) may have.
pub const MAX_GRID_POINTS: usize = 10_000;

/// The years a configuration may name: [`MIN_YEAR`]–[`MAX_YEAR`], the
/// same as a dataset's.
pub const YEARS: RangeInclusive<i32> = MIN_YEAR..=MAX_YEAR;

/// The horizons allowed with base year `base_year`: after it, at most
/// [`MAX_YEARS_AHEAD`] years ahead of it and no later than [`MAX_YEAR`]
/// (empty when the base year is [`MAX_YEAR`]). No overflow for any base year.
pub fn horizon_range(base_year: i32) -> RangeInclusive<i32> {
    base_year.saturating_add(1)..=base_year.saturating_add(MAX_YEARS_AHEAD).min(MAX_YEAR)
}

/// What is wrong with a projection from base year `base_year` through
/// `milestone` to `horizon`, if anything: the base year must be in
/// [`YEARS`], the horizon in [`horizon_range`] and the milestone from
/// [`MIN_YEAR`] to the horizon (at or before T₀ it leaves only the second
/// period). The one rule for configurations run on a dataset and for the
/// shape of an aggregate.
pub fn projection_years_problem(base_year: i32, milestone: i32, horizon: i32) -> Option<String> {
    let horizons = horizon_range(base_year);
    if !YEARS.contains(&base_year) {
        Some(format!("the base year {base_year} is outside {MIN_YEAR}–{MAX_YEAR}"))
    } else if !horizons.contains(&horizon) {
        Some(format!(
            "scenarios.horizon is {horizon}; with the data's base year {base_year} it must be {}–{} \
             (after the base year, at most {MAX_YEARS_AHEAD} years ahead of it and no later than {MAX_YEAR})",
            horizons.start(),
            horizons.end()
        ))
    } else if !(MIN_YEAR..=horizon).contains(&milestone) {
        Some(format!("scenarios.milestone is {milestone}; it must be {MIN_YEAR}–{horizon} (no later than the horizon)"))
    } else {
        None
    }
}

keyed_enum! {
    /// The three scenarios, in the order used everywhere (arrays, JSON, tables).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Scenario {
        Low = "low",
        Baseline = "baseline",
        High = "high",
    }
}

keyed_enum! {
    /// The STIRPAT drivers, in the order of the regression columns.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum Driver {
        P = "P",
        W = "W",
        IS = "IS",
        TI = "TI",
        UR = "UR",
        CEI = "CEI",
    }
}

keyed_enum! {
    /// The two projection periods: (T₀, milestone] and (milestone, horizon].
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Period {
        First = "first",
        Second = "second",
    }
}

/// Which historical growth statistic a rate rule starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateStat {
    /// Δ = (v_T₀ / v_first)^(1/(n−1)) − 1, the average annual growth rate.
    Delta,
    /// The smallest interval rate: the smallest average annual growth rate
    /// over the intervals of `scenarios.interval_years` years that end at T₀.
    MinDelta,
    /// The largest interval rate.
    MaxDelta,
}

/// What is done to the sign of the statistic before the factor and offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sign {
    /// Keep the observed sign.
    #[default]
    Keep,
    /// The absolute value ("made positive").
    Positive,
    /// Minus the absolute value.
    Negative,
}

/// A level statistic of the observed series, for caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Min,
    Mean,
    Max,
}

/// A cap on a variable's level: a level statistic of the observed series or a
/// fixed value, plus an offset (percentage points for IS and UR).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default)]
    pub offset: f64,
}

/// One cell of Table 5: annual rate = sign(stat) · factor + offset, with an
/// optional cap on the level.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub rate: RateStat,
    #[serde(default)]
    pub sign: Sign,
    #[serde(default = "one")]
    pub factor: f64,
    #[serde(default)]
    pub offset: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Cap>,
}

fn one() -> f64 {
    1.0
}

/// The rules of one variable in one scenario, per period.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodRules {
    pub first: Rule,
    pub second: Rule,
}

impl PeriodRules {
    pub fn get(&self, period: Period) -> &Rule {
        match period {
            Period::First => &self.first,
            Period::Second => &self.second,
        }
    }
}

/// The rules of one scenario, per driver.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct ScenarioRules {
    pub P: PeriodRules,
    pub W: PeriodRules,
    pub IS: PeriodRules,
    pub TI: PeriodRules,
    pub UR: PeriodRules,
    pub CEI: PeriodRules,
}

impl ScenarioRules {
    pub fn get(&self, driver: Driver) -> &PeriodRules {
        match driver {
            Driver::P => &self.P,
            Driver::W => &self.W,
            Driver::IS => &self.IS,
            Driver::TI => &self.TI,
            Driver::UR => &self.UR,
            Driver::CEI => &self.CEI,
        }
    }
}

keyed_enum! {
    /// What CS a unit is compared with in the neutrality test.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum NeutralSink {
        /// CS_horizon = the base-year CS (docs/model.md section 9).
        BaseYear = "base-year",
        /// CS_horizon = CS_T₀ + Sen slope · (horizon − T₀), floored at 0.
        SenExtrapolation = "sen-extrapolation",
    }
}

keyed_enum! {
    /// Which rows the STIRPAT equation is fitted to (docs/model.md section 5).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Fit {
        /// One row per year of the region's totals (the paper's 21 rows).
        Regional = "regional",
        /// One row per unit and year, all pooled (the earlier reading).
        Pooled = "pooled",
    }
}

keyed_enum! {
    /// The denominator of the carbon intensity CEI.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum CeiBasis {
        /// CEI = CE / gdp: the identity ln CE = ln P + ln W + ln CEI holds.
        Gdp = "gdp",
        /// CEI = CE / secondary_gdp (the paper's text; the earlier reading).
        SecondaryGdp = "secondary_gdp",
    }
}

/// STIRPAT readings (docs/model.md section 5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StirpatConfig {
    pub fit: Fit,
    pub cei: CeiBasis,
}

/// The readings of the paper that the configuration fixes and a sweep may
/// draw per sample (docs/model.md section 8): each is one of its Decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readings {
    pub fit: Fit,
    pub cei: CeiBasis,
    pub interval_years: u32,
    pub neutral_sink: NeutralSink,
}

impl Readings {
    /// The readings the configuration names.
    pub fn of(config: &Config) -> Readings {
        Readings {
            fit: config.stirpat.fit,
            cei: config.stirpat.cei,
            interval_years: config.scenarios.interval_years,
            neutral_sink: config.scenarios.neutral_sink,
        }
    }
}

/// Scenario projection settings and the Table 5 rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// The last projected year.
    pub horizon: i32,
    /// The last year of the first period (and the "peaked by" year of CEP).
    pub milestone: i32,
    pub neutral_sink: NeutralSink,
    /// The length in years of the intervals whose average annual growth
    /// rates give minΔ and maxΔ (1 = year-over-year changes).
    pub interval_years: u32,
    pub low: ScenarioRules,
    pub baseline: ScenarioRules,
    pub high: ScenarioRules,
}

impl ScenarioConfig {
    pub fn rules(&self, scenario: Scenario) -> &ScenarioRules {
        match scenario {
            Scenario::Low => &self.low,
            Scenario::Baseline => &self.baseline,
            Scenario::High => &self.high,
        }
    }

    pub fn rules_mut(&mut self, scenario: Scenario) -> &mut ScenarioRules {
        match scenario {
            Scenario::Low => &mut self.low,
            Scenario::Baseline => &mut self.baseline,
            Scenario::High => &mut self.high,
        }
    }
}

/// One piece of a ridge-trace grid: from the previous end to `to`, by `step`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSegment {
    pub to: f64,
    pub step: f64,
}

/// Ridge regression settings (docs/model.md section 5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RidgeConfig {
    /// The nominal K of `evaluate` (the paper's 0.02).
    pub k: f64,
    /// The ridge-trace grid starts at 0 and follows these segments.
    pub trace: Vec<GridSegment>,
    /// Automatic K needs every VIF below this.
    pub vif_limit: f64,
    /// Automatic K needs every standardized coefficient to move by at most
    /// this fraction of its value to the next grid point.
    pub stability: f64,
}

impl RidgeConfig {
    /// The number of K values of [`RidgeConfig::grid`], computed without
    /// building it; `None` when a segment's count is not a finite number.
    pub fn grid_points(&self) -> Option<f64> {
        let mut points = 1.0;
        let mut start = 0.0;
        for segment in &self.trace {
            let steps = ((segment.to - start) / segment.step).round();
            if !steps.is_finite() {
                return None;
            }
            points += steps.max(0.0);
            start = segment.to;
        }
        Some(points)
    }

    /// The K values of the ridge trace. Each K is computed as start + i·step
    /// rather than by repeated addition, so rounding does not accumulate
    /// along the grid; a point is within an ulp or two of its decimal but not
    /// always the nearest double to it (9 × 0.001 = 0.009000000000000001;
    /// 26 of the default grid's 110 points are such).
    pub fn grid(&self) -> Vec<f64> {
        let mut grid = vec![0.0];
        let mut start = 0.0;
        for segment in &self.trace {
            let steps = ((segment.to - start) / segment.step).round() as usize;
            for i in 1..=steps {
                grid.push(start + i as f64 * segment.step);
            }
            start = segment.to;
        }
        grid
    }
}

/// Whether a rising index is good or bad for the zoning score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    IncreaseIsGood,
    DecreaseIsGood,
}

/// The scoring direction of each trend index (Table 6 class columns).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct Directions {
    pub CE: Direction,
    pub CS: Direction,
    pub NCE: Direction,
    pub ECC: Direction,
    pub ESC: Direction,
    pub Cf: Direction,
    pub Ec: Direction,
    pub Ed: Direction,
}

/// Zoning criteria (docs/model.md section 7).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoningConfig {
    /// The Mann-Kendall |Z| threshold z* of the trend classes and scores.
    pub trend_threshold: f64,
    pub direction: Directions,
    /// Lower bounds of scaled CLI for scores 2, 3, 4, 5.
    pub cli_thresholds: [f64; 4],
    /// The number of zones (Jenks classes).
    pub zones: usize,
}

/// The whole model configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub coefficients: Coefficients,
    pub ridge: RidgeConfig,
    pub stirpat: StirpatConfig,
    pub scenarios: ScenarioConfig,
    pub zoning: ZoningConfig,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{source_name}: not valid TOML: {message}")]
    Syntax { source_name: String, message: String },
    #[error("{source_name}: at `{path}`: {message}")]
    Schema { source_name: String, path: String, message: String },
    #[error("{source_name}: {}", .problems.join("; "))]
    Invalid { source_name: String, problems: Vec<String> },
}

impl Default for Config {
    fn default() -> Self {
        use Level::*;
        use RateStat::*;
        use Sign::*;
        let rate = |rate, sign, factor, offset| Rule { rate, sign, factor, offset, cap: None };
        let capped = |level: Option<Level>, value: Option<f64>, offset| Rule {
            rate: Delta,
            sign: Keep,
            factor: 1.0,
            offset: 0.0,
            cap: Some(Cap { level, value, offset }),
        };
        let pr = |first, second| PeriodRules { first, second };
        let low = ScenarioRules {
            P: pr(rate(MinDelta, Keep, 1.0, 0.0), rate(Delta, Negative, 1.2, 0.0)),
            W: pr(rate(MinDelta, Positive, 1.0, 0.0), rate(Delta, Positive, 1.1, 0.0)),
            IS: pr(capped(Some(Min), None, 0.0), capped(Some(Min), None, -5.0)),
            TI: pr(rate(MaxDelta, Positive, 1.0, 0.0), rate(Delta, Positive, 1.2, 0.0)),
            UR: pr(capped(None, Some(65.0), 0.0), capped(None, Some(70.0), 0.0)),
            CEI: pr(rate(MinDelta, Keep, 1.0, 0.0), rate(MinDelta, Keep, 1.0, -0.01)),
        };
        let baseline = ScenarioRules {
            P: pr(rate(Delta, Keep, 1.0, 0.0), rate(Delta, Negative, 1.0, 0.0)),
            W: pr(rate(Delta, Positive, 1.0, 0.0), rate(Delta, Positive, 1.15, 0.0)),
            IS: pr(capped(Some(Mean), None, 0.0), capped(Some(Mean), None, 0.0)),
            TI: pr(rate(Delta, Positive, 1.0, 0.0), rate(Delta, Positive, 1.15, 0.0)),
            UR: pr(capped(None, Some(70.0), 0.0), capped(None, Some(75.0), 0.0)),
            CEI: pr(rate(Delta, Keep, 1.0, 0.0), rate(Delta, Keep, 1.0, 0.0)),
        };
        let high = ScenarioRules {
            P: pr(rate(MaxDelta, Keep, 1.0, 0.0), rate(Delta, Negative, 0.8, 0.0)),
            W: pr(rate(MaxDelta, Positive, 1.0, 0.0), rate(Delta, Positive, 1.2, 0.0)),
            IS: pr(capped(Some(Max), None, 0.0), capped(Some(Max), None, 5.0)),
            TI: pr(rate(MinDelta, Positive, 1.0, 0.0), rate(Delta, Positive, 1.1, 0.0)),
            UR: pr(capped(None, Some(75.0), 0.0), capped(None, Some(80.0), 0.0)),
            CEI: pr(rate(MaxDelta, Keep, 1.0, 0.0), rate(MaxDelta, Keep, 1.0, 0.01)),
        };
        use Direction::*;
        Config {
            coefficients: Coefficients::default(),
            ridge: RidgeConfig {
                k: 0.02,
                trace: vec![GridSegment { to: 0.01, step: 0.001 }, GridSegment { to: 1.0, step: 0.01 }],
                vif_limit: 10.0,
                stability: 0.01,
            },
            stirpat: StirpatConfig { fit: Fit::Regional, cei: CeiBasis::Gdp },
            scenarios: ScenarioConfig {
                horizon: 2060,
                milestone: 2030,
                neutral_sink: NeutralSink::BaseYear,
                interval_years: 5,
                low,
                baseline,
                high,
            },
            zoning: ZoningConfig {
                trend_threshold: 1.66,
                direction: Directions {
                    CE: DecreaseIsGood,
                    CS: IncreaseIsGood,
                    NCE: DecreaseIsGood,
                    ECC: IncreaseIsGood,
                    ESC: IncreaseIsGood,
                    Cf: DecreaseIsGood,
                    Ec: IncreaseIsGood,
                    Ed: DecreaseIsGood,
                },
                cli_thresholds: [0.2, 0.4, 0.6, 0.8],
                zones: 5,
            },
        }
    }
}

/// Paths below which a user's table replaces the default whole instead of
/// being merged key by key: a scenario rule is one thing, and mixing a user's
/// `rate` with the default's `factor` would be a surprise.
fn replaced_whole(path: &[&str]) -> bool {
    matches!(path, ["scenarios", s, _, _] if Scenario::from_key(s).is_some())
}

fn merge(base: &mut toml::Table, user: toml::Table, path: &mut Vec<String>) {
    for (key, value) in user {
        path.push(key.clone());
        let as_str: Vec<&str> = path.iter().map(String::as_str).collect();
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(user_table)) if !replaced_whole(&as_str) => {
                merge(base_table, user_table, path);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
        path.pop();
    }
}

impl Config {
    /// The default configuration as a TOML document with every key under a
    /// comment giving its meaning and unit (from
    /// [`crate::model::config_keys::KEYS`]).
    pub fn default_toml() -> String {
        let body = crate::model::config_keys::commented_toml(&Config::default());
        format!(
            "# zonesweep model configuration: the paper's values. docs/model.md section 11 lists\n\
             # every key (sections 3-7 explain the model they belong to).\n\
             # A configuration file may hold any subset of these keys; the rest keep these values.\n\
             # A scenario rule (scenarios.SCENARIO.VARIABLE.first|second) is replaced whole.\n\
             # Each key's comment gives its meaning and, in brackets, its unit or its choices.\n\n{body}"
        )
    }

    /// Every key of this configuration as TOML: read back by
    /// [`Config::from_toml_overrides`] it gives this configuration.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a configuration serializes")
    }

    /// The default configuration overridden by a user's TOML text.
    /// `source_name` names the file in errors.
    pub fn from_toml_overrides(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let user: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        let mut merged = toml::Table::try_from(Config::default()).expect("the default configuration serializes");
        merge(&mut merged, user, &mut Vec::new());
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|e| ConfigError::Schema {
                source_name: source_name.to_owned(),
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { source_name: source_name.to_owned(), problems })
        }
    }

    /// Values that parse but make no sense together.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.coefficients.problems();
        let ridge = &self.ridge;
        if !(ridge.k.is_finite() && ridge.k >= 0.0) {
            problems.push(format!("ridge.k is {}; it must be ≥ 0", ridge.k));
        }
        let mut previous = 0.0;
        for (i, segment) in ridge.trace.iter().enumerate() {
            if !(segment.step > 0.0 && segment.to > previous && segment.to.is_finite()) {
                problems.push(format!("ridge.trace[{i}]: needs step > 0 and `to` above the previous end {previous}"));
            }
            previous = segment.to;
        }
        if ridge.trace.is_empty() {
            problems.push("ridge.trace is empty".to_owned());
        }
        match ridge.grid_points() {
            Some(points) if points <= MAX_GRID_POINTS as f64 => {}
            points => problems.push(format!(
                "ridge.trace makes {} K values; at most {MAX_GRID_POINTS} are allowed (use larger steps)",
                points.map_or("uncountably many".to_owned(), |p| p.to_string())
            )),
        }
        if !(ridge.vif_limit > 0.0) {
            problems.push("ridge.vif_limit must be > 0".to_owned());
        }
        if !(ridge.stability >= 0.0) {
            problems.push("ridge.stability must be ≥ 0".to_owned());
        }
        let scenarios = &self.scenarios;
        for (key, year) in [("horizon", scenarios.horizon), ("milestone", scenarios.milestone)] {
            if !YEARS.contains(&year) {
                problems.push(format!("scenarios.{key} is {year}; it must be a year {MIN_YEAR}–{MAX_YEAR}"));
            }
        }
        if scenarios.milestone > scenarios.horizon {
            problems.push(format!(
                "scenarios.milestone {} is after scenarios.horizon {}",
                scenarios.milestone, scenarios.horizon
            ));
        }
        if !(1..=MAX_INTERVAL_YEARS).contains(&scenarios.interval_years) {
            problems.push(format!(
                "scenarios.interval_years is {}; it must be 1–{MAX_INTERVAL_YEARS}",
                scenarios.interval_years
            ));
        }
        for scenario in Scenario::ALL {
            for driver in Driver::ALL {
                for period in Period::ALL {
                    let rule = scenarios.rules(scenario).get(driver).get(period);
                    let at = format!("scenarios.{}.{}.{}", scenario.key(), driver.key(), period.key());
                    if !rule.factor.is_finite() || !rule.offset.is_finite() {
                        problems.push(format!("{at}: factor and offset must be finite"));
                    }
                    if let Some(cap) = rule.cap {
                        if cap.level.is_some() == cap.value.is_some() {
                            problems.push(format!("{at}.cap: give exactly one of `level` or `value`"));
                        }
                    }
                }
            }
        }
        let zoning = &self.zoning;
        if !(zoning.trend_threshold.is_finite() && zoning.trend_threshold > 0.0) {
            problems.push(format!("zoning.trend_threshold is {}; it must be > 0", zoning.trend_threshold));
        }
        if !zoning.cli_thresholds.windows(2).all(|w| w[0] <= w[1]) {
            problems.push("zoning.cli_thresholds must be ascending".to_owned());
        }
        if !(1..=MAX_ZONES).contains(&zoning.zones) {
            problems.push(format!("zoning.zones is {}; it must be 1–{MAX_ZONES}", zoning.zones));
        }
        problems
    }

    /// Every problem of this configuration, and those of running it on
    /// `dataset`: the horizon must be after the data's base year T₀ and at
    /// most [`MAX_YEARS_AHEAD`] years ahead of it ([`projection_years_problem`]).
    /// Every command that runs the model checks this before it computes or
    /// stores anything.
    pub fn problems_for(&self, dataset: &Dataset) -> Vec<String> {
        let mut problems = self.problems();
        let (milestone, horizon) = (self.scenarios.milestone, self.scenarios.horizon);
        // Years already refused above are not named twice.
        if YEARS.contains(&milestone) && YEARS.contains(&horizon) && milestone <= horizon {
            problems.extend(projection_years_problem(dataset.base_year(), milestone, horizon));
        }
        problems
    }

    /// [`Config::problems_for`] as a result; `source_name` names the
    /// configuration in the error.
    pub fn check_for(&self, dataset: &Dataset, source_name: &str) -> Result<(), ConfigError> {
        let problems = self.problems_for(dataset);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { source_name: source_name.to_owned(), problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_round_trips_through_its_toml() {
        let text = Config::default_toml();
        let config = Config::from_toml_overrides(&text, "default").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(Config::from_toml_overrides("", "empty").unwrap(), Config::default());
    }

    #[test]
    fn a_subset_overrides_and_rules_are_replaced_whole() {
        let text = "[ridge]\nk = 0.03\n[coefficients.energy.raw_coal]\ncarbon = 0.7\n\
                    [scenarios.low.P]\nsecond = { rate = \"min_delta\" }\n";
        let config = Config::from_toml_overrides(text, "user.toml").unwrap();
        assert_eq!(config.ridge.k, 0.03);
        assert_eq!(config.ridge.vif_limit, 10.0);
        let index = Coefficients::index_of("energy.raw_coal.carbon").unwrap();
        assert_eq!(config.coefficients.get(index), 0.7);
        let rule = config.scenarios.low.P.second;
        assert_eq!((rule.rate, rule.sign, rule.factor), (RateStat::MinDelta, Sign::Keep, 1.0));
        assert_eq!(config.scenarios.low.P.first, Config::default().scenarios.low.P.first);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let err = Config::from_toml_overrides("[ridge]\nkk = 1\n", "user.toml").unwrap_err().to_string();
        assert!(err.contains("user.toml") && err.contains("kk"), "{err}");
        let err = Config::from_toml_overrides("[zoning.direction]\nXX = \"increase-is-good\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("XX"), "{err}");
        let err =
            Config::from_toml_overrides("[coefficients.crops.rice]\nwatr = 0.1\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("crops.rice.watr"), "{err}");
        let err = Config::from_toml_overrides("bogus = 1\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        let err = Config::from_toml_overrides("[ridge]\nk = -0.1\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("ridge.k"), "{err}");
        let err = Config::from_toml_overrides("[coefficients]\nbreathing = -1.0\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("breathing"), "{err}");
        let err = Config::from_toml_overrides("[ridge]\nk = \"x\"\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("ridge.k"), "{err}");
        assert!(Config::from_toml_overrides("[ridge\n", "c.toml").is_err());
    }

    /// A configuration with these `[scenarios]` keys.
    fn scenarios(horizon: i64, milestone: i64) -> Result<Config, ConfigError> {
        Config::from_toml_overrides(&format!("[scenarios]\nhorizon = {horizon}\nmilestone = {milestone}\n"), "c.toml")
    }

    #[test]
    fn configured_years_are_bounded_to_1900_to_2200() {
        for (horizon, milestone) in
            [(3100, 2030), (3_000_000, 2030), (2_147_483_647, 2030), (-2_147_483_000, -2_147_483_600)]
        {
            let err = scenarios(horizon, milestone).unwrap_err().to_string();
            assert!(err.contains(&format!("scenarios.horizon is {horizon}; it must be a year 1900–2200")), "{err}");
            assert!(err.starts_with("c.toml: "), "{err}");
        }
        let err = scenarios(2060, 1800).unwrap_err().to_string();
        assert!(err.contains("scenarios.milestone is 1800; it must be a year 1900–2200"), "{err}");
        // Out of i32 altogether: refused by the schema, with the key.
        let err = scenarios(3_000_000_000, 2030).unwrap_err().to_string();
        assert!(err.contains("scenarios.horizon"), "{err}");
        // The edges are years.
        assert_eq!(scenarios(2200, 1900).unwrap().scenarios.horizon, 2200);
    }

    #[test]
    fn the_horizon_is_checked_against_the_base_year() {
        let horizons = horizon_range(2020);
        assert_eq!((*horizons.start(), *horizons.end()), (2021, 2200));
        assert_eq!(*horizon_range(1950).end(), 2150, "at most 200 years ahead");
        assert!(horizon_range(MAX_YEAR).is_empty(), "no horizon after the last year");
        assert_eq!(*horizon_range(i32::MAX).start(), i32::MAX, "no overflow");
        assert_eq!(projection_years_problem(2020, 2030, 2060), None);
        assert_eq!(projection_years_problem(2020, 2010, 2060), None, "a milestone at or before T₀ is allowed");
        assert_eq!(projection_years_problem(2020, 2021, 2021), None);
        assert_eq!(projection_years_problem(1950, 1900, 2150), None);
        let problem = |base, milestone, horizon| projection_years_problem(base, milestone, horizon).unwrap();
        let p = problem(2020, 2005, 2010);
        assert!(p.contains("scenarios.horizon is 2010; with the data's base year 2020 it must be 2021–2200"), "{p}");
        assert!(problem(2020, 2030, 2020).contains("scenarios.horizon is 2020"));
        assert!(problem(1950, 2030, 2151).contains("it must be 1951–2150"));
        assert!(problem(2020, 2061, 2060).contains("scenarios.milestone is 2061; it must be 1900–2060"));
        assert!(problem(30, 2030, 2060).contains("the base year 30 is outside 1900–2200"));
        assert!(problem(i32::MIN, i32::MIN, i32::MAX).contains("base year"));
        assert!(problem(2020, i32::MIN, 2060).contains("milestone"));
    }

    #[test]
    fn the_ridge_grid_is_bounded() {
        let with_trace = |to: f64, step: f64| {
            Config::from_toml_overrides(&format!("[[ridge.trace]]\nto = {to:e}\nstep = {step:e}\n"), "c.toml")
        };
        assert_eq!(with_trace(0.9999, 1e-4).unwrap().ridge.grid().len(), MAX_GRID_POINTS);
        for (to, step) in [(1.0, 1e-4), (1e300, 1e-300), (1.0, 5e-324)] {
            let err = with_trace(to, step).unwrap_err().to_string();
            assert!(err.contains("ridge.trace makes") && err.contains("at most 10000"), "{err}");
        }
    }

    #[test]
    fn ridge_grid_is_exact() {
        let grid = RidgeConfig { ..Config::default().ridge }.grid();
        assert_eq!(grid.len(), 1 + 10 + 99);
        assert_eq!(grid[0], 0.0);
        assert_eq!(grid[10], 0.01);
        assert!((grid[109] - 1.0).abs() < 1e-12);
    }
}
