//! Scenario projection to the horizon (docs/model.md section 6, paper Table 5):
//! per-unit historical growth statistics, the scenario rules, projected CE
//! anchored to the base year, peak years, neutrality and the carbon emission
//! potential (CEP).

use crate::error::ChainError;
use crate::model::config::{
    Driver, Level, NeutralSink, Period, RateStat, Rule, Scenario, ScenarioConfig, ScenarioRules, Sign,
};
use crate::numerics::math;
use crate::numerics::ridge::N_PREDICTORS;

/// Historical statistics of one driver series of one unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriverStats {
    /// Average annual growth rate (v_T₀ / v_first)^(1/(n−1)) − 1.
    pub delta: f64,
    pub min_delta: f64,
    pub max_delta: f64,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    /// The base-year value v_T₀.
    pub last: f64,
}

impl DriverStats {
    /// Statistics of a series of at least two positive values, with minΔ
    /// and maxΔ over intervals of `interval_years` (≥ 1) years.
    ///
    /// The intervals end at the last value and step back: with 21 values and
    /// 5 years, [15, 20], [10, 15], [5, 10], [0, 5]; the earliest one may be
    /// shorter (with 9 values, a span of 8 years: [3, 8] and [0, 3]). Each interval [a, b] has the average annual rate
    /// (v_b / v_a)^(1/(b − a)) − 1; with 1-year intervals that is v_b / v_a − 1.
    pub fn of(series: &[f64], interval_years: usize) -> DriverStats {
        let n = series.len();
        let first = series[0];
        let last = series[n - 1];
        let delta = interval_rate(last / first, n - 1);
        let (min_delta, max_delta) = interval_rate_extremes(series, interval_years.max(1));
        let min = series.iter().copied().fold(f64::INFINITY, f64::min);
        let max = series.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = series.iter().sum::<f64>() / n as f64;
        DriverStats { delta, min_delta, max_delta, min, mean, max, last }
    }

    /// [`DriverStats::of`] of every unit's series at once, from a year-major
    /// table (year t of unit u at `t · width + u`, `n_years` ≥ 2 years), into
    /// `out` (one per unit). For positive finite values, each unit's
    /// statistics are bit-identical to `of` of its series: the same
    /// operations on each unit's values, but the levels, the sums and the
    /// interval ratios are formed a year of every unit at a time (whole rows
    /// per instruction), and the rates (a logarithm and an exponential each)
    /// of four units side by side, where the least and greatest rate are
    /// those of the least and greatest ratio (see `CLOSE`); the least and
    /// greatest of a unit's rates do not depend on the order they are
    /// considered in, since none is −0.0 and only the earliest interval's
    /// may be NaN, which is considered first as in `of`. (For other values, `f64::min` and `max` are free to give
    /// either zero of a +0.0/−0.0 pair, and vector code may choose otherwise
    /// than scalar code; the fast path passes only positive finite drivers.)
    #[inline(always)]
    pub fn of_year_major(
        values: &[f64],
        width: usize,
        n_units: usize,
        n_years: usize,
        interval_years: usize,
        lanes: &mut StatLanes,
        out: &mut Vec<DriverStats>,
    ) {
        debug_assert!(n_years >= 2, "growth statistics of {n_years} years");
        let step = interval_years.max(1);
        let row = |t: usize| &values[t * width..t * width + n_units];
        let StatLanes { min, max, sum, low, high, usual, near } = lanes;
        min.clear();
        min.resize(n_units, f64::INFINITY);
        max.clear();
        max.resize(n_units, f64::NEG_INFINITY);
        sum.clear();
        // `Iterator::sum` of f64 starts from −0.0.
        sum.resize(n_units, -0.0);
        for t in 0..n_years {
            for (((min, max), sum), &v) in min.iter_mut().zip(max.iter_mut()).zip(sum.iter_mut()).zip(row(t)) {
                *min = f64::min(*min, v);
                *max = f64::max(*max, v);
                *sum += v;
            }
        }
        // The ratios of the intervals of `step` years, as the first pass of
        // `interval_rate_extremes`.
        low.clear();
        low.resize(n_units, f64::INFINITY);
        high.clear();
        high.resize(n_units, f64::NEG_INFINITY);
        usual.clear();
        usual.resize(n_units, true);
        let mut b = n_years - 1;
        while b >= step {
            let (later, earlier) = (row(b), row(b - step));
            for u in 0..n_units {
                let ratio = later[u] / earlier[u];
                usual[u] &= math::positive_and_finite(ratio);
                low[u] = low[u].min(ratio);
                high[u] = high[u].max(ratio);
            }
            b -= step;
        }
        // A unit with a ratio other than the extremes themselves within
        // `CLOSE` of one has its extremes found ratio by ratio, as
        // `rate_extremes_of_ratios` does; for the others the extreme rates
        // are those of the extreme ratios.
        near.clear();
        near.resize(n_units, false);
        let mut b = n_years - 1;
        while b >= step {
            let (later, earlier) = (row(b), row(b - step));
            for u in 0..n_units {
                let ratio = later[u] / earlier[u];
                let near_low = ratio <= low[u] * (1.0 + CLOSE) && ratio != low[u];
                let near_high = ratio >= high[u] * (1.0 - CLOSE) && ratio != high[u];
                near[u] |= near_low | near_high;
            }
            b -= step;
        }
        let mut earliest = n_years - 1;
        while earliest >= step {
            earliest -= step;
        }
        out.clear();
        let value = |t: usize, u: usize| values[t * width + u];
        let one_by_one = |u: usize| {
            let (first, last) = (value(0, u), value(n_years - 1, u));
            let delta = interval_rate(last / first, n_years - 1);
            let (min_delta, max_delta) =
                rate_extremes_of_ratios(n_years, step, |t| value(t, u), (low[u], high[u], usual[u]));
            (delta, min_delta, max_delta)
        };
        // Four units at a time, their rates side by side: per unit the
        // rate over all years, of the earliest shorter interval (if any),
        // and of the least and greatest ratio of the intervals of `step`
        // years; the same operations as `interval_rate` on each.
        const UNITS: usize = 4;
        let years = [n_years - 1, earliest, step, step];
        let whole_intervals = n_years > step;
        let mut u = 0;
        while u < n_units {
            let together = u + UNITS <= n_units
                && usual[u..u + UNITS].iter().zip(&near[u..u + UNITS]).all(|(&usual, &near)| usual & !near);
            if !together {
                #[cfg(test)]
                tests::ONE_BY_ONE.with(|n| n.set(n.get() + 1));
                let (delta, min_delta, max_delta) = one_by_one(u);
                let mean = sum[u] / n_years as f64;
                out.push(DriverStats {
                    delta,
                    min_delta,
                    max_delta,
                    min: min[u],
                    mean,
                    max: max[u],
                    last: value(n_years - 1, u),
                });
                u += 1;
                continue;
            }
            let ratios: [f64; 4 * UNITS] = std::array::from_fn(|i| {
                let v = u + i % UNITS;
                match i / UNITS {
                    0 => value(n_years - 1, v) / value(0, v),
                    // No earliest interval: a ratio of 1, never used.
                    1 if earliest == 0 => 1.0,
                    1 => value(earliest, v) / value(0, v),
                    2 => low[v],
                    _ => high[v],
                }
            });
            let logs = math::ln_each(ratios);
            // (A rate over one year, or none, takes no exponential: 0 in
            // its lane keeps the others side by side.)
            let exponents: [f64; 4 * UNITS] =
                std::array::from_fn(|i| if years[i / UNITS] > 1 { logs[i] / years[i / UNITS] as f64 } else { 0.0 });
            let grown = math::exp_m1_each(exponents);
            let rate = |i: usize| if years[i / UNITS] == 1 { ratios[i] - 1.0 } else { grown[i] };
            for l in 0..UNITS {
                let v = u + l;
                let (mut min_delta, mut max_delta) = (f64::INFINITY, f64::NEG_INFINITY);
                // In `rate_extremes_of_ratios`'s order: the earliest
                // interval first (the only rate here that may not be a
                // number), then the rest.
                let candidates = [
                    (earliest > 0).then(|| rate(UNITS + l)),
                    whole_intervals.then(|| rate(2 * UNITS + l)),
                    whole_intervals.then(|| rate(3 * UNITS + l)),
                ];
                for g in candidates.into_iter().flatten() {
                    min_delta = min_delta.min(g);
                    max_delta = max_delta.max(g);
                }
                let mean = sum[v] / n_years as f64;
                let (delta, last) = (rate(l), value(n_years - 1, v));
                out.push(DriverStats { delta, min_delta, max_delta, min: min[v], mean, max: max[v], last });
            }
            u += UNITS;
        }
    }

    /// The interval rates' extremes as the plain definition gives them:
    /// every interval's rate, then the least and the greatest.
    #[cfg(test)]
    fn interval_rate_extremes_plainly(series: &[f64], step: usize) -> (f64, f64) {
        let (mut min_delta, mut max_delta) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut b = series.len() - 1;
        while b > 0 {
            let a = b.saturating_sub(step);
            let g = interval_rate(series[b] / series[a], b - a);
            min_delta = min_delta.min(g);
            max_delta = max_delta.max(g);
            b = a;
        }
        (min_delta, max_delta)
    }

    fn rate_stat(&self, stat: RateStat) -> f64 {
        match stat {
            RateStat::Delta => self.delta,
            RateStat::MinDelta => self.min_delta,
            RateStat::MaxDelta => self.max_delta,
        }
    }

    fn level(&self, level: Level) -> f64 {
        match level {
            Level::Min => self.min,
            Level::Mean => self.mean,
            Level::Max => self.max,
        }
    }
}

/// Per-unit buffers of [`DriverStats::of_year_major`], reused from call
/// to call.
#[derive(Clone, Debug, Default)]
pub struct StatLanes {
    min: Vec<f64>,
    max: Vec<f64>,
    sum: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    usual: Vec<bool>,
    /// Whether a unit has an interval ratio within `CLOSE` of the least
    /// or greatest without being it.
    near: Vec<bool>,
}

impl StatLanes {
    /// The bytes its buffers hold.
    pub fn heap_bytes(&self) -> usize {
        8 * (self.min.capacity()
            + self.max.capacity()
            + self.sum.capacity()
            + self.low.capacity()
            + self.high.capacity())
            + self.usual.capacity()
            + self.near.capacity()
    }
}

/// The average annual rate over `years` years of growth by `ratio`:
/// ratio^(1/years) − 1, formed as e^(ln(ratio)/years) − 1 (the same
/// number, without the cancellation of a small rate; see [`math`]), and
/// exactly ratio − 1 over one year.
#[inline(always)]
fn interval_rate(ratio: f64, years: usize) -> f64 {
    if years == 1 { ratio - 1.0 } else { math::exp_m1(math::ln(ratio) / years as f64) }
}

/// The least and greatest rate of the intervals of `step` years ending at
/// the last value ([`DriverStats::of`]), computing fewer rates: intervals
/// of one length have rates in the order of their ratios, so only the
/// ratios that may give an extreme need one. A ratio within 10⁻¹² of the
/// least (or greatest) of its length is computed too, since a rate is not
/// promised to keep the order of values that close; the extremes are then
/// those of every rate, bit for bit. A ratio that is not positive and
/// finite makes every interval's rate be computed.
fn interval_rate_extremes(series: &[f64], step: usize) -> (f64, f64) {
    let n = series.len();
    // The intervals: all of `step` years but the earliest, which may be
    // shorter; their ratios' extremes.
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut usual = true;
    let mut b = n - 1;
    while b >= step {
        let ratio = series[b] / series[b - step];
        usual &= ratio > 0.0 && ratio < f64::INFINITY;
        low = low.min(ratio);
        high = high.max(ratio);
        b -= step;
    }
    rate_extremes_of_ratios(n, step, |t| series[t], (low, high, usual))
}

/// The second pass of [`interval_rate_extremes`] over the `n` values
/// `value(0)` …: the rates of the earliest, shorter interval and of the
/// intervals of `step` years whose ratios may give an extreme, given those
/// ratios' least and greatest and whether every one was positive and finite.
#[inline(always)]
fn rate_extremes_of_ratios(
    n: usize,
    step: usize,
    value: impl Fn(usize) -> f64,
    (low, high, usual): (f64, f64, bool),
) -> (f64, f64) {
    let (mut min_delta, mut max_delta) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut consider = |g: f64| {
        min_delta = min_delta.min(g);
        max_delta = max_delta.max(g);
    };
    let mut b = n - 1;
    while b >= step {
        b -= step;
    }
    if b > 0 {
        // The earliest, shorter interval [0, b].
        consider(interval_rate(value(b) / value(0), b));
    }
    let mut b = n - 1;
    while b >= step {
        let ratio = value(b) / value(b - step);
        if !usual || ratio <= low * (1.0 + CLOSE) || ratio >= high * (1.0 - CLOSE) {
            consider(interval_rate(ratio, step));
        }
        b -= step;
    }
    (min_delta, max_delta)
}

/// How close two ratios of intervals of one length must be for their
/// rates to be computed both, since a rate is not promised to keep the
/// order of values that close.
const CLOSE: f64 = 1e-12;

/// Sampled changes to the scenario rules: a multiplier of each rule's final
/// annual rate and an offset of its cap, per scenario, driver and period.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleAdjustments {
    pub rate_multiplier: [[[f64; 2]; N_PREDICTORS]; 3],
    pub cap_offset: [[[f64; 2]; N_PREDICTORS]; 3],
}

impl Default for RuleAdjustments {
    fn default() -> Self {
        RuleAdjustments { rate_multiplier: [[[1.0; 2]; N_PREDICTORS]; 3], cap_offset: [[[0.0; 2]; N_PREDICTORS]; 3] }
    }
}

/// A rule resolved for one unit: its annual rate and optional cap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resolved {
    rate: f64,
    cap: Option<f64>,
}

/// A scenario's rules resolved for one unit, per driver and period.
pub type ResolvedRules = [[Resolved; 2]; N_PREDICTORS];

/// A scenario's rules resolved for one unit.
#[inline(always)]
fn resolve_unit(
    rules: &ScenarioRules,
    stats: &[DriverStats; N_PREDICTORS],
    adjustments: &RuleAdjustments,
    scenario: Scenario,
) -> ResolvedRules {
    let s = scenario as usize;
    std::array::from_fn(|d| {
        let driver_rules = rules.get(Driver::ALL[d]);
        std::array::from_fn(|p| {
            resolve(
                driver_rules.get(Period::ALL[p]),
                &stats[d],
                adjustments.rate_multiplier[s][d][p],
                adjustments.cap_offset[s][d][p],
            )
        })
    })
}

/// A scenario's rules resolved for every unit (`stats` per unit) into
/// `out`: each rule, multiplier and cap offset taken once for all units,
/// each unit's rate and cap formed as [`project_unit_into`] forms them.
pub fn resolve_units(
    rules: &ScenarioRules,
    stats: &[[DriverStats; N_PREDICTORS]],
    adjustments: &RuleAdjustments,
    scenario: Scenario,
    out: &mut Vec<ResolvedRules>,
) {
    // Every rate and cap of every unit is written below.
    out.resize(stats.len(), [[Resolved { rate: 0.0, cap: None }; 2]; N_PREDICTORS]);
    // A block of units at a time, so that its statistics and rules stay
    // in the first-level cache across the twelve passes of a driver and
    // period (a pass over every unit of a large dataset streamed both
    // from further out each time: at 2,844 units this function took
    // about three times as long per unit as at 81).
    const UNITS: usize = 32;
    for (out, stats) in out.chunks_mut(UNITS).zip(stats.chunks(UNITS)) {
        resolve_block(rules, stats, adjustments, scenario, out);
    }
}

/// [`resolve_units`] for one block of units.
#[inline(always)]
fn resolve_block(
    rules: &ScenarioRules,
    stats: &[[DriverStats; N_PREDICTORS]],
    adjustments: &RuleAdjustments,
    scenario: Scenario,
    out: &mut [ResolvedRules],
) {
    let s = scenario as usize;
    for (d, driver) in Driver::ALL.into_iter().enumerate() {
        let driver_rules = rules.get(driver);
        for (p, period) in Period::ALL.into_iter().enumerate() {
            let rule = driver_rules.get(period);
            let (multiplier, cap_offset) = (adjustments.rate_multiplier[s][d][p], adjustments.cap_offset[s][d][p]);
            // `resolve`, with its choices made once for every unit: a loop
            // per statistic and sign, then per cap's source.
            let rates = |stat: fn(&DriverStats) -> f64, out: &mut [ResolvedRules]| match rule.sign {
                Sign::Keep => set_rates(out, stats, d, p, stat, rule, multiplier),
                Sign::Positive => set_rates(out, stats, d, p, |u| stat(u).abs(), rule, multiplier),
                Sign::Negative => set_rates(out, stats, d, p, |u| -stat(u).abs(), rule, multiplier),
            };
            match rule.rate {
                RateStat::Delta => rates(|u| u.delta, out),
                RateStat::MinDelta => rates(|u| u.min_delta, out),
                RateStat::MaxDelta => rates(|u| u.max_delta, out),
            }
            let Some(cap) = rule.cap else {
                out.iter_mut().for_each(|resolved| resolved[d][p].cap = None);
                continue;
            };
            let set_caps = |base: &dyn Fn(&DriverStats) -> f64, out: &mut [ResolvedRules]| {
                for (resolved, unit) in out.iter_mut().zip(stats) {
                    resolved[d][p].cap = Some(base(&unit[d]) + cap.offset + cap_offset);
                }
            };
            match (cap.level, cap.value) {
                (Some(Level::Min), _) => set_caps(&|u| u.min, out),
                (Some(Level::Mean), _) => set_caps(&|u| u.mean, out),
                (Some(Level::Max), _) => set_caps(&|u| u.max, out),
                (None, Some(value)) => set_caps(&|_| value, out),
                (None, None) => set_caps(&|_| f64::INFINITY, out),
            }
        }
    }
}

/// Every unit's rate of driver `d` in period `p`: `signed` of its
/// statistics, then `rule`'s factor and offset and the multiplier, as
/// [`resolve`] forms it.
#[inline(always)]
fn set_rates(
    out: &mut [ResolvedRules],
    stats: &[[DriverStats; N_PREDICTORS]],
    d: usize,
    p: usize,
    signed: impl Fn(&DriverStats) -> f64,
    rule: &Rule,
    multiplier: f64,
) {
    for (resolved, unit) in out.iter_mut().zip(stats) {
        resolved[d][p].rate = (signed(&unit[d]) * rule.factor + rule.offset) * multiplier;
    }
}

#[inline(always)]
fn resolve(rule: &Rule, stats: &DriverStats, multiplier: f64, cap_offset: f64) -> Resolved {
    let stat = stats.rate_stat(rule.rate);
    let signed = match rule.sign {
        Sign::Keep => stat,
        Sign::Positive => stat.abs(),
        Sign::Negative => -stat.abs(),
    };
    let rate = (signed * rule.factor + rule.offset) * multiplier;
    let cap = rule.cap.map(|cap| {
        let base = match (cap.level, cap.value) {
            (Some(level), _) => stats.level(level),
            (None, Some(value)) => value,
            (None, None) => f64::INFINITY,
        };
        base + cap.offset + cap_offset
    });
    Resolved { rate, cap }
}

/// One unit's projection under one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitProjection {
    /// CE for each year T₀ … horizon.
    pub ce: Vec<f64>,
    /// The year of the maximum CE (first on ties), `None` when it is the horizon.
    pub peak_year: Option<i32>,
    pub neutral: bool,
}

/// Everything a projection needs to know about one unit.
#[derive(Clone, Debug)]
pub struct UnitBase<'a> {
    pub unit_id: &'a str,
    pub stats: &'a [DriverStats; N_PREDICTORS],
    /// Observed base-year CE.
    pub ce_base: f64,
    /// CS the horizon-year CE is compared with.
    pub cs_horizon: f64,
}

/// Project one unit under one scenario with the fitted STIRPAT coefficients.
pub fn project_unit(
    unit: &UnitBase<'_>,
    scenario: Scenario,
    config: &ScenarioConfig,
    adjustments: &RuleAdjustments,
    coefficients: &[f64; N_PREDICTORS],
    base_year: i32,
) -> Result<UnitProjection, ChainError> {
    // In i64: no overflow for any pair of years (callers bound them).
    let n_years = (i64::from(config.horizon) - i64::from(base_year)).max(0) as usize + 1;
    let mut ce = vec![0.0; n_years];
    let (peak_year, neutral) =
        project_unit_into(unit, scenario, config, adjustments, coefficients, base_year, &mut ce)?;
    Ok(UnitProjection { ce, peak_year, neutral })
}

/// [`project_unit`] writing CE for the years T₀ … horizon into `ce` (of
/// exactly that length) and returning the peak year and neutrality: the one
/// implementation, which a sweep calls with a buffer it reuses.
#[inline(always)]
pub fn project_unit_into(
    unit: &UnitBase<'_>,
    scenario: Scenario,
    config: &ScenarioConfig,
    adjustments: &RuleAdjustments,
    coefficients: &[f64; N_PREDICTORS],
    base_year: i32,
    ce: &mut [f64],
) -> Result<(Option<i32>, bool), ChainError> {
    project(unit, scenario, config, adjustments, coefficients, base_year, ce, true)
}

/// [`project_unit_into`], taking the year loop segment by segment where it
/// can (`segments`) or always year by year (which tests compare it with).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn project(
    unit: &UnitBase<'_>,
    scenario: Scenario,
    config: &ScenarioConfig,
    adjustments: &RuleAdjustments,
    coefficients: &[f64; N_PREDICTORS],
    base_year: i32,
    ce: &mut [f64],
    segments: bool,
) -> Result<(Option<i32>, bool), ChainError> {
    let resolved = resolve_unit(config.rules(scenario), unit.stats, adjustments, scenario);
    project_resolved(unit, scenario, config, &resolved, coefficients, base_year, ce, segments)
}

/// [`project_unit_into`] with the scenario's rules already resolved for
/// the unit ([`resolve_units`]): what a sweep calls.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn project_resolved_into(
    unit: &UnitBase<'_>,
    scenario: Scenario,
    config: &ScenarioConfig,
    resolved: &ResolvedRules,
    coefficients: &[f64; N_PREDICTORS],
    base_year: i32,
    ce: &mut [f64],
) -> Result<(Option<i32>, bool), ChainError> {
    project_resolved(unit, scenario, config, resolved, coefficients, base_year, ce, true)
}

/// The projection itself, from the unit's resolved rules: segment by
/// segment where it can (`segments`), otherwise year by year.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn project_resolved(
    unit: &UnitBase<'_>,
    scenario: Scenario,
    config: &ScenarioConfig,
    resolved: &ResolvedRules,
    coefficients: &[f64; N_PREDICTORS],
    base_year: i32,
    ce: &mut [f64],
    segments: bool,
) -> Result<(Option<i32>, bool), ChainError> {
    ce[0] = unit.ce_base;
    // An uncapped driver adds coefficient · ln(1 + rate) to the log-ratio
    // ln CE_t − ln CE_T₀ every year of a period, so uncapped drivers only
    // set each period's steady change; capped ones are followed year by
    // year, and their coefficient · ln(1 + rate) is formed the first time
    // it is needed.
    // Every ln(1 + rate) at once, side by side (`math::ln_1p_each`: the
    // same bits as one at a time); a capped driver's is used only if it
    // grows below its cap.
    let log_growth: [f64; 2 * N_PREDICTORS] =
        math::ln_1p_each(std::array::from_fn(|i| resolved[i % N_PREDICTORS][i / N_PREDICTORS].rate));
    let mut steady_change = [0.0; 2];
    for p in 0..2 {
        for d in 0..N_PREDICTORS {
            if resolved[d][p].cap.is_none() {
                steady_change[p] += coefficients[d] * log_growth[p * N_PREDICTORS + d];
            }
        }
    }
    // The capped drivers, followed year by year, with each period's rule.
    let unfollowed = Followed { driver: 0, level: 0.0, growth: [0.0; 2], cap: [None; 2], change: [None; 2] };
    let mut followed = [unfollowed; N_PREDICTORS];
    let mut n_followed = 0;
    let mut fixed_levels_positive = true;
    for d in 0..N_PREDICTORS {
        let last = unit.stats[d].last;
        let [first, second] = resolved[d];
        if first.cap.is_some() || second.cap.is_some() {
            followed[n_followed] = Followed {
                driver: d,
                level: last,
                growth: [1.0 + first.rate, 1.0 + second.rate],
                cap: [first.cap, second.cap],
                change: [None; 2],
            };
            n_followed += 1;
        } else {
            // Only followed levels move; the others keep their base-year
            // value, so whether every level stays positive is known now.
            fixed_levels_positive &= last > 0.0;
        }
    }
    let followed = &mut followed[..n_followed];
    let first_year = base_year.saturating_add(1);
    let periods = [
        (first_year, config.milestone.min(config.horizon)),
        (config.milestone.saturating_add(1).max(first_year), config.horizon),
    ];
    let ends = |peak: usize, ce: &[f64]| {
        let horizon_ce = ce[ce.len() - 1];
        let year = base_year.saturating_add(i32::try_from(peak).unwrap_or(i32::MAX));
        ((year != config.horizon).then_some(year), horizon_ce <= unit.cs_horizon)
    };
    if segments
        && fixed_levels_positive
        && let Some(peak) = project_in_segments(
            followed,
            steady_change,
            periods,
            base_year,
            coefficients,
            &log_growth,
            unit.ce_base,
            ce,
        )
    {
        #[cfg(test)]
        tests::SEGMENTS_TAKEN.with(|n| n.set(n.get() + 1));
        return Ok(ends(peak, ce));
    }
    // CE_t = CE_T₀ · exp(Σ coef·(ln v_t − ln v_T₀)) is advanced year by year as
    // CE_t = CE_{t−1} · exp(Σ coef·Δ ln v_t); the factor is recomputed only
    // when the yearly change differs, so drivers that do not move keep CE
    // exactly flat and a steady period costs one exp. The peak (the first
    // largest value) is followed on the way. Years up to the milestone are
    // the first period, later ones the second.
    let mut current = unit.ce_base;
    let mut last_change = 0.0;
    let mut last_factor = 1.0;
    let mut peak = (0usize, unit.ce_base);
    let mut i = 0;
    for (period, (from, to)) in periods.into_iter().enumerate() {
        for year in from..=to {
            let mut change = steady_change[period];
            let mut followed_positive = true;
            for f in followed.iter_mut() {
                let previous = f.level;
                let advanced = previous * f.growth[period];
                match f.cap[period] {
                    None => f.level = advanced,
                    Some(cap) if previous > cap => {}
                    Some(cap) if advanced > cap => {
                        f.level = cap;
                        if cap != previous {
                            change += coefficients[f.driver] * math::ln(cap / previous);
                        }
                    }
                    Some(_) => {
                        f.level = advanced;
                        let driver = f.driver;
                        change += *f.change[period]
                            .get_or_insert_with(|| coefficients[driver] * log_growth[period * N_PREDICTORS + driver]);
                    }
                }
                followed_positive &= f.level > 0.0;
            }
            if change != last_change {
                last_change = change;
                last_factor = exp_when_changed(change);
            }
            current *= last_factor;
            // A rate at or below −100 % drives a level to zero or below; its
            // logarithm, and so the change, is then not finite.
            if !current.is_finite() || !change.is_finite() || !fixed_levels_positive || !followed_positive {
                return Err(ChainError::Projection { unit: unit.unit_id.to_owned(), scenario: scenario.key(), year });
            }
            i += 1;
            ce[i] = current;
            if current > peak.1 {
                peak = (i, current);
            }
        }
    }
    Ok(ends(peak.0, ce))
}

/// A driver with a cap in some period, followed year by year.
#[derive(Clone, Copy)]
struct Followed {
    driver: usize,
    level: f64,
    /// 1 + the rate, per period.
    growth: [f64; 2],
    cap: [Option<f64>; 2],
    /// coefficient · ln(1 + rate), per period, once computed: the
    /// change of a year in which the driver grows below its cap.
    change: [Option<f64>; 2],
}

/// How a followed driver moves through one period, when that can be told
/// in advance: it grows by its rate (changing ln CE by `growing`) in the
/// years before `grow_end`, then reaches its cap in year `grow_end` if
/// `hit` (changing ln CE by the `Some` value, or not at all when it was
/// exactly at its cap), and stays there; or it is held all period.
#[derive(Clone, Copy, Debug)]
struct Phase {
    /// Whether it changes ln CE in no year of the period (held above its
    /// cap, or a period without a cap).
    still: bool,
    growing: f64,
    grow_end: usize,
    hit: Option<Option<f64>>,
}

impl Phase {
    const STILL: Phase = Phase { still: true, growing: 0.0, grow_end: 0, hit: None };

    /// Its change of ln CE in year index `i` of the period.
    #[inline(always)]
    fn change(&self, i: usize) -> Option<f64> {
        if self.still {
            None
        } else if i < self.grow_end {
            Some(self.growing)
        } else if i == self.grow_end {
            self.hit.flatten()
        } else {
            None
        }
    }

    /// The first year index after `i` at which its change may differ.
    #[inline(always)]
    fn next_boundary(&self, i: usize) -> usize {
        if self.still || i > self.grow_end {
            usize::MAX
        } else if i < self.grow_end {
            self.grow_end
        } else {
            self.grow_end + 1
        }
    }
}

/// The year loop of [`project_unit_into`] taken segment by segment, for
/// the usual case: every level positive and finite, every growth factor
/// positive and finite, and a driver that reaches its cap staying there.
/// Each followed driver's level is still advanced year by year by the same
/// multiplications, but alone, to find the year it reaches its cap; the
/// yearly change of ln CE is then the same sum, in the same order, as the
/// year loop forms, and it is formed only where some driver's change
/// differs. CE is advanced by the same multiplications, so every value is
/// the year loop's, bit for bit. `None` when the case is not usual (or CE
/// or a change is not finite): the year loop then runs and reports.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn project_in_segments(
    followed: &[Followed],
    steady_change: [f64; 2],
    periods: [(i32, i32); 2],
    base_year: i32,
    coefficients: &[f64; N_PREDICTORS],
    log_growth: &[f64; 2 * N_PREDICTORS],
    ce_base: f64,
    ce: &mut [f64],
) -> Option<usize> {
    let mut phases = [[Phase::STILL; 2]; N_PREDICTORS];
    for (f, phases) in followed.iter().zip(phases.iter_mut()) {
        let mut level = f.level;
        if !math::positive_and_finite(level) {
            return None;
        }
        for (p, &(from, to)) in periods.iter().enumerate() {
            if from > to {
                continue;
            }
            let (start, end) = ((from - base_year) as usize, (to - base_year) as usize);
            let growth = f.growth[p];
            if !math::positive_and_finite(growth) {
                return None;
            }
            match f.cap[p] {
                None => {
                    for _ in start..=end {
                        level *= growth;
                    }
                }
                Some(cap) if level > cap => {}
                Some(cap) => {
                    let mut i = start;
                    let mut hit = None;
                    while i <= end {
                        let advanced = level * growth;
                        if advanced > cap {
                            hit = Some((cap != level).then(|| coefficients[f.driver] * math::ln(cap / level)));
                            level = cap;
                            // Held at the cap from then on only if one
                            // more step would pass it again: so for any
                            // normal positive cap and a growth factor above
                            // 1, but not for a subnormal cap.
                            if !(cap * growth > cap) {
                                return None;
                            }
                            break;
                        }
                        level = advanced;
                        i += 1;
                    }
                    let growing =
                        if i > start { coefficients[f.driver] * log_growth[p * N_PREDICTORS + f.driver] } else { 0.0 };
                    phases[p] = Phase { still: false, growing, grow_end: i, hit };
                }
            }
            // A level moves one way within a period, so positive and finite
            // at both ends means in every year.
            if !math::positive_and_finite(level) {
                return None;
            }
        }
    }
    let phases = &phases[..followed.len()];
    ce[0] = ce_base;
    let mut current = ce_base;
    let mut last_change = 0.0;
    let mut last_factor = 1.0;
    let mut peak = (0usize, ce_base);
    for (p, &(from, to)) in periods.iter().enumerate() {
        if from > to {
            continue;
        }
        let (start, end) = ((from - base_year) as usize, (to - base_year) as usize);
        let mut i = start;
        while i <= end {
            let mut change = steady_change[p];
            let mut next = end + 1;
            for phase in phases {
                let phase = &phase[p];
                if let Some(c) = phase.change(i) {
                    change += c;
                }
                next = next.min(phase.next_boundary(i));
            }
            if !change.is_finite() {
                return None;
            }
            if change != last_change {
                last_change = change;
                last_factor = exp_when_changed(change);
            }
            for (j, value) in ce[i..next].iter_mut().enumerate() {
                current *= last_factor;
                *value = current;
                if current > peak.1 {
                    peak = (i + j, current);
                }
            }
            // Not finite stays not finite under further multiplications.
            if !current.is_finite() {
                return None;
            }
            i = next;
        }
    }
    Some(peak.0)
}

/// `x.exp()`, kept out of line: inlined, the compiler may compute it on
/// every pass of the loop above (the intrinsic counts as cheap and free of
/// effects) although it is needed only when the yearly change differs.
#[inline(never)]
fn exp_when_changed(x: f64) -> f64 {
    math::exp(x)
}

/// The peak rule of a CE series for the years `base_year`, `base_year + 1`,
/// …: the year of its largest value (the first on ties), `None` when that
/// is the horizon (not peaked by the horizon) or the series is empty. A
/// unit's projection and the regional total both use it.
pub fn peak_year(ce: &[f64], base_year: i32, horizon: i32) -> Option<i32> {
    let first = *ce.first()?;
    let mut peak = (0, first);
    for (i, &v) in ce.iter().enumerate() {
        if v > peak.1 {
            peak = (i, v);
        }
    }
    let year = base_year.saturating_add(i32::try_from(peak.0).unwrap_or(i32::MAX));
    (year != horizon).then_some(year)
}

/// The CS a unit's horizon-year CE is compared with.
pub fn horizon_sink(rule: NeutralSink, cs_base: f64, cs_sen_slope: f64, base_year: i32, horizon: i32) -> f64 {
    match rule {
        NeutralSink::BaseYear => cs_base,
        NeutralSink::SenExtrapolation => {
            (cs_base + cs_sen_slope * (f64::from(horizon) - f64::from(base_year))).max(0.0)
        }
    }
}

/// Carbon emission potential, 5…1 (the first rule that holds):
/// 5 peaked by the milestone in all scenarios and neutral in the baseline;
/// 4 peaked by the milestone in all; 3 in low-carbon and baseline; 2 in
/// low-carbon, or peaked before the horizon in the baseline; 1 otherwise.
pub fn carbon_emission_potential(peak_year: [Option<i32>; 3], neutral_baseline: bool, milestone: i32) -> u8 {
    let by_milestone = |s: Scenario| peak_year[s as usize].is_some_and(|y| y <= milestone);
    let (low, baseline, high) =
        (by_milestone(Scenario::Low), by_milestone(Scenario::Baseline), by_milestone(Scenario::High));
    if low && baseline && high && neutral_baseline {
        5
    } else if low && baseline && high {
        4
    } else if low && baseline {
        3
    } else if low || peak_year[Scenario::Baseline as usize].is_some() {
        2
    } else {
        1
    }
}

#[cfg(test)]
// Tests compare with the platform's functions and state expectations in them.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod tests {
    use super::*;
    use crate::model::config::Config;

    thread_local! {
        /// Projections the segment path completed on this thread.
        pub(super) static SEGMENTS_TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
        /// Units whose statistics `of_year_major` formed one by one.
        pub(super) static ONE_BY_ONE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn flat_stats() -> [DriverStats; N_PREDICTORS] {
        [DriverStats::of(&[10.0, 10.0, 10.0], 5); N_PREDICTORS]
    }

    #[test]
    fn statistics_of_a_series_with_yearly_intervals() {
        let s = DriverStats::of(&[100.0, 110.0, 99.0, 121.0], 1);
        assert!((s.delta - (1.21f64.powf(1.0 / 3.0) - 1.0)).abs() < 1e-15);
        assert!((s.min_delta - (-0.1)).abs() < 1e-12);
        assert!((s.max_delta - (121.0 / 99.0 - 1.0)).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.last), (99.0, 121.0, 121.0));
    }

    #[test]
    fn interval_rates_end_at_the_base_year_and_the_earliest_may_be_shorter() {
        // 2012–2020 in 5-year intervals: 2015–20 over five years, 2012–15 over three.
        let series: Vec<f64> = (0..9).map(|t| [1.0, 1.1, 1.3, 2.0, 2.2, 2.4, 2.5, 2.9, 3.0][t]).collect();
        let s = DriverStats::of(&series, 5);
        // (3 / 2)^(1/5) − 1 and (2 / 1)^(1/3) − 1, as `interval_rate` forms them.
        let recent = math::exp_m1(math::ln(3.0 / 2.0) / 5.0);
        let earliest = math::exp_m1(math::ln(2.0 / 1.0) / 3.0);
        assert_eq!(s.min_delta, recent);
        assert_eq!(s.max_delta, earliest);
        assert!((recent - (1.5f64.powf(0.2) - 1.0)).abs() < 1e-15 && (earliest - (2f64.cbrt() - 1.0)).abs() < 1e-15);
        // 21 values: four 5-year rates; a series growing 10 % a year for ten
        // years, then 2 %, has exactly those two rates as extremes.
        let mut v = vec![1.0f64];
        for t in 1..21 {
            let g = if t <= 10 { 1.10 } else { 1.02 };
            v.push(v[t - 1] * g);
        }
        let s = DriverStats::of(&v, 5);
        assert!((s.max_delta - 0.10).abs() < 1e-12 && (s.min_delta - 0.02).abs() < 1e-12, "{s:?}");
        // An interval as long as the span leaves one rate: Δ itself.
        let s = DriverStats::of(&v, 20);
        assert!((s.min_delta - s.delta).abs() < 1e-15 && s.min_delta == s.max_delta);
        let s = DriverStats::of(&v, 50);
        assert!((s.min_delta - s.delta).abs() < 1e-15);
    }

    #[test]
    fn a_unit_whose_drivers_do_not_move_stays_exactly_flat_and_peaks_at_base() {
        // Under the baseline every rule of a flat series is a zero rate (the
        // low-carbon CEI rule's −0.01 offset would move it).
        let config = Config::default().scenarios;
        let stats = flat_stats();
        let unit = UnitBase { unit_id: "U", stats: &stats, ce_base: 5.0, cs_horizon: 5.0 };
        let p = project_unit(&unit, Scenario::Baseline, &config, &RuleAdjustments::default(), &[1.0; 6], 2020).unwrap();
        assert_eq!(p.ce.len(), 41);
        assert!(p.ce.iter().all(|v| *v == 5.0));
        assert_eq!(p.peak_year, Some(2020));
        assert!(p.neutral);
    }

    /// The interval rates' extremes computing fewer rates are those of
    /// every interval's rate, bit for bit, on random series (ties and near
    /// ties among the ratios included) and every interval length.
    #[test]
    fn interval_rate_extremes_are_those_of_every_rate() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for case in 0..20_000 {
            let n = rng.random_range(2..30);
            let step = rng.random_range(1..n + 2);
            let series: Vec<f64> = match case % 4 {
                // Geometric series: equal ratios, and ratios one rounding apart.
                0 => (0..n).map(|t| 100.0 * 1.03f64.powi(t as i32)).collect(),
                1 => (0..n).map(|t| [2.0, 3.0, 2.0, 3.0][t % 4]).collect(),
                2 => (0..n)
                    .map(|_| match rng.random_range(0..8) {
                        0 => 0.0,
                        1 => -1.0,
                        _ => rng.random_range(0.5..2.0),
                    })
                    .collect(),
                _ => (0..n).map(|_| rng.random_range(1.0..100.0)).collect(),
            };
            let plain = DriverStats::interval_rate_extremes_plainly(&series, step);
            let fewer = interval_rate_extremes(&series, step);
            assert_eq!(format!("{plain:?}"), format!("{fewer:?}"), "case {case}: {series:?} in {step}-year intervals");
        }
    }

    /// Statistics of a year-major table of units are each unit's
    /// [`DriverStats::of`], bit for bit, whatever the units, years, interval
    /// and positive finite values (geometric series with ratios one rounding
    /// apart, alternating and equal values, tiny and huge ones).
    #[test]
    fn statistics_of_a_year_major_table_are_those_of_each_series() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut lanes = StatLanes::default();
        let mut out = Vec::new();
        for case in 0..3_000 {
            let n_years = rng.random_range(2..30);
            let n_units = rng.random_range(1..20);
            let width = n_units + rng.random_range(0..9);
            let interval = rng.random_range(0..n_years + 2);
            let mut table = vec![f64::NAN; n_years * width];
            for u in 0..n_units {
                let kind = rng.random_range(0..5);
                for t in 0..n_years {
                    table[t * width + u] = match kind {
                        0 => 100.0 * 1.03f64.powi(t as i32),
                        1 => [2.0, 3.0, 2.0, 3.0][t % 4],
                        2 => match rng.random_range(0..12) {
                            0 => f64::MIN_POSITIVE,
                            1 => 1e300,
                            2 => 7.0,
                            _ => rng.random_range(0.5..2.0),
                        },
                        _ => rng.random_range(1.0..100.0),
                    };
                }
            }
            DriverStats::of_year_major(&table, width, n_units, n_years, interval, &mut lanes, &mut out);
            assert_eq!(out.len(), n_units);
            for (u, stats) in out.iter().enumerate() {
                let series: Vec<f64> = (0..n_years).map(|t| table[t * width + u]).collect();
                let each = DriverStats::of(&series, interval);
                let bits = |s: &DriverStats| {
                    [s.delta, s.min_delta, s.max_delta, s.min, s.mean, s.max, s.last].map(f64::to_bits)
                };
                assert_eq!(bits(stats), bits(&each), "case {case}, unit {u}: {series:?}, interval {interval}");
            }
        }
    }

    /// Four units' rates are formed side by side unless one of them has
    /// an interval ratio within `CLOSE` of an extreme ratio without being
    /// it, or its ratios are not all positive and finite, or fewer than
    /// four units are left: that group of four is formed one by one.
    #[test]
    fn rates_side_by_side_only_where_the_extreme_ratios_decide() {
        let (n_years, width) = (11, 8);
        let plain = |u: usize, t: usize| 10.0 + (u + 1) as f64 * t as f64 + (t * t % 7) as f64;
        let table = |unusual: &dyn Fn(usize, usize) -> Option<f64>| {
            let mut table = vec![1.0; n_years * width];
            for u in 0..width {
                for t in 0..n_years {
                    table[t * width + u] = unusual(u, t).unwrap_or_else(|| plain(u, t));
                }
            }
            table
        };
        let one_by_one = |table: &[f64], n_units: usize| {
            ONE_BY_ONE.with(|n| n.set(0));
            let (mut lanes, mut out) = (StatLanes::default(), Vec::new());
            DriverStats::of_year_major(table, width, n_units, n_years, 5, &mut lanes, &mut out);
            for (u, stats) in out.iter().enumerate() {
                let series: Vec<f64> = (0..n_years).map(|t| table[t * width + u]).collect();
                assert_eq!(*stats, DriverStats::of(&series, 5), "unit {u}");
            }
            ONE_BY_ONE.with(|n| n.get())
        };
        assert_eq!(one_by_one(&table(&|_, _| None), 8), 0);
        assert_eq!(one_by_one(&table(&|_, _| None), 7), 3);
        // Unit 5: the ratios of [0, 5] and [5, 10] one rounding apart.
        let near = |u: usize, t: usize| {
            let ratio = 1.25f64;
            (u == 5).then(|| match t {
                0 => 4.0,
                5 => 4.0 * ratio,
                10 => f64::from_bits((4.0 * ratio * ratio).to_bits() + 1),
                _ => 5.0,
            })
        };
        // (with the three others of its group of four).
        assert_eq!(one_by_one(&table(&near), 8), 4);
        // Unit 2: equal ratios, which need no second look.
        let equal = |u: usize, t: usize| (u == 2).then(|| [3.0, 6.0, 12.0][t / 5]);
        assert_eq!(one_by_one(&table(&equal), 8), 0);
    }

    /// The segment path gives every value, peak year, neutrality and
    /// error of the year loop, bit for bit, over random units, rule
    /// adjustments (rates driving levels to zero or below, caps below,
    /// at and above the levels), coefficients and period layouts.
    #[test]
    fn segments_give_exactly_the_year_loop() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let config = Config::default().scenarios;
        let mut taken = 0;
        for case in 0..20_000 {
            let mut stats = [DriverStats::of(&[1.0, 1.0], 1); N_PREDICTORS];
            for s in &mut stats {
                let last = match rng.random_range(0..20) {
                    0 => 0.0,
                    1 => -1.0,
                    _ => 10f64.powf(rng.random_range(-2.0..3.0)),
                };
                let spread: f64 = rng.random_range(0.5..1.5);
                *s = DriverStats {
                    delta: rng.random_range(-0.2..0.3),
                    min_delta: rng.random_range(-0.3..0.1),
                    max_delta: rng.random_range(0.0..0.5),
                    min: last / spread.max(1.0),
                    mean: last * spread,
                    max: last * spread.max(1.0) * 1.2,
                    last,
                };
            }
            let mut adjustments = RuleAdjustments::default();
            for scenario in adjustments.rate_multiplier.iter_mut() {
                for driver in scenario.iter_mut() {
                    for m in driver.iter_mut() {
                        *m = match rng.random_range(0..30) {
                            0 => -40.0,
                            1 => 0.0,
                            2 => 1e-17,
                            _ => rng.random_range(-2.0..3.0),
                        };
                    }
                }
            }
            for scenario in adjustments.cap_offset.iter_mut() {
                for driver in scenario.iter_mut() {
                    for o in driver.iter_mut() {
                        *o = if rng.random_range(0..10) == 0 { 0.0 } else { rng.random_range(-30.0..30.0) };
                    }
                }
            }
            let coefficients: [f64; N_PREDICTORS] = std::array::from_fn(|_| match rng.random_range(0..10) {
                0 => 0.0,
                1 => 40.0,
                _ => rng.random_range(-2.0..2.0),
            });
            let mut config = config.clone();
            let base_year = 2020;
            config.milestone = [2010, 2020, 2021, 2030, 2059, 2060, 2070][case % 7];
            config.horizon = if case % 11 == 0 { 2020 } else { 2060 };
            let ce_base = if case % 13 == 0 { 0.0 } else { rng.random_range(-5.0..500.0) };
            let unit = UnitBase { unit_id: "U", stats: &stats, ce_base, cs_horizon: rng.random_range(0.0..100.0) };
            let n = (config.horizon - base_year).max(0) as usize + 1;
            for scenario in Scenario::ALL {
                let (mut by_years, mut by_segments) = (vec![f64::NAN; n], vec![f64::NAN; n]);
                let a = project(&unit, scenario, &config, &adjustments, &coefficients, base_year, &mut by_years, false);
                let b =
                    project(&unit, scenario, &config, &adjustments, &coefficients, base_year, &mut by_segments, true);
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "case {case} {scenario:?}");
                if a.is_ok() {
                    taken += 1;
                    assert_eq!(format!("{by_years:?}"), format!("{by_segments:?}"), "case {case} {scenario:?}");
                }
            }
        }
        // Most cases project, most of them by segments; the rest fail the
        // same way both ways.
        let by_segments = SEGMENTS_TAKEN.with(|n| n.get());
        assert!(taken > 20_000 && by_segments > taken / 2, "{taken} projections, {by_segments} by segments");
    }

    #[test]
    fn rules_resolved_for_every_unit_at_once_are_those_of_each_unit() {
        use crate::model::config::Cap;
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        // Bits, every NaN alike: which NaN an operation on two gives is
        // the compiler's choice (the order of a commutative operation's
        // operands). No output can tell them apart: a NaN rate fails the
        // projection whatever its sign, and a cap is only ever compared (a
        // NaN one never binds).
        let exact = |v: f64| if v.is_nan() { f64::NAN.to_bits() } else { v.to_bits() };
        let bits = |r: &ResolvedRules| r.map(|periods| periods.map(|r| (exact(r.rate), r.cap.map(exact))));
        let mut out = Vec::new();
        let mut rules = Config::default().scenarios.low;
        for case in 0..2_000 {
            let value = |rng: &mut rand_chacha::ChaCha8Rng| match rng.random_range(0..12) {
                0 => f64::NAN,
                1 => -0.0,
                2 => f64::INFINITY,
                _ => rng.random_range(-3.0..3.0),
            };
            for driver in Driver::ALL {
                for period in Period::ALL {
                    let rule = match (driver, period) {
                        (Driver::P, Period::First) => &mut rules.P.first,
                        (Driver::P, Period::Second) => &mut rules.P.second,
                        (Driver::W, Period::First) => &mut rules.W.first,
                        (Driver::W, Period::Second) => &mut rules.W.second,
                        (Driver::IS, Period::First) => &mut rules.IS.first,
                        (Driver::IS, Period::Second) => &mut rules.IS.second,
                        (Driver::TI, Period::First) => &mut rules.TI.first,
                        (Driver::TI, Period::Second) => &mut rules.TI.second,
                        (Driver::UR, Period::First) => &mut rules.UR.first,
                        (Driver::UR, Period::Second) => &mut rules.UR.second,
                        (Driver::CEI, Period::First) => &mut rules.CEI.first,
                        (Driver::CEI, Period::Second) => &mut rules.CEI.second,
                    };
                    rule.rate = [RateStat::Delta, RateStat::MinDelta, RateStat::MaxDelta][rng.random_range(0..3)];
                    rule.sign = [Sign::Keep, Sign::Positive, Sign::Negative][rng.random_range(0..3)];
                    rule.factor = value(&mut rng);
                    rule.offset = value(&mut rng);
                    let levels = [Some(Level::Min), Some(Level::Mean), Some(Level::Max), None];
                    rule.cap = match rng.random_range(0..6) {
                        0 | 1 => None,
                        2 => Some(Cap { level: None, value: Some(value(&mut rng)), offset: value(&mut rng) }),
                        3 => Some(Cap { level: None, value: None, offset: value(&mut rng) }),
                        _ => Some(Cap { level: levels[rng.random_range(0..3)], value: None, offset: value(&mut rng) }),
                    };
                }
            }
            let mut adjustments = RuleAdjustments::default();
            for s in 0..3 {
                for d in 0..N_PREDICTORS {
                    for p in 0..2 {
                        adjustments.rate_multiplier[s][d][p] = value(&mut rng);
                        adjustments.cap_offset[s][d][p] = value(&mut rng);
                    }
                }
            }
            let n_units = case % 9;
            let stats: Vec<[DriverStats; N_PREDICTORS]> = (0..n_units)
                .map(|_| {
                    std::array::from_fn(|_| DriverStats {
                        delta: value(&mut rng),
                        min_delta: value(&mut rng),
                        max_delta: value(&mut rng),
                        min: value(&mut rng),
                        mean: value(&mut rng),
                        max: value(&mut rng),
                        last: value(&mut rng),
                    })
                })
                .collect();
            let scenario = Scenario::ALL[case % 3];
            resolve_units(&rules, &stats, &adjustments, scenario, &mut out);
            assert_eq!(out.len(), n_units);
            for (u, unit) in stats.iter().enumerate() {
                assert_eq!(
                    bits(&out[u]),
                    bits(&resolve_unit(&rules, unit, &adjustments, scenario)),
                    "case {case}, unit {u}"
                );
            }
        }
    }

    #[test]
    fn the_peak_is_the_first_largest_value_and_none_at_the_horizon() {
        assert_eq!(peak_year(&[1.0, 3.0, 3.0, 2.0], 2020, 2023), Some(2021));
        assert_eq!(peak_year(&[1.0, 2.0, 3.0], 2020, 2022), None);
        assert_eq!(peak_year(&[3.0, 3.0, 3.0], 2020, 2022), Some(2020));
        assert_eq!(peak_year(&[], 2020, 2022), None);
    }

    #[test]
    fn cep_rules_in_order() {
        let m = 2030;
        assert_eq!(carbon_emission_potential([Some(2020), Some(2025), Some(2030)], true, m), 5);
        assert_eq!(carbon_emission_potential([Some(2020), Some(2025), Some(2030)], false, m), 4);
        assert_eq!(carbon_emission_potential([Some(2020), Some(2025), None], true, m), 3);
        assert_eq!(carbon_emission_potential([Some(2020), Some(2040), None], true, m), 2);
        assert_eq!(carbon_emission_potential([None, Some(2040), None], true, m), 2);
        assert_eq!(carbon_emission_potential([Some(2031), None, None], true, m), 1);
    }
}
