//! The sweep's fast path: the chain of [`crate::model::chain`] reorganised
//! for many samples of one dataset, with the same arithmetic.
//!
//! Every number the fast path computes is computed by the same operations
//! in the same order as the reference chain ([`crate::model::chain::run_with_rows`] →
//! [`Outcome::new`]), so each sample's [`Outcome`] is bit-identical to the
//! reference's, not merely close; what changes is the work around it:
//!
//! - the panel is stored once per runner year-major ([`YearMajorPanel`]),
//!   so the indices are computed four rows at a time and the Mann-Kendall
//!   kernel reads the units of a year side by side without a transposition;
//! - the base-year CLI scores, which no sampled parameter changes without
//!   data noise, are computed once per runner;
//! - the projection writes into one reused buffer and sums the regional
//!   CE as it goes, instead of keeping 3 × units series;
//! - every buffer lives in a [`Scratch`] that a thread reuses, so a sample
//!   allocates nothing once the buffers have grown;
//! - the outcome is counted by an [`Accumulator`] that holds histogram bins
//!   until a batch is full instead of inserting into sorted sparse bins one
//!   value at a time.
//!
//! Anything unusual in a sample (a non-finite index, a non-positive driver,
//! a regression that cannot be fitted, a projection that fails) makes the
//! fast path give up on that sample, and the runner runs the reference
//! chain on it, which produces the same error as without the fast path.
//! [`crate::sweep::runner::Mode::Verify`] runs both paths on every sample
//! and stops at the first difference.

use crate::model::chain::{PanelTerms, Parameters};
use crate::model::config::{CeiBasis, Config, Fit, NeutralSink, Scenario};
use crate::model::indices::{IndexKey, RowColumns, YearMajorPanel, compute_year_major};
use crate::model::projection::{self, DriverStats, ResolvedRules, StatLanes, UnitBase};
use crate::model::zoning::{self, ScoreKey};
use crate::numerics::math;
use crate::numerics::ridge::{self, N_PREDICTORS};
use crate::numerics::trend::{self, MK_LANES};
use crate::sweep::aggregate::{Aggregate, Outcome, ScenarioOutcome, UNIT_TABLES, UnitOutcome};
use crate::sweep::histogram::LogHistogram;

/// Whether this process runs only the portable copies of the fast path
/// and the accumulator ([`portable_only`]).
static PORTABLE_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Run the fast path and the [`Accumulator`] without their AVX2 copies in
/// this process from now on (`true`), or with them where the CPU has AVX2
/// (`false`, the default). Both give the same bits; this lets the tests of
/// an AVX2 machine run the code a machine without AVX2 runs.
#[doc(hidden)]
pub fn portable_only(yes: bool) {
    PORTABLE_ONLY.store(yes, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the fast path and the [`Accumulator`] take their AVX2 copies
/// in this process now: on x86-64 with AVX2 unless [`portable_only`] was
/// asked for; never elsewhere.
#[doc(hidden)]
pub fn takes_avx2_copies() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx2();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Whether to take the AVX2 copies: the CPU has AVX2 and [`portable_only`]
/// was not asked for.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx2() -> bool {
    !PORTABLE_ONLY.load(std::sync::atomic::Ordering::Relaxed) && std::arch::is_x86_feature_detected!("avx2")
}

/// What a runner computes once for the fast path.
#[derive(Clone, Debug)]
pub(crate) struct FastChain {
    panel: YearMajorPanel,
    /// Base-year CLI scores of every unit.
    cli_scores: Vec<u8>,
    /// For each trended index: its score key and direction.
    scoring: [(usize, crate::model::config::Direction); 8],
}

impl FastChain {
    /// `None` when the fast path cannot serve this dataset and
    /// configuration (a non-finite CLI, which the reference reports).
    pub(crate) fn new(dataset: &crate::data::dataset::Dataset, config: &Config) -> Option<FastChain> {
        let n_years = dataset.n_years();
        let rows = dataset.rows();
        let indices = crate::model::indices::compute(rows, n_years, &config.coefficients);
        let cli = indices.get(IndexKey::CLI);
        if cli.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let base_cli: Vec<f64> = (0..dataset.n_units()).map(|u| cli[u * n_years + n_years - 1]).collect();
        let scoring = std::array::from_fn(|i| {
            let key = IndexKey::TRENDED[i];
            let score = ScoreKey::of_index(key).expect("trended indices have scores") as usize;
            (score, zoning::direction(&config.zoning.direction, key))
        });
        Some(FastChain {
            panel: YearMajorPanel::new(rows, n_years, dataset.n_units()),
            cli_scores: zoning::cli_scores(&base_cli, &config.zoning.cli_thresholds),
            scoring,
        })
    }
}

/// Buffers one thread reuses from sample to sample.
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) uniforms: Vec<f64>,
    terms: RowColumns,
    trended: [Vec<f64>; 8],
    energy_tce: Vec<f64>,
    mk_s: Vec<i64>,
    mk_equal: Vec<i64>,
    narrow: Vec<f32>,
    series: Vec<f64>,
    slopes: Vec<f64>,
    cs_sen: Vec<f64>,
    ti: Vec<f64>,
    cei: Vec<f64>,
    stats: Vec<[DriverStats; N_PREDICTORS]>,
    resolved: Vec<ResolvedRules>,
    ti_stats: Vec<DriverStats>,
    cei_stats: Vec<DriverStats>,
    stat_lanes: StatLanes,
    x: Vec<[f64; N_PREDICTORS]>,
    y: Vec<f64>,
    ce: Vec<f64>,
    totals: Vec<u32>,
    zones: Vec<u8>,
    jenks: crate::numerics::jenks::Scratch,
    /// The outcome being built.
    pub(crate) outcome: Outcome,
}

impl Scratch {
    /// The bytes its buffers hold.
    pub fn heap_bytes(&self) -> usize {
        fn bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        bytes(&self.uniforms)
            + self.terms.heap_bytes()
            + self.trended.iter().map(bytes).sum::<usize>()
            + bytes(&self.energy_tce)
            + bytes(&self.mk_s)
            + bytes(&self.mk_equal)
            + bytes(&self.narrow)
            + bytes(&self.series)
            + bytes(&self.slopes)
            + bytes(&self.cs_sen)
            + bytes(&self.ti)
            + bytes(&self.cei)
            + bytes(&self.stats)
            + bytes(&self.resolved)
            + bytes(&self.ti_stats)
            + bytes(&self.cei_stats)
            + self.stat_lanes.heap_bytes()
            + bytes(&self.x)
            + bytes(&self.y)
            + bytes(&self.ce)
            + bytes(&self.totals)
            + bytes(&self.zones)
            + bytes(&self.outcome.units)
            + self.outcome.regional_ce.iter().map(bytes).sum::<usize>()
    }
}

/// Why the fast path left a sample to the reference chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unusual;

impl FastChain {
    /// Sample outcome at `parameters` on the dataset's own rows, into
    /// `scratch.outcome`; `Err(Unusual)` when the reference chain must run.
    ///
    /// On a CPU with AVX2 the same code is compiled for it and chosen at
    /// run time: wider lanes for the same IEEE operations (no fused
    /// multiply-add is enabled), so the outcome is identical either way.
    pub(crate) fn outcome_into(
        &self,
        dataset: &crate::data::dataset::Dataset,
        config: &Config,
        terms: &PanelTerms,
        parameters: &Parameters,
        scratch: &mut Scratch,
    ) -> Result<(), Unusual> {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.outcome_avx2(dataset, config, terms, parameters, scratch) };
        }
        self.outcome_generic(dataset, config, terms, parameters, scratch)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn outcome_avx2(
        &self,
        dataset: &crate::data::dataset::Dataset,
        config: &Config,
        terms: &PanelTerms,
        parameters: &Parameters,
        scratch: &mut Scratch,
    ) -> Result<(), Unusual> {
        self.outcome_generic(dataset, config, terms, parameters, scratch)
    }

    #[inline(always)]
    fn outcome_generic(
        &self,
        dataset: &crate::data::dataset::Dataset,
        config: &Config,
        terms: &PanelTerms,
        parameters: &Parameters,
        scratch: &mut Scratch,
    ) -> Result<(), Unusual> {
        let panel = &self.panel;
        let (n_units, n_years, width) = (panel.n_units, panel.n_years, panel.width);
        let base_year = dataset.base_year();
        let horizon = config.scenarios.horizon;
        let milestone = config.scenarios.milestone;
        if crate::model::config::projection_years_problem(base_year, milestone, horizon).is_some() {
            return Err(Unusual);
        }
        let readings = &parameters.readings;
        let Scratch {
            terms: row_terms,
            trended,
            energy_tce,
            mk_s,
            mk_equal,
            narrow,
            series,
            slopes,
            cs_sen,
            ti,
            cei,
            stats,
            resolved,
            ti_stats,
            cei_stats,
            stat_lanes,
            x,
            y,
            ce: ce_buffer,
            totals,
            zones,
            jenks,
            outcome,
            ..
        } = scratch;

        // Indices, year-major; the reference refuses any non-finite one.
        compute_year_major(panel, &parameters.coefficients, row_terms, trended, energy_tce);
        // Checked without an early exit, so that the check runs in vector
        // lanes: an index is infinite or NaN exactly when its exponent
        // field is all ones (a sample with one is rare). Whether any is
        // is an OR of comparisons, one cycle a step in vector lanes; a
        // running maximum of the fields, as before, has no AVX2
        // instruction and took several (5 % of a sample's time).
        const EXPONENT: u64 = 0x7ff0_0000_0000_0000;
        let mut any_not_finite = 0u64;
        for values in trended.iter() {
            for t in 0..n_years {
                any_not_finite = values[t * width..t * width + n_units]
                    .iter()
                    .fold(any_not_finite, |any, v| any | u64::from(v.to_bits() & EXPONENT == EXPONENT));
            }
        }
        if any_not_finite != 0 {
            return Err(Unusual);
        }
        let last_year = (n_years - 1) * width;

        // Trends and their scores.
        outcome.units.resize(n_units, EMPTY_UNIT);
        mk_s.resize(width, 0);
        mk_equal.resize(width, 0);
        let need_cs_sen = readings.neutral_sink == NeutralSink::SenExtrapolation;
        cs_sen.clear();
        cs_sen.resize(n_units, 0.0);
        for (i, values) in trended.iter().enumerate() {
            // S in f32 lanes, certified: a series with a pair not strictly
            // ordered in f32 is counted again in f64 (see
            // `mann_kendall_counts_f32`).
            narrow.clear();
            narrow.extend(values.iter().map(|&v| v as f32));
            trend::mann_kendall_counts_f32(narrow, width, n_years, mk_s, mk_equal);
            let (score, direction) = self.scoring[i];
            let key = IndexKey::TRENDED[i];
            let with_sen = need_cs_sen && key == IndexKey::CS;
            for u in 0..n_units {
                let mk = if mk_equal[u] > 0 || with_sen {
                    series.clear();
                    series.extend((0..n_years).map(|t| values[t * width + u]));
                    if with_sen {
                        cs_sen[u] = trend::sen_slope_in(series, slopes);
                        series.clear();
                        series.extend((0..n_years).map(|t| values[t * width + u]));
                    }
                    if mk_equal[u] > 0 {
                        trend::mann_kendall(series)
                    } else {
                        trend::mann_kendall_finish(mk_s[u], 0, n_years)
                    }
                } else {
                    trend::mann_kendall_finish(mk_s[u], 0, n_years)
                };
                outcome.units[u].scores[score] = zoning::trend_score(mk.z, parameters.trend_threshold, direction);
            }
        }
        debug_assert_eq!(MK_LANES % 4, 0);

        // The STIRPAT design: TI and CEI per unit, and the rows of the fit.
        let interval = readings.interval_years as usize;
        let ce = &trended[0];
        let denominator = match readings.cei {
            CeiBasis::Gdp => panel.gdp(),
            CeiBasis::SecondaryGdp => panel.secondary_gdp(),
        };
        let pooled = readings.fit == Fit::Pooled;
        x.clear();
        y.clear();
        // TI and CEI of every unit and year, year-major, a year of every
        // unit at a time. The reference refuses a driver that is not
        // positive and finite; checked once for all, so the loop has no
        // branch.
        let gdp = panel.gdp();
        ti.resize(n_years * width, 0.0);
        cei.resize(n_years * width, 0.0);
        let mut usual = true;
        for t in 0..n_years {
            let row = t * width..t * width + n_units;
            let drivers = ti[row.clone()].iter_mut().zip(&mut cei[row.clone()]);
            let inputs = gdp[row.clone()]
                .iter()
                .zip(&energy_tce[row.clone()])
                .zip(ce[row.clone()].iter().zip(&denominator[row]));
            for ((ti, cei), ((&gdp, &tce), (&ce, &denominator))) in drivers.zip(inputs) {
                *ti = gdp / tce;
                *cei = ce / denominator;
                usual &= math::positive_and_finite(*ti) & math::positive_and_finite(*cei);
            }
        }
        if !usual {
            return Err(Unusual);
        }
        if pooled {
            for u in 0..n_units {
                for t in 0..n_years {
                    let fixed = &terms.logs[u * n_years + t];
                    let i = t * width + u;
                    x.push([fixed[0], fixed[1], fixed[2], math::ln(ti[i]), fixed[3], math::ln(cei[i])]);
                    y.push(math::ln(ce[i]));
                }
            }
        }
        DriverStats::of_year_major(ti, width, n_units, n_years, interval, stat_lanes, ti_stats);
        DriverStats::of_year_major(cei, width, n_units, n_years, interval, stat_lanes, cei_stats);
        stats.clear();
        stats.extend((0..n_units).map(|u| terms.unit_stats_of(u, ti_stats[u], cei_stats[u])));
        if !pooled {
            for t in 0..n_years {
                let (mut ce_total, mut tce_total) = (0.0, 0.0);
                for u in 0..n_units {
                    ce_total += ce[t * width + u];
                    tce_total += energy_tce[t * width + u];
                }
                let (row, ln_ce) = terms.regional_row(t, ce_total, tce_total, readings.cei).map_err(|_| Unusual)?;
                x.push(row);
                y.push(ln_ce);
            }
        }
        let standardized = ridge::standardize(x, y).map_err(|_| Unusual)?;
        let fit = standardized.fit(parameters.k).map_err(|_| Unusual)?;
        outcome.r2 = fit.r_squared(x, y);
        outcome.coefficients = fit.coefficients;
        outcome.k = parameters.k;

        // Projections: peak years, neutrality, CE at the milestone and the
        // horizon, the regional CE summed in unit order as it goes.
        let n_projected = (i64::from(horizon) - i64::from(base_year)).max(0) as usize + 1;
        let milestone_index = usize::try_from(i64::from(milestone) - i64::from(base_year)).ok();
        ce_buffer.resize(n_projected, 0.0);
        let cs = &trended[1];
        for scenario in Scenario::ALL {
            let s = scenario as usize;
            projection::resolve_units(
                config.scenarios.rules(scenario),
                stats,
                &parameters.adjustments,
                scenario,
                resolved,
            );
            let regional = &mut outcome.regional_ce[s];
            regional.clear();
            regional.resize(n_projected, -0.0);
            for u in 0..n_units {
                let unit = UnitBase {
                    unit_id: &dataset.units()[u].id,
                    stats: &stats[u],
                    ce_base: ce[last_year + u],
                    cs_horizon: projection::horizon_sink(
                        readings.neutral_sink,
                        cs[last_year + u],
                        cs_sen[u],
                        base_year,
                        horizon,
                    ),
                };
                let (peak_year, neutral) = projection::project_resolved_into(
                    &unit,
                    scenario,
                    &config.scenarios,
                    &resolved[u],
                    &fit.coefficients,
                    base_year,
                    ce_buffer,
                )
                .map_err(|_| Unusual)?;
                for (total, value) in regional.iter_mut().zip(ce_buffer.iter()) {
                    *total += *value;
                }
                outcome.units[u].scenarios[s] = ScenarioOutcome {
                    peak_year,
                    peaked_by_milestone: peak_year.is_some_and(|y| y <= milestone),
                    neutral,
                    ce_milestone: milestone_index.and_then(|i| ce_buffer.get(i).copied()),
                    ce_horizon: ce_buffer[n_projected - 1],
                };
            }
        }

        // CEP, scores, totals, zones.
        totals.clear();
        for u in 0..n_units {
            let unit = &mut outcome.units[u];
            let peaks = std::array::from_fn(|s| unit.scenarios[s].peak_year);
            let neutral_baseline = unit.scenarios[Scenario::Baseline as usize].neutral;
            unit.cep = projection::carbon_emission_potential(peaks, neutral_baseline, milestone);
            unit.scores[ScoreKey::CEP as usize] = unit.cep;
            unit.scores[ScoreKey::CLI as usize] = self.cli_scores[u];
            unit.total = unit.scores.iter().map(|&v| u32::from(v)).sum();
            totals.push(unit.total);
        }
        zones.resize(n_units, 0);
        zoning::zones_into(totals, &config.zoning, jenks, zones);
        for (unit, zone) in outcome.units.iter_mut().zip(zones.iter()) {
            unit.zone = *zone;
        }
        Ok(())
    }
}

const EMPTY_SCENARIO: ScenarioOutcome = ScenarioOutcome {
    peak_year: None,
    peaked_by_milestone: false,
    neutral: false,
    ce_milestone: None,
    ce_horizon: 0.0,
};
const EMPTY_UNIT: UnitOutcome =
    UnitOutcome { zone: 0, total: 0, scores: [0; 10], cep: 0, scenarios: [EMPTY_SCENARIO; 3] };

/// Samples whose histogram bins an [`Accumulator`] holds before it adds
/// them to the aggregate: at most this many, and at most
/// [`PENDING_BYTES`] of bins.
const PENDING_SAMPLES: usize = 256;
const PENDING_BYTES: usize = 1 << 20;

/// An [`Aggregate`] being filled sample by sample: the per-unit count
/// tables in 8-bit copies (`NarrowCounts`) added to the aggregate's every
/// 255 samples, the regional ones directly; the log histograms' bins held per batch, then counted one
/// histogram at a time into `DenseBins` (a counter per bin over the range
/// met so far, instead of sorted sparse bins rebuilt at every batch), which
/// go into the aggregate's sparse histograms when the job ends.
/// [`Accumulator::finish`] gives exactly the aggregate that
/// [`Aggregate::add`] of the same outcomes in any order gives.
#[derive(Debug)]
pub struct Accumulator {
    aggregate: Aggregate,
    /// Per pending sample, every log histogram's bin ([`NON_POSITIVE`] for a
    /// value that has none), in [`log_histogram`] order.
    log_bins: Vec<i32>,
    pending: usize,
    /// Samples per batch.
    batch: usize,
    n_log: usize,
    /// Each log histogram's counts so far, in [`log_histogram`]
    /// order (the aggregate's own bins stay as they were given until
    /// [`Accumulator::finish`]).
    dense: Vec<DenseBins>,
    /// The sample being added: its log-histogram values in slot order,
    /// and the slots without one.
    values: Vec<f64>,
    skipped: Vec<usize>,
    /// The per-unit count tables of the samples added since they last went
    /// to the aggregate.
    unit_counts: NarrowCounts,
}

/// The aggregate's per-unit count tables ([`Aggregate::unit_tables_mut`])
/// in 8-bit counters, added to the aggregate's every 255 samples: an
/// eighth of the memory, so that at 2,844 units a sample's scattered
/// increments (nineteen a unit) land in a table of 0.6 MiB that stays in
/// the second-level cache instead of one of 5 MiB that does not.
#[derive(Debug)]
struct NarrowCounts {
    /// Each table's width and counts, in the aggregate table's layout.
    tables: [(usize, Vec<u8>); UNIT_TABLES],
    /// Samples counted since the counts last went to the aggregate.
    samples: u8,
}

impl NarrowCounts {
    fn new(aggregate: &mut Aggregate) -> NarrowCounts {
        let tables = aggregate.unit_tables_mut().map(|table| (table.width(), vec![0; table.as_flat().len()]));
        NarrowCounts { tables, samples: 0 }
    }

    fn heap_bytes(&self) -> usize {
        self.tables.iter().map(|(_, counts)| counts.capacity()).sum()
    }

    /// Count one sample; its counts and those before it go to `aggregate`
    /// when a counter could fill up otherwise.
    #[inline(always)]
    fn add(&mut self, aggregate: &mut Aggregate, outcome: &Outcome) {
        let tables = &mut self.tables;
        Aggregate::unit_counts_of(&aggregate.shape, outcome, |table, row, bin| {
            let (width, counts) = &mut tables[table];
            counts[row * *width..][..*width][bin] += 1;
        });
        self.samples += 1;
        if self.samples == u8::MAX {
            self.spill_into(aggregate);
        }
    }

    /// Add the counts to `aggregate`'s tables and start again from zero.
    fn spill_into(&mut self, aggregate: &mut Aggregate) {
        for (table, (_, counts)) in aggregate.unit_tables_mut().into_iter().zip(&mut self.tables) {
            for (total, count) in table.as_flat_mut().iter_mut().zip(counts.iter_mut()) {
                *total += u64::from(*count);
                *count = 0;
            }
        }
        self.samples = 0;
    }
}

const NON_POSITIVE: i32 = i32::MIN;

impl Accumulator {
    pub fn new(mut aggregate: Aggregate) -> Accumulator {
        let unit_counts = NarrowCounts::new(&mut aggregate);
        let shape = aggregate.shape;
        let n_log = 2 * 3 * shape.n_units + 3 * shape.n_projected_years();
        let per_sample = n_log * std::mem::size_of::<i32>();
        let batch = (PENDING_BYTES / per_sample).clamp(1, PENDING_SAMPLES);
        Accumulator {
            aggregate,
            log_bins: Vec::with_capacity(batch * n_log),
            pending: 0,
            batch,
            n_log,
            dense: vec![DenseBins::default(); n_log],
            values: Vec::with_capacity(n_log),
            skipped: Vec::with_capacity(n_log),
            unit_counts,
        }
    }

    /// The bytes of its pending bins when a batch is full, and of its
    /// histograms' counters now.
    pub fn heap_bytes(&self) -> usize {
        self.batch * self.n_log * std::mem::size_of::<i32>()
            + self.dense.capacity() * std::mem::size_of::<DenseBins>()
            + self.dense.iter().map(DenseBins::heap_bytes).sum::<usize>()
            + self.values.capacity() * std::mem::size_of::<f64>()
            + self.skipped.capacity() * std::mem::size_of::<usize>()
            + self.unit_counts.heap_bytes()
    }

    /// The aggregate's failures and sensitivity sums are changed through it.
    pub fn aggregate_mut(&mut self) -> &mut Aggregate {
        &mut self.aggregate
    }

    /// Count one successful sample, as [`Aggregate::add`] does.
    pub fn add(&mut self, outcome: &Outcome) {
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.add_avx2(outcome) };
        }
        self.add_generic(outcome)
    }

    /// [`Accumulator::add`] compiled for AVX2 (wider lanes and a rounding
    /// instruction for the bins' floor: the same IEEE results).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn add_avx2(&mut self, outcome: &Outcome) {
        self.add_generic(outcome)
    }

    #[inline(always)]
    fn add_generic(&mut self, outcome: &Outcome) {
        let shape = self.aggregate.shape;
        let n = shape.n_units;
        assert_eq!(outcome.units.len(), n, "an outcome of this sweep's dataset");
        self.aggregate.samples_ok += 1;
        self.unit_counts.add(&mut self.aggregate, outcome);
        self.aggregate.add_regional(outcome);
        // ce_milestone [s][u] (a value without one is not counted: the
        // milestone is before the base year for every sample alike), then
        // ce_horizon [s][u], then regional CE [s][year]; their bins four
        // at a time, then the slots without a value marked.
        let years = shape.n_projected_years();
        let Accumulator { values, skipped, log_bins, .. } = self;
        values.clear();
        skipped.clear();
        let mut slot = |value: Option<f64>, values: &mut Vec<f64>| {
            if value.is_none() {
                skipped.push(values.len());
            }
            values.push(value.unwrap_or(1.0));
        };
        for s in 0..3 {
            for unit in &outcome.units {
                slot(unit.scenarios[s].ce_milestone, values);
            }
        }
        for s in 0..3 {
            for unit in &outcome.units {
                slot(Some(unit.scenarios[s].ce_horizon), values);
            }
        }
        for series in &outcome.regional_ce {
            for t in 0..years {
                slot(series.get(t).copied(), values);
            }
        }
        let start = log_bins.len();
        let mut chunks = values.chunks_exact(4);
        for chunk in chunks.by_ref() {
            let bins = LogHistogram::bins_of(chunk.try_into().expect("chunks of four"));
            log_bins.extend(bins.map(|bin| bin.unwrap_or(NON_POSITIVE)));
        }
        log_bins.extend(chunks.remainder().iter().map(|&v| LogHistogram::bin_of(v).unwrap_or(NON_POSITIVE)));
        for &i in skipped.iter() {
            log_bins[start + i] = SKIPPED;
        }
        debug_assert_eq!(self.log_bins.len(), (self.pending + 1) * self.n_log);
        // Eight values a sample, into histograms of few bins: added at once.
        for (histogram, value) in self.aggregate.coefficients.iter_mut().zip(outcome.coefficients) {
            histogram.add(value);
        }
        self.aggregate.r2.add(outcome.r2);
        self.aggregate.k.add(outcome.k);
        self.pending += 1;
        if self.pending == self.batch {
            self.flush();
        }
    }

    /// Count the pending bins.
    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        for h in 0..self.n_log {
            let mut non_positive = 0;
            let dense = &mut self.dense[h];
            for p in 0..self.pending {
                match self.log_bins[p * self.n_log + h] {
                    SKIPPED => {}
                    NON_POSITIVE => non_positive += 1,
                    bin => {
                        if !dense.add(bin) {
                            // Far from the bins counted so far: those go
                            // to the aggregate, and the counters start
                            // again around this one.
                            dense.spill_into(&mut log_histogram(&mut self.aggregate, h).bins);
                            let counted = dense.add(bin);
                            debug_assert!(counted);
                        }
                    }
                }
            }
            log_histogram(&mut self.aggregate, h).non_positive += non_positive;
        }
        self.log_bins.clear();
        self.pending = 0;
    }

    /// The aggregate of every sample added.
    pub fn finish(mut self) -> Aggregate {
        self.flush();
        self.unit_counts.spill_into(&mut self.aggregate);
        for (h, dense) in self.dense.iter_mut().enumerate() {
            dense.spill_into(&mut log_histogram(&mut self.aggregate, h).bins);
        }
        self.aggregate
    }
}

/// Log histogram `h` of `aggregate` in [`Accumulator`] order: CE at the
/// milestone [scenario][unit], CE at the horizon [scenario][unit], the
/// regional CE [scenario][year].
fn log_histogram(aggregate: &mut Aggregate, h: usize) -> &mut LogHistogram {
    let n = aggregate.shape.n_units;
    if h < 3 * n {
        &mut aggregate.ce_milestone[h]
    } else if h < 6 * n {
        &mut aggregate.ce_horizon[h - 3 * n]
    } else {
        &mut aggregate.regional_ce[h - 6 * n]
    }
}

/// One log histogram's counts in a job: a counter for every bin from
/// `low` on, over the range of bins met so far (a job's values of one
/// histogram lie within a few hundred bins of each other), grown by
/// amortised doubling, and never wider than [`DenseBins::MAX_SPAN`], so
/// that a histogram with values far apart takes a bounded memory: its
/// counts then go to the aggregate's sparse bins and start again, as they
/// do when a counter is full. The counters are 16-bit: a histogram takes
/// one value a sample, so a job of fewer than 65,536 samples never fills
/// one, and half the memory keeps more of them in cache (at 2,844 units a
/// thread's counters take megabytes).
#[derive(Clone, Debug, Default)]
struct DenseBins {
    low: i64,
    counts: Vec<u16>,
}

impl DenseBins {
    /// The widest range of bins counted densely: 4,096 bins of 1 %, a
    /// factor of 5·10¹⁷ between the smallest and the largest value.
    const MAX_SPAN: i64 = 4096;

    fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u16>()
    }

    /// Count one value in `bin`; `false` (nothing counted) when that
    /// would make the range wider than [`DenseBins::MAX_SPAN`] or a counter
    /// overflow.
    #[inline(always)]
    fn add(&mut self, bin: i32) -> bool {
        let at = i64::from(bin) - self.low;
        if let Some(count) = usize::try_from(at).ok().and_then(|at| self.counts.get_mut(at)) {
            let Some(more) = count.checked_add(1) else {
                return false;
            };
            *count = more;
            return true;
        }
        self.widen(i64::from(bin))
    }

    /// Widen the range to hold `bin` (with room on that side, as much as
    /// it holds already) and count it there.
    #[cold]
    fn widen(&mut self, bin: i64) -> bool {
        let len = self.counts.len() as i64;
        if len == 0 {
            self.low = bin - 8;
            self.counts.resize(17, 0);
        } else if bin < self.low {
            let high = self.low + len;
            if high - bin > Self::MAX_SPAN {
                return false;
            }
            let low = (bin - len.max(8)).max(high - Self::MAX_SPAN);
            let more = (self.low - low) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, more));
            self.low = low;
        } else {
            if bin - self.low >= Self::MAX_SPAN {
                return false;
            }
            let high = (bin + 1 + len.max(8)).min(self.low + Self::MAX_SPAN);
            self.counts.resize((high - self.low) as usize, 0);
        }
        self.counts[(bin - self.low) as usize] += 1;
        true
    }

    /// Add the counts to `bins` and start again with none.
    fn spill_into(&mut self, bins: &mut crate::sweep::histogram::SparseBins<i32>) {
        if self.counts.iter().all(|&count| count == 0) {
            self.counts.clear();
            return;
        }
        let low = self.low;
        let entries: Vec<(i32, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|&(_, &count)| count > 0)
            .map(|(at, &count)| ((low + at as i64) as i32, u64::from(count)))
            .collect();
        bins.merge_sorted(&entries);
        self.counts.clear();
    }
}

/// A log bin slot with no value (no milestone CE, a shorter series).
const SKIPPED: i32 = i32::MIN + 1;

#[cfg(test)]
mod tests {
    use super::DenseBins;
    use crate::sweep::histogram::SparseBins;
    use rand::{Rng, SeedableRng};

    /// Dense counters spilled into sparse bins count what adding each bin
    /// to the sparse bins counts: bins close together, spread wider than
    /// the widest range (spills), met upwards, downwards and at random,
    /// into bins that hold counts already.
    #[test]
    fn dense_bins_count_as_sparse_bins_do() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut spilled = 0;
        for case in 0..400 {
            let spread: i64 = [5, 300, 5000, 1 << 31][case % 4];
            let centre: i64 = rng.random_range(-3000..3000);
            let mut dense = DenseBins::default();
            let mut expected = SparseBins::default();
            let mut actual = SparseBins::default();
            for b in 0..rng.random_range(0..10) {
                expected.add(b * 7, 2);
                actual.add(b * 7, 2);
            }
            for i in 0..rng.random_range(1..600) {
                let offset = match case % 3 {
                    0 => i * spread / 300,
                    1 => -i * spread / 300,
                    _ => rng.random_range(-spread..=spread),
                };
                let bin = (centre + offset).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                expected.add(bin, 1);
                if !dense.add(bin) {
                    spilled += 1;
                    dense.spill_into(&mut actual);
                    assert!(dense.add(bin), "case {case}: an empty counter takes any bin");
                }
                assert!(dense.counts.len() as i64 <= DenseBins::MAX_SPAN);
            }
            dense.spill_into(&mut actual);
            assert_eq!(actual, expected, "case {case}");
        }
        assert!(spilled > 100, "{spilled} spills");
    }

    /// A full counter is not incremented: the caller spills it. Counting
    /// 200,000 values of one bin, spilling when told, counts them all.
    #[test]
    fn a_full_counter_spills() {
        let mut dense = DenseBins::default();
        assert!(dense.add(40));
        let at = (40 - dense.low) as usize;
        dense.counts[at] = u16::MAX;
        assert!(!dense.add(40));
        let mut bins = SparseBins::default();
        dense.spill_into(&mut bins);
        assert!(dense.add(40));
        dense.spill_into(&mut bins);
        assert_eq!(bins.as_slice(), &[(40, u64::from(u16::MAX) + 1)]);
        let mut bins = SparseBins::default();
        let mut spills = 0;
        for i in 0..200_000 {
            let bin = if i % 2 == 0 { 40 } else { 41 };
            if !dense.add(bin) {
                spills += 1;
                dense.spill_into(&mut bins);
                assert!(dense.add(bin));
            }
        }
        dense.spill_into(&mut bins);
        assert_eq!(bins.as_slice(), &[(40, 100_000), (41, 100_000)]);
        assert_eq!(spills, 1, "100,000 values of a bin fill a 16-bit counter once");
    }
}
