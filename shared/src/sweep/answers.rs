//! Statistics that answer a policy team's questions from an [`Aggregate`]:
//! how sure each probability is (Wilson score intervals), whether a sweep
//! is big enough (the largest interval half-width over all zone
//! probabilities), how robust each unit's zone is ([`Robustness`]), when a
//! unit or the region peaks ([`PeakAnswer`]), the regional CE fan
//! ([`FanYear`]) and how many units each zone holds ([`ZoneSize`]).
//!
//! Rules, chosen once for every answer:
//! - Ties between zones go to the lowest zone number (the modal zone and the
//!   runner-up alike); counts are compared, never rounded probabilities.
//! - The q-quantile of a distribution of counts over ordered bins is the
//!   first bin at which at least ⌈q·n⌉ of the n samples (at least one) lie
//!   at or below it, computed in integers. For peak years the bin "not
//!   peaked by the horizon" comes after every year.
//! - With no successful sample a probability is NaN (null in JSON), its
//!   interval (0, 1), a quantile `None`, and no unit is robust.

use serde::Serialize;

use crate::model::config::Scenario;
use crate::numerics::math;
use crate::sweep::aggregate::Aggregate;

/// The default robustness threshold: a unit is robust when the lower 95 %
/// Wilson bound of its modal-zone probability is at least this.
pub const DEFAULT_ROBUST_THRESHOLD: f64 = 0.8;

/// The quantiles the answers report, in percent.
pub const QUANTILE_PERCENTS: [u32; 5] = [5, 25, 50, 75, 95];

/// The standard normal quantile of 0.975: the z of a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of a binomial proportion at `z`: `successes`
/// of `n` trials. Unlike the normal-approximation interval it stays inside
/// [0, 1] and is not degenerate at 0 or n successes. (0, 1) when n = 0.
pub fn wilson(successes: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = successes.min(n) as f64 / n_f;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = z / (1.0 + z2 / n_f) * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    // At 0 and n successes the bound is exactly 0 or 1 (rounding would leave
    // 1e-18 or 1 − 2e-16).
    let low = if successes == 0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if successes >= n { 1.0 } else { (centre + half).min(1.0) };
    (low, high)
}

/// Half the width of the 95 % Wilson interval of `successes` of `n`.
pub fn wilson_half_width(successes: u64, n: u64) -> f64 {
    let (low, high) = wilson(successes, n, Z95);
    (high - low) / 2.0
}

impl Aggregate {
    /// The largest 95 % Wilson half-width over every unit's every zone
    /// probability: how far any zone probability of the sweep may still be
    /// from its limit. 0.5 before any sample succeeded.
    pub fn largest_zone_half_width(&self) -> f64 {
        let n = self.samples_ok;
        if n == 0 {
            return 0.5;
        }
        // The half-width grows as the count nears n/2, so only each row's
        // count closest to n/2 matters.
        self.zone_counts
            .rows()
            .flat_map(|row| row.iter().copied())
            .map(|count| wilson_half_width(count, n))
            .fold(0.0, f64::max)
    }

    /// How robust unit `unit`'s zone is, with `nominal_zone` its zone in the
    /// nominal run (if known) and `threshold` the lower Wilson bound of the
    /// modal probability that makes it robust (in [0, 1]).
    pub fn robustness(&self, unit: usize, nominal_zone: Option<u8>, threshold: f64) -> Robustness {
        let counts = self.zone_counts.row(unit);
        let n = self.samples_ok;
        let zones: Vec<Proportion> = counts.iter().map(|&c| Proportion::of(c, n)).collect();
        // The first largest count: the lowest zone number on ties.
        let modal = first_largest(counts.iter().copied().enumerate()).unwrap_or(0);
        let runner_up = first_largest(counts.iter().copied().enumerate().filter(|&(z, c)| z != modal && c > 0));
        let entropy = if n == 0 {
            f64::NAN
        } else if counts.len() < 2 {
            0.0
        } else {
            let h: f64 = counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / n as f64;
                    -p * math::ln(p)
                })
                .sum();
            // A single zone gives −1·ln 1 = −0: reported as 0.
            if h > 0.0 { h / math::ln(counts.len() as f64) } else { 0.0 }
        };
        let modal_share = zones[modal];
        Robustness {
            nominal_zone,
            modal_zone: modal + 1,
            modal: modal_share,
            runner_up_zone: runner_up.map(|z| z + 1),
            runner_up: runner_up.map(|z| zones[z]),
            entropy,
            robust: n > 0 && modal_share.low >= threshold,
            zones,
        }
    }

    /// When unit `unit` peaks under `scenario`, and whether it is neutral by
    /// the horizon.
    pub fn unit_peaking(&self, scenario: Scenario, unit: usize) -> UnitPeaking {
        UnitPeaking {
            peak: PeakAnswer::of(self.peak_histogram(scenario, unit), self),
            neutral: Proportion::of(self.neutral_count(scenario, unit), self.samples_ok),
        }
    }

    /// When the region's total CE peaks under `scenario`.
    pub fn regional_peaking(&self, scenario: Scenario) -> PeakAnswer {
        PeakAnswer::of(self.regional_peak_counts.row(scenario as usize), self)
    }

    /// The regional total CE's 5/25/50/75/95 % quantiles per projected year
    /// under `scenario` (within half a log bin, 0.5 %).
    pub fn regional_fan(&self, scenario: Scenario) -> Vec<FanYear> {
        let years = self.shape.n_projected_years();
        self.regional_ce[scenario as usize * years..(scenario as usize + 1) * years]
            .iter()
            .enumerate()
            .map(|(t, h)| {
                let [p05, p25, median, p75, p95] = QUANTILE_PERCENTS.map(|q| h.quantile(f64::from(q) / 100.0));
                FanYear { year: self.shape.base_year + t as i32, p05, p25, median, p75, p95 }
            })
            .collect()
    }

    /// How many units each zone holds over the samples, zone 1 first.
    pub fn zone_sizes(&self) -> Vec<ZoneSize> {
        self.zone_size_counts
            .rows()
            .enumerate()
            .map(|(z, row)| {
                let n = self.samples_ok;
                let units: u128 = row.iter().enumerate().map(|(k, &c)| k as u128 * u128::from(c)).sum();
                ZoneSize {
                    zone: z + 1,
                    p05: count_quantile(row, 5),
                    median: count_quantile(row, 50),
                    p95: count_quantile(row, 95),
                    expected: if n == 0 { f64::NAN } else { units as f64 / n as f64 },
                }
            })
            .collect()
    }
}

/// The index of the first largest count of `(index, count)` pairs.
fn first_largest(counts: impl Iterator<Item = (usize, u64)>) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, c) in counts {
        if best.is_none_or(|(_, b)| c > b) {
            best = Some((i, c));
        }
    }
    best.map(|(i, _)| i)
}

/// The `percent` % quantile of counts over ordered bins: the index of the
/// first bin at which at least ⌈percent·n/100⌉ (at least one) of the n
/// counted samples lie at or below it; `None` when nothing is counted.
pub fn count_quantile(counts: &[u64], percent: u32) -> Option<usize> {
    let n: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if n == 0 {
        return None;
    }
    let rank = (u128::from(percent.min(100)) * n).div_ceil(100).max(1);
    let mut seen = 0u128;
    counts.iter().position(|&c| {
        seen += u128::from(c);
        seen >= rank
    })
}

/// Whether `value` can be a robustness threshold: a probability in [0, 1].
pub fn check_robust_threshold(value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("the robustness threshold {value} is not a probability from 0 to 1"))
    }
}

/// A proportion of the successful samples with its 95 % Wilson interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Proportion {
    /// Samples in which it held.
    pub count: u64,
    /// Successful samples.
    pub samples: u64,
    /// count / samples; NaN (JSON null) without samples.
    pub p: f64,
    /// The 95 % Wilson interval.
    pub low: f64,
    pub high: f64,
}

impl Proportion {
    pub fn of(count: u64, samples: u64) -> Proportion {
        let (low, high) = wilson(count, samples, Z95);
        let p = if samples == 0 { f64::NAN } else { count as f64 / samples as f64 };
        Proportion { count, samples, p, low, high }
    }
}

/// How sure a unit's zone is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Robustness {
    /// The zone of the deterministic nominal run, when known.
    pub nominal_zone: Option<u8>,
    /// The most probable zone (the lowest number on ties).
    pub modal_zone: usize,
    pub modal: Proportion,
    /// The most probable other zone that occurred in any sample (the lowest
    /// number on ties); `None` when the unit was always in its modal zone.
    pub runner_up_zone: Option<usize>,
    pub runner_up: Option<Proportion>,
    /// Shannon entropy of the zone distribution over ln(number of zones):
    /// 0 when always one zone, 1 when every zone is equally likely.
    pub entropy: f64,
    /// The lower Wilson bound of the modal probability is at least the threshold.
    pub robust: bool,
    /// Every zone's probability, zone 1 first.
    pub zones: Vec<Proportion>,
}

/// The peak-year quantiles; `None`: not peaked by the horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PeakQuantiles {
    pub p05: Option<i32>,
    pub p25: Option<i32>,
    pub median: Option<i32>,
    pub p75: Option<i32>,
    pub p95: Option<i32>,
}

/// When a CE series (a unit's or the region's) peaks, over the samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PeakAnswer {
    /// Peak year ≤ the milestone.
    pub by_milestone: Proportion,
    /// T₀ < peak year ≤ the milestone: CE rises after the base year, then falls.
    pub rising_first: Proportion,
    /// Not peaked by the horizon (the largest CE is the horizon's).
    pub not_by_horizon: Proportion,
    /// `None` without samples.
    pub quantiles: Option<PeakQuantiles>,
}

impl PeakAnswer {
    /// From peak-year counts T₀…horizon−1, then "not peaked".
    fn of(counts: &[u64], a: &Aggregate) -> PeakAnswer {
        let n = a.samples_ok;
        let base = a.shape.base_year;
        let last = counts.len().saturating_sub(1);
        let years = |keep: &dyn Fn(i32) -> bool| -> u64 {
            counts[..last].iter().enumerate().filter(|(i, _)| keep(base + *i as i32)).map(|(_, c)| c).sum()
        };
        let milestone = a.shape.milestone;
        let year = |percent: u32| count_quantile(counts, percent).and_then(|i| (i < last).then(|| base + i as i32));
        let quantiles = (counts.iter().any(|&c| c > 0)).then(|| PeakQuantiles {
            p05: year(5),
            p25: year(25),
            median: year(50),
            p75: year(75),
            p95: year(95),
        });
        PeakAnswer {
            by_milestone: Proportion::of(years(&|y| y <= milestone), n),
            rising_first: Proportion::of(years(&|y| y > base && y <= milestone), n),
            not_by_horizon: Proportion::of(counts.get(last).copied().unwrap_or(0), n),
            quantiles,
        }
    }
}

/// A unit's peaking and neutrality under one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct UnitPeaking {
    #[serde(flatten)]
    pub peak: PeakAnswer,
    /// Neutral by the horizon (horizon CE ≤ CS).
    pub neutral: Proportion,
}

/// The regional total CE's quantiles in one year, in t (`None` without samples).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FanYear {
    pub year: i32,
    pub p05: Option<f64>,
    pub p25: Option<f64>,
    pub median: Option<f64>,
    pub p75: Option<f64>,
    pub p95: Option<f64>,
}

/// How many units one zone holds over the samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ZoneSize {
    pub zone: usize,
    /// 5 %, 50 % and 95 % quantiles of the number of units (`None` without samples).
    pub p05: Option<usize>,
    pub median: Option<usize>,
    pub p95: Option<usize>,
    /// The mean number of units (NaN without samples).
    pub expected: f64,
}

#[cfg(test)]
// Tests compare with the platform's functions and state expectations in them.
#[allow(clippy::disallowed_methods, clippy::disallowed_types)]
mod tests {
    use super::*;
    use crate::model::config::Config;
    use crate::sweep::SweepSpec;
    use crate::sweep::aggregate::Outcome;
    use crate::sweep::runner::SweepRunner;

    const SAMPLES: u64 = 80;

    /// A small demonstration sweep: its successful outcomes, one by one, and
    /// its aggregate.
    fn demo_sweep(units: usize, seed: u64) -> (Vec<Outcome>, Aggregate) {
        let dataset = crate::data::demo::generate(units, seed).unwrap();
        let config = Config::default();
        let spec = SweepSpec { samples: SAMPLES, ..SweepSpec::default() };
        let runner = SweepRunner::new(&dataset, &config, &spec).unwrap();
        let outcomes: Vec<Outcome> = (0..SAMPLES).filter_map(|k| runner.sample(k).ok()).collect();
        let aggregate = runner.run_range(0..SAMPLES);
        assert_eq!(aggregate.samples_ok, outcomes.len() as u64);
        assert!(outcomes.len() > 40, "most demo samples succeed");
        (outcomes, aggregate)
    }

    /// The q-quantile of a sorted list: the value at rank ⌈q·n⌉ (at least 1).
    fn quantile_of<T: Copy>(sorted: &[T], percent: usize) -> T {
        let rank = (percent * sorted.len()).div_ceil(100).max(1);
        sorted[rank - 1]
    }

    /// A peak year from a series the plain way: the first index of its maximum.
    fn peak_of(series: &[f64], base: i32, horizon: i32) -> Option<i32> {
        let max = series.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let index = series.iter().position(|&v| v == max).unwrap();
        let year = base + index as i32;
        (year != horizon).then_some(year)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn zone_robustness_equals_what_the_samples_say() {
        let (outcomes, a) = demo_sweep(8, 5);
        let n = outcomes.len() as u64;
        let n_zones = a.shape.n_zones;
        let mut uncertain = 0;
        for u in 0..a.shape.n_units {
            let mut counts = vec![0u64; n_zones];
            for o in &outcomes {
                counts[usize::from(o.units[u].zone) - 1] += 1;
            }
            let max = *counts.iter().max().unwrap();
            let modal = counts.iter().position(|&c| c == max).unwrap();
            let others: Vec<(usize, u64)> =
                counts.iter().copied().enumerate().filter(|&(z, c)| z != modal && c > 0).collect();
            let runner_up = others.iter().map(|&(_, c)| c).max().and_then(|m| others.iter().find(|x| x.1 == m));
            let entropy =
                -counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / n as f64).map(|p| p * math::ln(p)).sum::<f64>()
                    / math::ln(n_zones as f64);
            let r = a.robustness(u, Some(3), 0.8);
            assert_eq!((r.modal_zone, r.modal.count, r.modal.samples), (modal + 1, max, n), "unit {u}");
            assert!(close(r.modal.p, max as f64 / n as f64));
            assert_eq!((r.modal.low, r.modal.high), wilson(max, n, Z95));
            assert_eq!(r.runner_up_zone, runner_up.map(|x| x.0 + 1));
            assert_eq!(r.runner_up.map(|p| p.count), runner_up.map(|x| x.1));
            assert!(close(r.entropy, entropy), "unit {u}: {} vs {entropy}", r.entropy);
            assert!(r.entropy.is_sign_positive() && r.entropy <= 1.0);
            assert_eq!(r.robust, wilson(max, n, Z95).0 >= 0.8);
            assert_eq!(r.nominal_zone, Some(3));
            for (z, share) in r.zones.iter().enumerate() {
                assert_eq!((share.count, (share.low, share.high)), (counts[z], wilson(counts[z], n, Z95)));
            }
            uncertain += usize::from(runner_up.is_some());
            // A threshold of 0 makes every unit robust, one above the bound none.
            assert!(a.robustness(u, None, 0.0).robust);
            assert!(!a.robustness(u, None, r.modal.low + 1e-9).robust);
        }
        assert!(uncertain > 0, "the demo sweep has units whose zone varies");
    }

    #[test]
    fn peaking_and_neutrality_equal_what_the_samples_say() {
        let (outcomes, a) = demo_sweep(6, 2);
        let n = outcomes.len() as u64;
        let (base, milestone) = (a.shape.base_year, a.shape.milestone);
        for scenario in Scenario::ALL {
            let s = scenario as usize;
            for u in 0..a.shape.n_units {
                let years: Vec<Option<i32>> = outcomes.iter().map(|o| o.units[u].scenarios[s].peak_year).collect();
                let count = |f: &dyn Fn(Option<i32>) -> bool| years.iter().filter(|y| f(**y)).count() as u64;
                let answer = a.unit_peaking(scenario, u);
                assert_eq!(answer.peak.by_milestone, Proportion::of(count(&|y| y.is_some_and(|y| y <= milestone)), n));
                assert_eq!(
                    answer.peak.rising_first,
                    Proportion::of(count(&|y| y.is_some_and(|y| y > base && y <= milestone)), n)
                );
                assert_eq!(answer.peak.not_by_horizon, Proportion::of(count(&|y| y.is_none()), n));
                let neutral = outcomes.iter().filter(|o| o.units[u].scenarios[s].neutral).count() as u64;
                assert_eq!(answer.neutral, Proportion::of(neutral, n));
                let mut sorted = years.clone();
                sorted.sort_by_key(|y| y.unwrap_or(i32::MAX));
                let q = answer.peak.quantiles.unwrap();
                assert_eq!(
                    [q.p05, q.p25, q.median, q.p75, q.p95],
                    [5, 25, 50, 75, 95].map(|p| quantile_of(&sorted, p)),
                    "{scenario:?} unit {u}"
                );
            }
        }
    }

    #[test]
    fn regional_answers_equal_what_the_samples_say() {
        let (outcomes, a) = demo_sweep(7, 4);
        let n = outcomes.len() as u64;
        let shape = a.shape;
        let mut peak_years_seen = std::collections::BTreeSet::new();
        for scenario in Scenario::ALL {
            let s = scenario as usize;
            let years: Vec<Option<i32>> =
                outcomes.iter().map(|o| peak_of(&o.regional_ce[s], shape.base_year, shape.horizon)).collect();
            peak_years_seen.extend(years.iter().copied());
            let count = |f: &dyn Fn(Option<i32>) -> bool| years.iter().filter(|y| f(**y)).count() as u64;
            let answer = a.regional_peaking(scenario);
            assert_eq!(answer.by_milestone, Proportion::of(count(&|y| y.is_some_and(|y| y <= shape.milestone)), n));
            assert_eq!(answer.not_by_horizon, Proportion::of(count(&|y| y.is_none()), n));
            let mut sorted = years.clone();
            sorted.sort_by_key(|y| y.unwrap_or(i32::MAX));
            let q = answer.quantiles.unwrap();
            assert_eq!([q.p05, q.p25, q.median, q.p75, q.p95], [5, 25, 50, 75, 95].map(|p| quantile_of(&sorted, p)));
            // The fan: within half a log bin of the sorted values' quantiles.
            let fan = a.regional_fan(scenario);
            assert_eq!(fan.len(), shape.n_projected_years());
            for (t, year) in fan.iter().enumerate() {
                assert_eq!(year.year, shape.base_year + t as i32);
                let mut values: Vec<f64> = outcomes.iter().map(|o| o.regional_ce[s][t]).collect();
                values.sort_by(f64::total_cmp);
                for (got, p) in
                    [year.p05, year.p25, year.median, year.p75, year.p95].into_iter().zip([5, 25, 50, 75, 95])
                {
                    let exact = quantile_of(&values, p);
                    let got = got.unwrap();
                    assert!((got - exact).abs() / exact < 0.0051, "{scenario:?} {}: {got} vs {exact}", year.year);
                }
            }
        }
        assert!(peak_years_seen.len() > 1, "the regional peak varies over the samples: {peak_years_seen:?}");
        // Zone sizes: per sample, the units in each zone.
        let sizes = a.zone_sizes();
        assert_eq!(sizes.len(), shape.n_zones);
        for (z, size) in sizes.iter().enumerate() {
            let mut counts: Vec<usize> = outcomes
                .iter()
                .map(|o| o.units.iter().filter(|unit| usize::from(unit.zone) == z + 1).count())
                .collect();
            let mean = counts.iter().sum::<usize>() as f64 / n as f64;
            counts.sort_unstable();
            assert_eq!(size.zone, z + 1);
            assert_eq!(
                [size.p05, size.median, size.p95],
                [5, 50, 95].map(|p| Some(quantile_of(&counts, p))),
                "zone {}",
                z + 1
            );
            assert!(close(size.expected, mean));
            // The expected size is the sum of the units' zone probabilities.
            let by_units: f64 = (0..shape.n_units).map(|u| a.zone_probability(u, z + 1)).sum();
            assert!((size.expected - by_units).abs() < 1e-9);
        }
    }

    #[test]
    fn answers_without_samples_are_empty_not_wrong() {
        let shape = crate::sweep::aggregate::Shape::new(2, 2020, &Config::default());
        let a = Aggregate::empty(shape);
        let r = a.robustness(0, None, 0.0);
        assert!(!r.robust && r.modal.p.is_nan() && r.entropy.is_nan() && r.runner_up.is_none());
        assert_eq!((r.modal.low, r.modal.high), (0.0, 1.0));
        assert_eq!(a.unit_peaking(Scenario::Low, 1).peak.quantiles, None);
        assert_eq!(a.regional_peaking(Scenario::High).quantiles, None);
        assert!(a.regional_fan(Scenario::Baseline).iter().all(|y| y.median.is_none()));
        assert!(a.zone_sizes().iter().all(|z| z.median.is_none() && z.expected.is_nan()));
    }

    #[test]
    fn count_quantiles_use_integer_ranks_and_ties_go_to_the_lowest_zone() {
        // 100 samples: bins of 5, 20, 25, 50: ranks 5, 25, 50, 75, 95.
        let counts = [5, 20, 25, 50];
        assert_eq!(QUANTILE_PERCENTS.map(|p| count_quantile(&counts, p)), [0, 1, 2, 3, 3].map(Some));
        assert_eq!(count_quantile(&[0, 1], 0), Some(1));
        assert_eq!(count_quantile(&[0, 0], 50), None);
        // 3 samples: the median is rank 2.
        assert_eq!(count_quantile(&[1, 1, 1], 50), Some(1));
        let shape = crate::sweep::aggregate::Shape::new(1, 2020, &Config::default());
        let mut a = Aggregate::empty(shape);
        a.samples_ok = 4;
        a.zone_counts.row_mut(0).copy_from_slice(&[0, 2, 0, 2, 0]);
        let r = a.robustness(0, None, 0.8);
        assert_eq!((r.modal_zone, r.runner_up_zone), (2, Some(4)));
        assert!(close(r.entropy, 2f64.ln() / 5f64.ln()));
        a.zone_counts.row_mut(0).copy_from_slice(&[0, 0, 4, 0, 0]);
        let r = a.robustness(0, None, 0.8);
        assert_eq!((r.modal_zone, r.runner_up_zone, r.entropy), (3, None, 0.0));
        assert_eq!(check_robust_threshold(0.9), Ok(0.9));
        assert!(check_robust_threshold(1.5).unwrap_err().contains("1.5"));
        assert!(check_robust_threshold(f64::NAN).is_err());
    }

    /// The closed form at points worked by hand, and two points of SciPy's
    /// `binomtest(x, n).proportion_ci(method="wilson")`.
    #[test]
    fn wilson_matches_the_closed_form_at_known_points() {
        let close = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12;
        // p = 0.5, n = 100: centre 0.5, half z·sqrt(0.0025 + z²/40000)/(1 + z²/100).
        let z = Z95;
        let half = z * (0.0025f64 + z * z / 40_000.0).sqrt() / (1.0 + z * z / 100.0);
        assert!(close(wilson(50, 100, z), (0.5 - half, 0.5 + half)));
        // 0 of n: the lower bound is 0 and the upper z²/(n + z²).
        assert!(close(wilson(0, 20, z), (0.0, z * z / (20.0 + z * z))));
        assert!(close(wilson(20, 20, z), (20.0 / (20.0 + z * z), 1.0)));
        assert!(close(wilson(81, 263, z), (0.2552885198782742, 0.36620957698280004)));
        assert!(close(wilson(7, 40, z), (0.08745413746035918, 0.3194999033178771)));
        assert_eq!(wilson(0, 0, z), (0.0, 1.0));
        assert_eq!((wilson(0, 300, z).0, wilson(300, 300, z).1), (0.0, 1.0));
    }

    #[test]
    fn half_widths_shrink_with_samples_and_peak_at_one_half() {
        assert!(wilson_half_width(500, 1000) > wilson_half_width(100, 1000));
        assert!(wilson_half_width(50, 100) > wilson_half_width(500, 1000));
        // ±0.01 at p = 0.5 needs about 9,600 samples.
        assert!(wilson_half_width(4_800, 9_600) < 0.0101 && wilson_half_width(4_700, 9_400) > 0.01);
    }
}
