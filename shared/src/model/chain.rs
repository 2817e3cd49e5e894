//! The whole chain of docs/model.md sections 3–7 for one set of parameters:
//! indices → trends → STIRPAT ridge → scenario projection → scores → zones.

use crate::model::coefficients::Coefficients;
use crate::numerics::math;
use std::borrow::Cow;

use crate::data::dataset::Dataset;
use crate::data::fields::{Field, Row};
use crate::error::ChainError;
use crate::model::config::{CeiBasis, Config, Driver, Fit, NeutralSink, Readings, Scenario, projection_years_problem};
use crate::model::indices::{self, IndexKey, Indices};
use crate::model::projection::{self, DriverStats, RuleAdjustments, UnitBase, UnitProjection};
use crate::model::zoning::{self, ScoreKey, Scores};
use crate::numerics::ridge::{self, N_PREDICTORS, RidgeFit};
use crate::numerics::trend::{self, MannKendall};

/// The parameters a sweep samples; [`Parameters::nominal`] is one `evaluate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameters {
    pub coefficients: Coefficients,
    pub k: f64,
    pub trend_threshold: f64,
    pub adjustments: RuleAdjustments,
    /// How the paper is read: fit, CEI basis, interval length, CS rule.
    pub readings: Readings,
}

impl Parameters {
    /// The configuration's own values: no sampling.
    pub fn nominal(config: &Config) -> Parameters {
        Parameters {
            coefficients: config.coefficients.clone(),
            k: config.ridge.k,
            trend_threshold: config.zoning.trend_threshold,
            adjustments: RuleAdjustments::default(),
            readings: Readings::of(config),
        }
    }
}

/// How much of the chain's intermediate detail to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Everything `evaluate` reports: Sen slopes, R², the t-test.
    Full,
    /// What a sweep sample needs: Sen slopes only where the neutrality rule
    /// uses them, no R² t-test.
    Sample,
}

/// One index's trend statistics for one unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// The Theil-Sen slope; `None` when not computed ([`Detail::Sample`]).
    pub sen: Option<f64>,
    pub mk: MannKendall,
}

/// The fitted STIRPAT model.
#[derive(Clone, Debug, PartialEq)]
pub struct Stirpat {
    pub fit: RidgeFit,
    pub r2: f64,
    /// Welch t-test p between exp(fitted ln CE) and CE ([`Detail::Full`] only).
    pub t_test_p: Option<f64>,
}

/// Everything one run of the chain produces.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainResult {
    pub indices: Indices,
    /// `trends[i][unit]` for the i-th of [`IndexKey::TRENDED`].
    pub trends: Vec<Vec<Trend>>,
    pub stirpat: Stirpat,
    pub base_year: i32,
    /// `projections[scenario][unit]`, in [`Scenario::ALL`] order.
    pub projections: [Vec<UnitProjection>; 3],
    pub cep: Vec<u8>,
    pub scores: Vec<Scores>,
    pub total: Vec<u32>,
    pub breaks: Vec<u32>,
    pub zone: Vec<u8>,
}

/// The STIRPAT drivers that depend on the panel rows alone (P, W, IS, UR),
/// computed once per panel and interval length: a sweep without data noise
/// reuses them for every sample, since only TI (through the tce
/// coefficients) and CEI (through CE) change with the sampled parameters.
#[derive(Clone, Debug)]
pub struct PanelTerms {
    /// ln P, ln W, ln IS, ln UR of every row.
    pub(crate) logs: Vec<[f64; 4]>,
    /// Per unit: the statistics of P, W, IS, UR.
    pub(crate) stats: Vec<[DriverStats; 4]>,
    /// The interval length the statistics were computed with.
    interval_years: u32,
    /// Per year: ln P, ln W, ln IS, ln UR of the region's totals.
    pub(crate) regional_logs: Vec<[f64; 4]>,
    /// Per year: the region's total gdp and secondary_gdp.
    pub(crate) regional_gdp: Vec<f64>,
    pub(crate) regional_secondary_gdp: Vec<f64>,
}

/// Where the row-only drivers sit among the predictors.
const ROW_ONLY_DRIVERS: [usize; 4] = [Driver::P as usize, Driver::W as usize, Driver::IS as usize, Driver::UR as usize];

/// Where a value the model takes the logarithm of comes from.
#[derive(Clone, Copy)]
enum Origin {
    /// Row i of the panel (unit-major).
    Row(usize),
    /// The region's totals in the year of that index.
    Region(usize),
}

fn positive(value: f64, driver: Driver, dataset: &Dataset, origin: Origin) -> Result<f64, ChainError> {
    if value > 0.0 && value.is_finite() { Ok(value) } else { Err(non_positive(value, driver, dataset, origin)) }
}

/// The error of a driver value that is not positive.
fn non_positive(value: f64, driver: Driver, dataset: &Dataset, origin: Origin) -> ChainError {
    let n_years = dataset.n_years();
    let (unit, year) = match origin {
        Origin::Row(i) => (dataset.units()[i / n_years].id.clone(), dataset.years()[i % n_years]),
        Origin::Region(t) => ("(the region's totals)".to_owned(), dataset.years()[t]),
    };
    ChainError::NonPositive { quantity: driver.key(), unit, year, value }
}

/// P, W, IS, UR from population, gdp, secondary_gdp and urban_population.
fn row_only_drivers(
    [population, gdp, secondary_gdp, urban_population]: [f64; 4],
    dataset: &Dataset,
    origin: Origin,
) -> Result<[f64; 4], ChainError> {
    Ok([
        positive(population, Driver::P, dataset, origin)?,
        positive(gdp / population, Driver::W, dataset, origin)?,
        positive(100.0 * secondary_gdp / gdp, Driver::IS, dataset, origin)?,
        positive(100.0 * urban_population / population, Driver::UR, dataset, origin)?,
    ])
}

const ROW_ONLY_FIELDS: [Field; 4] = [Field::Population, Field::Gdp, Field::SecondaryGdp, Field::UrbanPopulation];

impl PanelTerms {
    pub fn new(dataset: &Dataset, rows: &[Row], interval_years: u32) -> Result<PanelTerms, ChainError> {
        let n_years = dataset.n_years();
        let mut logs = Vec::with_capacity(rows.len());
        let mut levels = vec![[0.0; 4]; rows.len()];
        let mut totals = vec![[0.0; 4]; n_years];
        for (i, row) in rows.iter().enumerate() {
            let fields = ROW_ONLY_FIELDS.map(|f| row[f as usize]);
            let drivers = row_only_drivers(fields, dataset, Origin::Row(i))?;
            levels[i] = drivers;
            logs.push(drivers.map(math::ln));
            for (total, value) in totals[i % n_years].iter_mut().zip(fields) {
                *total += value;
            }
        }
        let stats = (0..dataset.n_units())
            .map(|u| {
                let unit = &levels[u * n_years..(u + 1) * n_years];
                std::array::from_fn(|j| {
                    let series: Vec<f64> = unit.iter().map(|l| l[j]).collect();
                    DriverStats::of(&series, interval_years as usize)
                })
            })
            .collect();
        let regional_logs = totals
            .iter()
            .enumerate()
            .map(|(t, &fields)| Ok(row_only_drivers(fields, dataset, Origin::Region(t))?.map(math::ln)))
            .collect::<Result<_, ChainError>>()?;
        Ok(PanelTerms {
            logs,
            stats,
            interval_years,
            regional_logs,
            regional_gdp: totals.iter().map(|t| t[1]).collect(),
            regional_secondary_gdp: totals.iter().map(|t| t[2]).collect(),
        })
    }
}

impl PanelTerms {
    /// Unit u's driver statistics: P, W, IS and UR from these terms, TI
    /// and CEI from their series (`interval` years per growth interval).
    pub(crate) fn unit_stats(&self, u: usize, ti: &[f64], cei: &[f64], interval: usize) -> [DriverStats; N_PREDICTORS] {
        self.unit_stats_of(u, DriverStats::of(ti, interval), DriverStats::of(cei, interval))
    }

    /// Unit u's driver statistics given those of its TI and CEI series.
    pub(crate) fn unit_stats_of(&self, u: usize, ti: DriverStats, cei: DriverStats) -> [DriverStats; N_PREDICTORS] {
        let mut stats = [ti; N_PREDICTORS];
        for (j, &d) in ROW_ONLY_DRIVERS.iter().enumerate() {
            stats[d] = self.stats[u][j];
        }
        stats[Driver::CEI as usize] = cei;
        stats
    }

    /// The regional fit's row of year t from the region's CE and energy
    /// totals (summed in unit order): the logged predictors and ln CE, or
    /// the driver (TI or CEI) that is not positive and its value.
    pub(crate) fn regional_row(
        &self,
        t: usize,
        ce_total: f64,
        tce_total: f64,
        cei: CeiBasis,
    ) -> Result<([f64; N_PREDICTORS], f64), (Driver, f64)> {
        let denominator = match cei {
            CeiBasis::Gdp => self.regional_gdp[t],
            CeiBasis::SecondaryGdp => self.regional_secondary_gdp[t],
        };
        let checked = |value: f64, driver: Driver| {
            if value > 0.0 && value.is_finite() { Ok(value) } else { Err((driver, value)) }
        };
        let ti = checked(self.regional_gdp[t] / tce_total, Driver::TI)?;
        let cei = checked(ce_total / denominator, Driver::CEI)?;
        let fixed = &self.regional_logs[t];
        Ok(([fixed[0], fixed[1], fixed[2], math::ln(ti), fixed[3], math::ln(cei)], math::ln(ce_total)))
    }
}

/// The regression rows (logged predictors and response, and the response's
/// level for the t-test) of the configured fit, and each unit's driver
/// statistics for the projection.
struct StirpatDesign {
    x: Vec<[f64; N_PREDICTORS]>,
    y: Vec<f64>,
    response: Vec<f64>,
    stats: Vec<[DriverStats; N_PREDICTORS]>,
}

fn stirpat_design(
    dataset: &Dataset,
    rows: &[Row],
    terms: &PanelTerms,
    indices: &Indices,
    readings: &Readings,
) -> Result<StirpatDesign, ChainError> {
    let n_years = dataset.n_years();
    let ce = indices.get(IndexKey::CE);
    let cei_field = match readings.cei {
        CeiBasis::Gdp => Field::Gdp,
        CeiBasis::SecondaryGdp => Field::SecondaryGdp,
    };
    let pooled = readings.fit == Fit::Pooled;
    let (mut x, mut y, mut response) = if pooled {
        (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()))
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    let mut ti = vec![0.0; n_years];
    let mut cei = vec![0.0; n_years];
    let mut stats = Vec::with_capacity(dataset.n_units());
    for u in 0..dataset.n_units() {
        for t in 0..n_years {
            let i = u * n_years + t;
            let row = &rows[i];
            ti[t] = positive(row[Field::Gdp as usize] / indices.energy_tce[i], Driver::TI, dataset, Origin::Row(i))?;
            cei[t] = positive(ce[i] / row[cei_field as usize], Driver::CEI, dataset, Origin::Row(i))?;
            if pooled {
                let fixed = &terms.logs[i];
                x.push([fixed[0], fixed[1], fixed[2], math::ln(ti[t]), fixed[3], math::ln(cei[t])]);
                y.push(math::ln(ce[i]));
                response.push(ce[i]);
            }
        }
        stats.push(terms.unit_stats(u, &ti, &cei, readings.interval_years as usize));
    }
    if !pooled {
        // The region's totals per year, summed in unit order.
        for t in 0..n_years {
            let (mut ce_total, mut tce_total) = (0.0, 0.0);
            for u in 0..dataset.n_units() {
                ce_total += ce[u * n_years + t];
                tce_total += indices.energy_tce[u * n_years + t];
            }
            let (row, ln_ce) = terms
                .regional_row(t, ce_total, tce_total, readings.cei)
                .map_err(|(driver, value)| non_positive(value, driver, dataset, Origin::Region(t)))?;
            x.push(row);
            y.push(ln_ce);
            response.push(ce_total);
        }
    }
    Ok(StirpatDesign { x, y, response, stats })
}

/// Standardize the design's rows, naming the regional fit in its errors.
fn standardize(design: &StirpatDesign, readings: &Readings) -> Result<ridge::Standardized, ChainError> {
    ridge::standardize(&design.x, &design.y).map_err(|error| match (error, readings.fit) {
        (ChainError::Regression(message), Fit::Regional) => {
            ChainError::Regression(format!("the regional fit over {} years: {message}", design.y.len()))
        }
        (error, _) => error,
    })
}

/// The row-only terms for the sample's interval length: the cached ones
/// when they match, else computed afresh.
fn terms_for<'t>(
    dataset: &Dataset,
    rows: &[Row],
    terms: &'t PanelTerms,
    interval_years: u32,
) -> Result<Cow<'t, PanelTerms>, ChainError> {
    if terms.interval_years == interval_years {
        Ok(Cow::Borrowed(terms))
    } else {
        Ok(Cow::Owned(PanelTerms::new(dataset, rows, interval_years)?))
    }
}

/// Run the chain on `rows` (the dataset's own rows, or noisy copies of them)
/// with the given parameters.
pub fn run_with_rows(
    dataset: &Dataset,
    rows: &[Row],
    terms: &PanelTerms,
    config: &Config,
    parameters: &Parameters,
    detail: Detail,
) -> Result<ChainResult, ChainError> {
    let n_units = dataset.n_units();
    let n_years = dataset.n_years();
    let years = dataset.years();
    let base_year = dataset.base_year();
    let horizon = config.scenarios.horizon;
    // Callers check the configuration against the dataset first
    // (`Config::problems_for`); this keeps the projection's size bounded
    // for any that do not.
    if let Some(problem) = projection_years_problem(base_year, config.scenarios.milestone, horizon) {
        return Err(ChainError::Regression(format!("the configuration does not fit the data: {problem}")));
    }

    // Section 2: indices, all finite.
    let indices = indices::compute(rows, n_years, &parameters.coefficients);
    for key in IndexKey::ALL {
        if let Some(i) = indices.get(key).iter().position(|v| !v.is_finite()) {
            return Err(ChainError::NonFinite {
                quantity: key.key(),
                unit: dataset.units()[i / n_years].id.clone(),
                year: years[i % n_years],
            });
        }
    }

    // Section 3: trends.
    let need_cs_sen = parameters.readings.neutral_sink == NeutralSink::SenExtrapolation;
    let trends: Vec<Vec<Trend>> = IndexKey::TRENDED
        .iter()
        .map(|&key| {
            let with_sen = detail == Detail::Full || (need_cs_sen && key == IndexKey::CS);
            trend::mann_kendall_many(indices.get(key), n_units, n_years)
                .into_iter()
                .enumerate()
                .map(|(u, mk)| Trend { sen: with_sen.then(|| trend::sen_slope(indices.series(key, u))), mk })
                .collect()
        })
        .collect();

    // Section 4: STIRPAT by ridge regression.
    let readings = &parameters.readings;
    let terms = terms_for(dataset, rows, terms, readings.interval_years)?;
    let design = stirpat_design(dataset, rows, &terms, &indices, readings)?;
    let standardized = standardize(&design, readings)?;
    let fit = standardized.fit(parameters.k)?;
    let r2 = fit.r_squared(&design.x, &design.y);
    let t_test_p = (detail == Detail::Full).then(|| {
        let fitted: Vec<f64> = design.x.iter().map(|row| math::exp(fit.predict(row))).collect();
        ridge::welch_t_test(&fitted, &design.response).1
    });

    // Section 5: projection, peaks, neutrality, CEP.
    let ce = indices.get(IndexKey::CE);
    let cs = indices.get(IndexKey::CS);
    let cs_trend = &trends[1];
    let mut projections: [Vec<UnitProjection>; 3] = Default::default();
    for scenario in Scenario::ALL {
        let mut unit_projections = Vec::with_capacity(n_units);
        for u in 0..n_units {
            let last = u * n_years + n_years - 1;
            let unit = UnitBase {
                unit_id: &dataset.units()[u].id,
                stats: &design.stats[u],
                ce_base: ce[last],
                cs_horizon: projection::horizon_sink(
                    readings.neutral_sink,
                    cs[last],
                    cs_trend[u].sen.unwrap_or(0.0),
                    base_year,
                    horizon,
                ),
            };
            unit_projections.push(projection::project_unit(
                &unit,
                scenario,
                &config.scenarios,
                &parameters.adjustments,
                &fit.coefficients,
                base_year,
            )?);
        }
        projections[scenario as usize] = unit_projections;
    }
    let cep: Vec<u8> = (0..n_units)
        .map(|u| {
            let peaks = std::array::from_fn(|s| projections[s][u].peak_year);
            let neutral_baseline = projections[Scenario::Baseline as usize][u].neutral;
            projection::carbon_emission_potential(peaks, neutral_baseline, config.scenarios.milestone)
        })
        .collect();

    // Section 6: scores, totals, zones.
    let base_cli: Vec<f64> = (0..n_units).map(|u| indices.series(IndexKey::CLI, u)[n_years - 1]).collect();
    let cli_scores = zoning::cli_scores(&base_cli, &config.zoning.cli_thresholds);
    let mut scores = vec![[0u8; 10]; n_units];
    for (i, &key) in IndexKey::TRENDED.iter().enumerate() {
        let score_key = ScoreKey::of_index(key).expect("trended indices have scores");
        let direction = zoning::direction(&config.zoning.direction, key);
        for u in 0..n_units {
            scores[u][score_key as usize] =
                zoning::trend_score(trends[i][u].mk.z, parameters.trend_threshold, direction);
        }
    }
    for u in 0..n_units {
        scores[u][ScoreKey::CEP as usize] = cep[u];
        scores[u][ScoreKey::CLI as usize] = cli_scores[u];
    }
    let total: Vec<u32> = scores.iter().map(|s| s.iter().map(|&v| u32::from(v)).sum()).collect();
    let zoning = zoning::zones(&total, &config.zoning);

    Ok(ChainResult {
        indices,
        trends,
        stirpat: Stirpat { fit, r2, t_test_p },
        base_year,
        projections,
        cep,
        scores,
        total,
        breaks: zoning.breaks,
        zone: zoning.zone,
    })
}

/// Run the chain on the dataset's own rows.
pub fn run(
    dataset: &Dataset,
    config: &Config,
    parameters: &Parameters,
    detail: Detail,
) -> Result<ChainResult, ChainError> {
    let terms = PanelTerms::new(dataset, dataset.rows(), parameters.readings.interval_years)?;
    run_with_rows(dataset, dataset.rows(), &terms, config, parameters, detail)
}

/// The ridge trace of the nominal (or given) parameters on the configured K
/// grid, and the standardized problem it came from.
pub fn ridge_trace(
    dataset: &Dataset,
    config: &Config,
    parameters: &Parameters,
) -> Result<(Vec<ridge::TracePoint>, ridge::Standardized), ChainError> {
    let indices = indices::compute(dataset.rows(), dataset.n_years(), &parameters.coefficients);
    let readings = &parameters.readings;
    let terms = PanelTerms::new(dataset, dataset.rows(), readings.interval_years)?;
    let design = stirpat_design(dataset, dataset.rows(), &terms, &indices, readings)?;
    let standardized = standardize(&design, readings)?;
    let trace = standardized.trace(&config.ridge.grid(), &design.x, &design.y)?;
    Ok((trace, standardized))
}
