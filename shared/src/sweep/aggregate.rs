//! What a sample yields ([`Outcome`], docs/model.md section 8) and the mergeable
//! [`Aggregate`] of many samples: integer counts and fixed-bin histograms
//! whose merge is exact, associative and commutative, so the same samples
//! give bit-identical aggregates in any split and order. Its size depends on
//! the number of units and bins, never on the number of samples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::dataset::MAX_UNITS;
use crate::model::chain::{ChainResult, Parameters};
use crate::model::config::{Config, MAX_ZONES, Scenario, projection_years_problem};
use crate::model::projection::peak_year;
use crate::model::zoning::{ScoreKey, Scores};
use crate::numerics::ridge::N_PREDICTORS;
use crate::sweep::count_table::CountTable;
use crate::sweep::histogram::{LinearHistogram, LogHistogram};
use crate::sweep::sensitivity::SensitivitySums;

/// One scenario's results for one unit in one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScenarioOutcome {
    /// `None`: not peaked by the horizon.
    pub peak_year: Option<i32>,
    pub peaked_by_milestone: bool,
    pub neutral: bool,
    /// CE in the milestone year (2030); `None` when the data end after it.
    pub ce_milestone: Option<f64>,
    /// CE in the horizon year (2060).
    pub ce_horizon: f64,
}

/// One unit's results in one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitOutcome {
    pub zone: u8,
    pub total: u32,
    pub scores: Scores,
    pub cep: u8,
    pub scenarios: [ScenarioOutcome; 3],
}

/// Everything one sample yields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub units: Vec<UnitOutcome>,
    /// Total CE of all units per projected year T₀…horizon, per scenario.
    pub regional_ce: [Vec<f64>; 3],
    pub coefficients: [f64; N_PREDICTORS],
    pub r2: f64,
    pub k: f64,
}

impl Outcome {
    pub fn new(result: &ChainResult, config: &Config, parameters: &Parameters) -> Outcome {
        let milestone = config.scenarios.milestone;
        // In i64: a milestone far before the base year is allowed, and has no CE.
        let milestone_index = usize::try_from(i64::from(milestone) - i64::from(result.base_year)).ok();
        let units = (0..result.total.len())
            .map(|u| UnitOutcome {
                zone: result.zone[u],
                total: result.total[u],
                scores: result.scores[u],
                cep: result.cep[u],
                scenarios: std::array::from_fn(|s| {
                    let p = &result.projections[s][u];
                    ScenarioOutcome {
                        peak_year: p.peak_year,
                        peaked_by_milestone: p.peak_year.is_some_and(|y| y <= milestone),
                        neutral: p.neutral,
                        ce_milestone: milestone_index.and_then(|i| p.ce.get(i).copied()),
                        ce_horizon: *p.ce.last().expect("projections hold the base year"),
                    }
                }),
            })
            .collect();
        let regional_ce = std::array::from_fn(|s| {
            let projections = &result.projections[s];
            let n = projections.first().map_or(0, |p| p.ce.len());
            (0..n).map(|t| projections.iter().map(|p| p.ce[t]).sum()).collect()
        });
        Outcome {
            units,
            regional_ce,
            coefficients: result.stirpat.fit.coefficients,
            r2: result.stirpat.r2,
            k: parameters.k,
        }
    }
}

/// The dimensions every aggregate of one sweep shares; merging checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub n_units: usize,
    pub n_zones: usize,
    pub base_year: i32,
    pub milestone: i32,
    pub horizon: i32,
}

impl Shape {
    pub fn new(n_units: usize, base_year: i32, config: &Config) -> Shape {
        Shape {
            n_units,
            n_zones: config.zoning.zones,
            base_year,
            milestone: config.scenarios.milestone,
            horizon: config.scenarios.horizon,
        }
    }

    /// Projected years T₀…horizon.
    pub fn n_projected_years(&self) -> usize {
        (i64::from(self.horizon) - i64::from(self.base_year)).max(0) as usize + 1
    }

    /// Whether an aggregate of this shape can exist: 1–[`MAX_UNITS`] units,
    /// 1–[`MAX_ZONES`] zones and projection years that a configuration run on
    /// a dataset may have ([`projection_years_problem`]), so every sweep
    /// that was accepted has a shape that passes. What is wrong otherwise.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_UNITS).contains(&self.n_units) || !(1..=MAX_ZONES).contains(&self.n_zones) {
            return Err(format!(
                "implausible shape: {} units and {} zones (1–{MAX_UNITS} units and 1–{MAX_ZONES} zones are allowed)",
                self.n_units, self.n_zones
            ));
        }
        match projection_years_problem(self.base_year, self.milestone, self.horizon) {
            None => Ok(()),
            Some(problem) => Err(format!(
                "implausible projection years (base year {}, milestone {}, horizon {}): {problem}",
                self.base_year, self.milestone, self.horizon
            )),
        }
    }

    /// Peak-year bins: T₀…horizon−1, then "not peaked by the horizon".
    pub fn n_peak_bins(&self) -> usize {
        self.n_projected_years()
    }
}

/// The smallest and largest total score: ten scores of 1–5.
pub const MIN_TOTAL: u32 = 10;
pub const MAX_TOTAL: u32 = 50;
const N_TOTALS: usize = (MAX_TOTAL - MIN_TOTAL + 1) as usize;
const N_SCORES: usize = ScoreKey::ALL.len();
/// The per-unit count tables ([`Aggregate::unit_tables_mut`]).
pub(crate) const UNIT_TABLES: usize = 6;
/// How many failed sample indices are kept per reason (the smallest ones).
pub const KEPT_FAILED_SAMPLES: usize = 16;
/// Bin widths of the regression histograms.
pub const COEFFICIENT_BIN_WIDTH: f64 = 1e-3;
pub const R2_BIN_WIDTH: f64 = 1e-4;
pub const K_BIN_WIDTH: f64 = 1e-4;

/// Failed samples of one kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureKind {
    pub count: u64,
    /// The smallest failed sample indices, at most [`KEPT_FAILED_SAMPLES`].
    pub samples: Vec<u64>,
    /// The full message of the smallest failed sample.
    pub example: String,
}

/// The mergeable aggregate of any set of samples of one sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aggregate {
    pub shape: Shape,
    /// Samples whose chain succeeded; they are in every count below.
    pub samples_ok: u64,
    /// Failed samples by kind of failure; in no count below.
    pub failures: BTreeMap<String, FailureKind>,
    /// A row per unit: `[zone − 1]`.
    pub zone_counts: CountTable,
    /// A row per unit: `[total − 10]`.
    pub total_counts: CountTable,
    /// A row per unit and score key ([`Aggregate::score_row`]): `[score − 1]`.
    pub score_counts: CountTable,
    /// A row per unit: `[cep − 1]`.
    pub cep_counts: CountTable,
    /// A row per scenario and unit ([`Aggregate::peak_histogram`]):
    /// `[peak bin]`, the last bin "not peaked".
    pub peak_counts: CountTable,
    /// A row per scenario: `[unit]`, samples neutral by the horizon.
    pub neutral_counts: CountTable,
    /// `[scenario][unit]`: CE in the milestone year.
    pub ce_milestone: Vec<LogHistogram>,
    /// `[scenario][unit]`: CE in the horizon year.
    pub ce_horizon: Vec<LogHistogram>,
    /// `[scenario][projected year]`: regional total CE.
    pub regional_ce: Vec<LogHistogram>,
    /// A row per scenario: `[peak bin]` of the regional total CE (the unit
    /// peak rule applied to the sum over units), the last bin "not peaked".
    pub regional_peak_counts: CountTable,
    /// A row per zone: `[k]`, the samples in which exactly k units (0…n_units)
    /// were in that zone.
    pub zone_size_counts: CountTable,
    /// Per STIRPAT coefficient (P, W, IS, TI, UR, CEI).
    pub coefficients: Vec<LinearHistogram>,
    pub r2: LinearHistogram,
    pub k: LinearHistogram,
    /// The sensitivity sums of a sensitivity sweep (`None` otherwise); the
    /// counts above are those of the A samples alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<SensitivitySums>,
}

/// Aggregates that cannot be merged, or a result that does not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("aggregates do not fit together: {0}")]
pub struct MergeError(pub String);

impl Aggregate {
    pub fn empty(shape: Shape) -> Aggregate {
        let n = shape.n_units;
        Aggregate {
            shape,
            samples_ok: 0,
            failures: BTreeMap::new(),
            zone_counts: CountTable::zeros(n, shape.n_zones),
            total_counts: CountTable::zeros(n, N_TOTALS),
            score_counts: CountTable::zeros(n * N_SCORES, 5),
            cep_counts: CountTable::zeros(n, 5),
            peak_counts: CountTable::zeros(3 * n, shape.n_peak_bins()),
            neutral_counts: CountTable::zeros(3, n),
            ce_milestone: vec![LogHistogram::default(); 3 * n],
            ce_horizon: vec![LogHistogram::default(); 3 * n],
            regional_ce: vec![LogHistogram::default(); 3 * shape.n_projected_years()],
            regional_peak_counts: CountTable::zeros(3, shape.n_peak_bins()),
            zone_size_counts: CountTable::zeros(shape.n_zones, n + 1),
            coefficients: vec![LinearHistogram::new(COEFFICIENT_BIN_WIDTH); N_PREDICTORS],
            r2: LinearHistogram::new(R2_BIN_WIDTH),
            k: LinearHistogram::new(K_BIN_WIDTH),
            sensitivity: None,
        }
    }

    /// Every sample counted, successful or not.
    pub fn samples_total(&self) -> u64 {
        self.samples_ok + self.samples_failed()
    }

    pub fn samples_failed(&self) -> u64 {
        self.failures.values().map(|f| f.count).sum()
    }

    /// Count one successful sample.
    pub fn add(&mut self, outcome: &Outcome) {
        self.add_counts(outcome);
        let shape = self.shape;
        let n = shape.n_units;
        for (u, unit) in outcome.units.iter().enumerate() {
            for (s, scenario) in unit.scenarios.iter().enumerate() {
                if let Some(ce) = scenario.ce_milestone {
                    self.ce_milestone[s * n + u].add(ce);
                }
                self.ce_horizon[s * n + u].add(scenario.ce_horizon);
            }
        }
        let years = shape.n_projected_years();
        for (s, series) in outcome.regional_ce.iter().enumerate() {
            for (t, value) in series.iter().enumerate().take(years) {
                self.regional_ce[s * years + t].add(*value);
            }
        }
        for (histogram, value) in self.coefficients.iter_mut().zip(outcome.coefficients) {
            histogram.add(value);
        }
        self.r2.add(outcome.r2);
        self.k.add(outcome.k);
    }

    /// The part of [`Aggregate::add`] that counts into tables (every count
    /// but the histograms').
    pub(crate) fn add_counts(&mut self, outcome: &Outcome) {
        let shape = self.shape;
        assert_eq!(outcome.units.len(), shape.n_units, "an outcome of this sweep's dataset");
        self.samples_ok += 1;
        let mut tables = self.unit_tables_mut();
        Aggregate::unit_counts_of(&shape, outcome, |table, row, bin| tables[table].row_mut(row)[bin] += 1);
        self.add_regional(outcome);
    }

    /// The count tables with a row per unit (or per unit and score or
    /// scenario, or a column per unit), in the order in which
    /// [`Aggregate::unit_counts_of`] names them.
    pub(crate) fn unit_tables_mut(&mut self) -> [&mut CountTable; UNIT_TABLES] {
        [
            &mut self.zone_counts,
            &mut self.total_counts,
            &mut self.score_counts,
            &mut self.cep_counts,
            &mut self.peak_counts,
            &mut self.neutral_counts,
        ]
    }

    /// Where one successful sample counts in the per-unit tables:
    /// `count(table, row, bin)` once for each count it adds, `table` in
    /// [`Aggregate::unit_tables_mut`] order. Shared by [`Aggregate::add`]
    /// and the sweep's accumulator, which counts a batch of samples in
    /// narrow counters first.
    #[inline(always)]
    pub(crate) fn unit_counts_of(shape: &Shape, outcome: &Outcome, mut count: impl FnMut(usize, usize, usize)) {
        let (n, peak_bins) = (shape.n_units, shape.n_peak_bins());
        for (u, unit) in outcome.units.iter().enumerate() {
            count(0, u, usize::from(unit.zone) - 1);
            count(1, u, (unit.total - MIN_TOTAL) as usize);
            for (k, score) in unit.scores.iter().enumerate() {
                count(2, u * N_SCORES + k, usize::from(*score) - 1);
            }
            count(3, u, usize::from(unit.cep) - 1);
            for (s, scenario) in unit.scenarios.iter().enumerate() {
                let bin = match scenario.peak_year {
                    Some(year) => (i64::from(year) - i64::from(shape.base_year)) as usize,
                    None => peak_bins - 1,
                };
                count(4, s * n + u, bin);
                if scenario.neutral {
                    count(5, s, u);
                }
            }
        }
    }

    /// Count one successful sample's regional answers: the regional peak
    /// year per scenario and the number of units in each zone. Part of
    /// [`Aggregate::add`]; separate so its cost can be measured alone.
    pub fn add_regional(&mut self, outcome: &Outcome) {
        let shape = self.shape;
        let last = shape.n_peak_bins() - 1;
        for (s, series) in outcome.regional_ce.iter().enumerate() {
            let bin = match peak_year(series, shape.base_year, shape.horizon) {
                Some(year) => ((i64::from(year) - i64::from(shape.base_year)) as usize).min(last),
                None => last,
            };
            self.regional_peak_counts.row_mut(s)[bin] += 1;
        }
        let mut sizes = [0usize; MAX_ZONES];
        for unit in &outcome.units {
            sizes[usize::from(unit.zone) - 1] += 1;
        }
        for (z, &size) in sizes.iter().enumerate().take(shape.n_zones) {
            self.zone_size_counts.row_mut(z)[size] += 1;
        }
    }

    /// Record a failed sample under its kind.
    pub fn add_failure(&mut self, sample: u64, kind: &str, message: &str) {
        let entry = self.failures.entry(kind.to_owned()).or_default();
        entry.count += 1;
        if entry.samples.first().is_none_or(|first| sample < *first) {
            entry.example = message.to_owned();
        }
        insert_kept(&mut entry.samples, sample);
    }

    /// Add another aggregate of the same sweep.
    pub fn merge(&mut self, other: &Aggregate) -> Result<(), MergeError> {
        if self.shape != other.shape {
            return Err(MergeError(format!("shapes differ: {:?} and {:?}", self.shape, other.shape)));
        }
        fn add(a: &mut CountTable, b: &CountTable, what: &str) -> Result<(), MergeError> {
            a.add(b).map_err(|e| MergeError(format!("{what}: {e}")))
        }
        fn add_log(a: &mut [LogHistogram], b: &[LogHistogram], what: &str) -> Result<(), MergeError> {
            if a.len() != b.len() {
                return Err(MergeError(format!("{what} has {} histograms, not {}", b.len(), a.len())));
            }
            a.iter_mut().zip(b).for_each(|(x, y)| x.merge(y));
            Ok(())
        }
        other.check_lengths()?;
        merge_sensitivity(&mut self.sensitivity, other.sensitivity.as_ref())?;
        self.samples_ok += other.samples_ok;
        merge_failures(&mut self.failures, &other.failures);
        add(&mut self.zone_counts, &other.zone_counts, "zone_counts")?;
        add(&mut self.total_counts, &other.total_counts, "total_counts")?;
        add(&mut self.score_counts, &other.score_counts, "score_counts")?;
        add(&mut self.cep_counts, &other.cep_counts, "cep_counts")?;
        add(&mut self.peak_counts, &other.peak_counts, "peak_counts")?;
        add(&mut self.neutral_counts, &other.neutral_counts, "neutral_counts")?;
        add_log(&mut self.ce_milestone, &other.ce_milestone, "ce_milestone")?;
        add_log(&mut self.ce_horizon, &other.ce_horizon, "ce_horizon")?;
        add_log(&mut self.regional_ce, &other.regional_ce, "regional_ce")?;
        add(&mut self.regional_peak_counts, &other.regional_peak_counts, "regional_peak_counts")?;
        add(&mut self.zone_size_counts, &other.zone_size_counts, "zone_size_counts")?;
        for (a, b) in self.coefficients.iter_mut().zip(&other.coefficients) {
            a.merge(b).map_err(MergeError)?;
        }
        self.r2.merge(&other.r2).map_err(MergeError)?;
        self.k.merge(&other.k).map_err(MergeError)?;
        Ok(())
    }

    /// Check that every array has the length its shape implies: an aggregate
    /// that arrived over the network is checked before it is merged.
    pub fn check_lengths(&self) -> Result<(), MergeError> {
        let s = self.shape;
        let layouts = Aggregate::count_layouts(&s);
        let tables = [
            ("zone_counts", &self.zone_counts),
            ("total_counts", &self.total_counts),
            ("score_counts", &self.score_counts),
            ("cep_counts", &self.cep_counts),
            ("peak_counts", &self.peak_counts),
            ("neutral_counts", &self.neutral_counts),
            ("regional_peak_counts", &self.regional_peak_counts),
            ("zone_size_counts", &self.zone_size_counts),
        ];
        for ((what, table), (rows, width)) in tables.into_iter().zip(layouts) {
            if (table.n_rows(), table.width()) != (rows, width) {
                return Err(MergeError(format!(
                    "{what} has {}×{} entries; the shape needs {rows}×{width}",
                    table.n_rows(),
                    table.width()
                )));
            }
        }
        check_list_lengths(
            &s,
            [self.ce_milestone.len(), self.ce_horizon.len(), self.regional_ce.len()],
            (&self.coefficients, &self.r2, &self.k),
            self.sensitivity.as_ref(),
        )
    }

    /// The layouts (rows, width) [`Aggregate::check_lengths`] requires of the
    /// eight count tables (zone, total, score, CEP, peak, neutral, regional
    /// peak, zone size), from the shape alone.
    pub fn count_layouts(shape: &Shape) -> [(usize, usize); 8] {
        let n = shape.n_units;
        [
            (n, shape.n_zones),
            (n, N_TOTALS),
            (n * N_SCORES, 5),
            (n, 5),
            (3 * n, shape.n_peak_bins()),
            (3, n),
            (3, shape.n_peak_bins()),
            (shape.n_zones, n + 1),
        ]
    }

    /// Check that the counts are those of `samples_ok` successful samples:
    /// every per-unit distribution sums to it, every histogram counts it, no
    /// bin is empty and the failure records are well formed. An aggregate
    /// that arrived over the network is checked before it is merged; with
    /// its counts bounded by its sample count, merges cannot overflow.
    pub fn check_consistency(&self) -> Result<(), MergeError> {
        let bad = |m: String| Err(MergeError(m));
        let ok = check_failures(self.samples_ok, &self.failures)?;
        let sum = |values: &[u64]| values.iter().map(|&v| u128::from(v)).sum::<u128>();
        let each_sums_to_ok = |what: &str, table: &CountTable| -> Result<(), MergeError> {
            match table.rows().position(|row| sum(row) != ok) {
                Some(i) => Err(MergeError(format!("{what}: row {i} counts {} samples, not {ok}", sum(table.row(i))))),
                None => Ok(()),
            }
        };
        each_sums_to_ok("zone_counts", &self.zone_counts)?;
        each_sums_to_ok("total_counts", &self.total_counts)?;
        each_sums_to_ok("score_counts", &self.score_counts)?;
        each_sums_to_ok("cep_counts", &self.cep_counts)?;
        each_sums_to_ok("peak_counts", &self.peak_counts)?;
        each_sums_to_ok("regional_peak_counts", &self.regional_peak_counts)?;
        each_sums_to_ok("zone_size_counts", &self.zone_size_counts)?;
        // Zone sizes and zone memberships count the same units: over the
        // samples, Σ k·(samples with k units in zone z) = Σ over units of
        // (samples with the unit in zone z).
        for (z, row) in self.zone_size_counts.rows().enumerate() {
            let units: u128 = row.iter().enumerate().map(|(k, &c)| k as u128 * u128::from(c)).sum();
            let members: u128 = self.zone_counts.rows().map(|r| u128::from(r[z])).sum();
            if units != members {
                return bad(format!(
                    "zone_size_counts: zone {} holds {units} unit-samples, but zone_counts has {members}",
                    z + 1
                ));
            }
        }
        if let Some(i) = self.neutral_counts.as_flat().iter().position(|&c| u128::from(c) > ok) {
            return bad(format!("neutral_counts[{i}] exceeds the {ok} samples"));
        }
        let log_counts = |what: &str, list: &[LogHistogram], exact: bool| -> Result<(), MergeError> {
            for (i, h) in list.iter().enumerate() {
                if h.bins.values().any(|&c| c == 0) {
                    return Err(MergeError(format!("{what}[{i}] has an empty bin")));
                }
                let count = u128::from(h.non_positive) + h.bins.values().map(|&c| u128::from(c)).sum::<u128>();
                if (exact && count != ok) || count > ok {
                    return Err(MergeError(format!("{what}[{i}] counts {count} values for {ok} samples")));
                }
            }
            Ok(())
        };
        log_counts("ce_milestone", &self.ce_milestone, false)?;
        log_counts("ce_horizon", &self.ce_horizon, true)?;
        log_counts("regional_ce", &self.regional_ce, true)?;
        check_regression(&self.coefficients, &self.r2, &self.k, self.samples_ok)?;
        if let Some(sums) = &self.sensitivity {
            sums.check_consistency(self.samples_ok)?;
        }
        Ok(())
    }

    /// P(zone z) of unit u, z in 1..=n_zones.
    pub fn zone_probability(&self, unit: usize, zone: usize) -> f64 {
        ratio(self.zone_counts.row(unit)[zone - 1], self.samples_ok)
    }

    /// Peak-year counts of one unit and scenario: T₀…horizon−1, then "not peaked".
    pub fn peak_histogram(&self, scenario: Scenario, unit: usize) -> &[u64] {
        self.peak_counts.row(scenario as usize * self.shape.n_units + unit)
    }

    /// Counts of scores 1…5 of one unit and score key.
    pub fn score_row(&self, unit: usize, key: ScoreKey) -> &[u64] {
        self.score_counts.row(unit * N_SCORES + key as usize)
    }

    /// Samples in which one unit was neutral by the horizon under one scenario.
    pub fn neutral_count(&self, scenario: Scenario, unit: usize) -> u64 {
        self.neutral_counts.row(scenario as usize)[unit]
    }
}

fn ratio(count: u64, total: u64) -> f64 {
    if total == 0 { f64::NAN } else { count as f64 / total as f64 }
}

/// Add `other`'s failures to `mine` (the example of each kind is that of
/// its smallest failed sample). Shared by the dense and the sparse merge.
pub(crate) fn merge_failures(mine: &mut BTreeMap<String, FailureKind>, other: &BTreeMap<String, FailureKind>) {
    for (kind, failure) in other {
        let entry = mine.entry(kind.clone()).or_default();
        let other_first = failure.samples.first();
        if entry.samples.is_empty() || other_first.is_some_and(|o| entry.samples.first().is_some_and(|e| o < e)) {
            entry.example = failure.example.clone();
        }
        entry.count += failure.count;
        for sample in &failure.samples {
            insert_kept(&mut entry.samples, *sample);
        }
    }
}

/// Merge `other`'s sensitivity sums into `mine`; both or neither must have
/// them. A failure leaves `mine` unchanged.
pub(crate) fn merge_sensitivity(
    mine: &mut Option<SensitivitySums>,
    other: Option<&SensitivitySums>,
) -> Result<(), MergeError> {
    match (mine, other) {
        (None, None) => Ok(()),
        (Some(mine), Some(theirs)) => {
            // Merged first: a failure leaves the aggregate unchanged.
            let mut merged = mine.clone();
            merged.merge(theirs)?;
            *mine = merged;
            Ok(())
        }
        (mine, _) => Err(MergeError(format!(
            "one aggregate has sensitivity sums and the other not ({} here)",
            if mine.is_some() { "present" } else { "absent" }
        ))),
    }
}

/// The failure records' part of [`Aggregate::check_consistency`]: each is
/// well formed and the sample counts do not overflow. Returns `samples_ok`
/// widened.
pub(crate) fn check_failures(samples_ok: u64, failures: &BTreeMap<String, FailureKind>) -> Result<u128, MergeError> {
    let bad = |m: String| Err(MergeError(m));
    let ok = u128::from(samples_ok);
    let mut failed: u128 = 0;
    for (kind, f) in failures {
        if kind.len() > 200 || f.example.len() > 4000 {
            return bad(format!(
                "failure kind `{}…` or its example is too long",
                kind.chars().take(40).collect::<String>()
            ));
        }
        if f.count == 0 || f.samples.len() > KEPT_FAILED_SAMPLES || f.samples.len() as u64 > f.count {
            return bad(format!("failure kind `{kind}` has count {} and {} samples", f.count, f.samples.len()));
        }
        if !f.samples.windows(2).all(|w| w[0] < w[1]) {
            return bad(format!("failure kind `{kind}`: samples are not strictly ascending"));
        }
        failed += u128::from(f.count);
    }
    if ok + failed > u128::from(u64::MAX) {
        return bad("the sample counts overflow".to_owned());
    }
    Ok(ok)
}

/// The regression histograms' part of [`Aggregate::check_consistency`]:
/// each counts every successful sample, with no empty bin.
pub(crate) fn check_regression(
    coefficients: &[LinearHistogram],
    r2: &LinearHistogram,
    k: &LinearHistogram,
    samples_ok: u64,
) -> Result<(), MergeError> {
    let ok = u128::from(samples_ok);
    for (i, h) in coefficients.iter().chain([r2, k]).enumerate() {
        let count = u128::from(h.non_finite) + h.bins.values().map(|&c| u128::from(c)).sum::<u128>();
        if h.bins.values().any(|&c| c == 0) || count != ok {
            return Err(MergeError(format!("regression histogram {i} counts {count} values for {ok} samples")));
        }
    }
    Ok(())
}

/// The regression histograms' bin widths are the fixed ones.
/// The lengths beyond the count tables that `shape` implies (the log
/// histogram lists ce_milestone, ce_horizon and regional_ce, the
/// regression histograms, the sensitivity sums): the one check of the
/// dense and the sparse forms.
pub(crate) fn check_list_lengths(
    s: &Shape,
    [ce_milestone, ce_horizon, regional_ce]: [usize; 3],
    (coefficients, r2, k): (&[LinearHistogram], &LinearHistogram, &LinearHistogram),
    sensitivity: Option<&SensitivitySums>,
) -> Result<(), MergeError> {
    let n = s.n_units;
    let expected = [
        ("ce_milestone", ce_milestone, 3 * n),
        ("ce_horizon", ce_horizon, 3 * n),
        ("regional_ce", regional_ce, 3 * s.n_projected_years()),
        ("coefficients", coefficients.len(), N_PREDICTORS),
    ];
    for (what, got, want) in expected {
        if got != want {
            return Err(MergeError(format!("{what} has {got} entries; the shape needs {want}")));
        }
    }
    check_regression_widths(coefficients, r2, k)?;
    if let Some(sums) = sensitivity {
        sums.check_lengths(s)?;
    }
    Ok(())
}

pub(crate) fn check_regression_widths(
    coefficients: &[LinearHistogram],
    r2: &LinearHistogram,
    k: &LinearHistogram,
) -> Result<(), MergeError> {
    if coefficients.iter().any(|h| h.width != COEFFICIENT_BIN_WIDTH)
        || r2.width != R2_BIN_WIDTH
        || k.width != K_BIN_WIDTH
    {
        return Err(MergeError("a regression histogram has the wrong bin width".to_owned()));
    }
    Ok(())
}

/// Insert into a sorted list kept to the smallest [`KEPT_FAILED_SAMPLES`].
fn insert_kept(samples: &mut Vec<u64>, sample: u64) {
    if let Err(position) = samples.binary_search(&sample) {
        samples.insert(position, sample);
        samples.truncate(KEPT_FAILED_SAMPLES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::SweepSpec;
    use crate::sweep::runner::SweepRunner;

    #[test]
    fn a_shape_is_checked_against_the_submission_bounds() {
        let shape = Shape { n_units: 81, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 };
        assert_eq!(shape.check(), Ok(()));
        // The extremes a checked configuration and dataset can give.
        for ok in [
            Shape { n_units: 1, n_zones: 1, ..shape },
            Shape { n_units: MAX_UNITS, n_zones: MAX_ZONES, ..shape },
            Shape { base_year: 1900, milestone: 1900, horizon: 2100, ..shape },
            Shape { base_year: 2199, milestone: 2200, horizon: 2200, ..shape },
            Shape { milestone: 1900, horizon: 2021, ..shape },
        ] {
            assert_eq!(ok.check(), Ok(()), "{ok:?}");
            assert!(ok.n_projected_years() <= 201);
        }
        for (bad, what) in [
            (Shape { n_units: 0, ..shape }, "implausible shape"),
            (Shape { n_units: MAX_UNITS + 1, ..shape }, "implausible shape"),
            (Shape { n_zones: MAX_ZONES + 1, ..shape }, "implausible shape"),
            (Shape { horizon: 3100, ..shape }, "scenarios.horizon is 3100"),
            (Shape { horizon: 2010, milestone: 2005, ..shape }, "scenarios.horizon is 2010"),
            (Shape { horizon: i32::MAX, ..shape }, "must be 2021–2200"),
            (Shape { base_year: 30, milestone: 2030, horizon: 2060, ..shape }, "the base year 30"),
            (Shape { base_year: 3070, milestone: 3080, horizon: 3100, ..shape }, "the base year 3070"),
            (Shape { base_year: i32::MIN, milestone: i32::MIN, horizon: i32::MAX, ..shape }, "base year"),
            (Shape { milestone: 2061, ..shape }, "scenarios.milestone is 2061"),
        ] {
            let error = bad.check().unwrap_err();
            assert!(error.contains(what), "{bad:?}: {error}");
        }
    }

    #[test]
    fn real_aggregates_are_consistent_and_tampering_is_caught() {
        let dataset = crate::data::demo::generate(4, 1).unwrap();
        let config = Config::default();
        let spec = SweepSpec { samples: 20, ..SweepSpec::default() };
        let aggregate = SweepRunner::new(&dataset, &config, &spec).unwrap().run_range(0..20);
        aggregate.check_consistency().unwrap();
        type Tamper = Box<dyn Fn(&mut Aggregate)>;
        let tampered: Vec<Tamper> = vec![
            Box::new(|a| a.samples_ok += 1),
            Box::new(|a| a.zone_counts.row_mut(0)[0] += 1),
            Box::new(|a| a.peak_counts.row_mut(0)[3] += 1),
            Box::new(|a| a.regional_peak_counts.row_mut(2)[0] += 1),
            Box::new(|a| a.zone_size_counts.row_mut(0)[0] += 1),
            Box::new(|a| {
                // Still a distribution per zone, but not the zone_counts' units.
                let row = a.zone_size_counts.row_mut(1);
                let k = row.iter().position(|&c| c > 0).unwrap();
                row[k] -= 1;
                row[(k + 1) % row.len()] += 1;
            }),
            Box::new(|a| a.neutral_counts.row_mut(0)[0] = a.samples_ok + 1),
            Box::new(|a| a.ce_horizon[0].add(1.0)),
            Box::new(|a| a.r2.add(0.5)),
            Box::new(|a| {
                a.failures.insert("x".into(), FailureKind { count: 0, samples: vec![], example: String::new() });
            }),
            Box::new(|a| {
                a.failures.insert("x".into(), FailureKind { count: 2, samples: vec![5, 4], example: String::new() });
            }),
            Box::new(|a| {
                a.samples_ok = u64::MAX;
                a.add_failure(1, "x", "y");
            }),
        ];
        for (i, tamper) in tampered.iter().enumerate() {
            let mut bad = aggregate.clone();
            tamper(&mut bad);
            assert!(bad.check_consistency().is_err(), "tampering {i} went unnoticed");
        }
    }
}
