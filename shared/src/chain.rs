//! The whole chain of MODEL.md sections 2–6 for one set of parameters:
//! indices → trends → STIRPAT ridge → scenario projection → scores → zones.

use crate::coefficients::Coefficients;
use crate::config::{Config, Driver, NeutralSink, Scenario};
use crate::dataset::Dataset;
use crate::error::ChainError;
use crate::fields::{Field, Row};
use crate::indices::{self, IndexKey, Indices};
use crate::projection::{self, DriverStats, RuleAdjustments, UnitBase, UnitProjection};
use crate::ridge::{self, N_PREDICTORS, RidgeFit};
use crate::trend::{self, MannKendall};
use crate::zoning::{self, ScoreKey, Scores};

/// The parameters a sweep samples; [`Parameters::nominal`] is one `evaluate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameters {
    pub coefficients: Coefficients,
    pub k: f64,
    pub trend_threshold: f64,
    pub adjustments: RuleAdjustments,
}

impl Parameters {
    /// The configuration's own values: no sampling.
    pub fn nominal(config: &Config) -> Parameters {
        Parameters {
            coefficients: config.coefficients.clone(),
            k: config.ridge.k,
            trend_threshold: config.zoning.trend_threshold,
            adjustments: RuleAdjustments::default(),
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
/// computed once per panel: a sweep without data noise reuses them for
/// every sample, since only TI (through the tce coefficients) and CEI
/// (through CE) change with the sampled parameters.
#[derive(Clone, Debug)]
pub struct PanelTerms {
    /// ln P, ln W, ln IS, ln UR of every row.
    logs: Vec<[f64; 4]>,
    /// Per unit: the statistics of P, W, IS, UR.
    stats: Vec<[DriverStats; 4]>,
}

/// Where the row-only drivers sit among the predictors.
const ROW_ONLY_DRIVERS: [usize; 4] = [Driver::P as usize, Driver::W as usize, Driver::IS as usize, Driver::UR as usize];

fn positive(value: f64, driver: Driver, dataset: &Dataset, i: usize) -> Result<f64, ChainError> {
    if value > 0.0 && value.is_finite() {
        Ok(value)
    } else {
        let n_years = dataset.n_years();
        Err(ChainError::NonPositive {
            quantity: driver.key(),
            unit: dataset.units()[i / n_years].id.clone(),
            year: dataset.years()[i % n_years],
            value,
        })
    }
}

impl PanelTerms {
    pub fn new(dataset: &Dataset, rows: &[Row]) -> Result<PanelTerms, ChainError> {
        let n_years = dataset.n_years();
        let mut logs = Vec::with_capacity(rows.len());
        let mut levels = vec![[0.0; 4]; rows.len()];
        for (i, row) in rows.iter().enumerate() {
            let v = |f: Field| row[f as usize];
            let drivers = [
                positive(v(Field::Population), Driver::P, dataset, i)?,
                positive(v(Field::Gdp) / v(Field::Population), Driver::W, dataset, i)?,
                positive(100.0 * v(Field::SecondaryGdp) / v(Field::Gdp), Driver::IS, dataset, i)?,
                positive(100.0 * v(Field::UrbanPopulation) / v(Field::Population), Driver::UR, dataset, i)?,
            ];
            levels[i] = drivers;
            logs.push(drivers.map(f64::ln));
        }
        let stats = (0..dataset.n_units())
            .map(|u| {
                let unit = &levels[u * n_years..(u + 1) * n_years];
                std::array::from_fn(|j| {
                    let series: Vec<f64> = unit.iter().map(|l| l[j]).collect();
                    DriverStats::of(&series)
                })
            })
            .collect();
        Ok(PanelTerms { logs, stats })
    }
}

/// The logged STIRPAT predictors and response of every row, and each unit's
/// driver statistics.
struct Design {
    x: Vec<[f64; N_PREDICTORS]>,
    y: Vec<f64>,
    stats: Vec<[DriverStats; N_PREDICTORS]>,
}

fn design(dataset: &Dataset, rows: &[Row], terms: &PanelTerms, indices: &Indices) -> Result<Design, ChainError> {
    let n_years = dataset.n_years();
    let ce = indices.get(IndexKey::CE);
    let mut x = Vec::with_capacity(rows.len());
    let mut y = Vec::with_capacity(rows.len());
    let mut ti = vec![0.0; n_years];
    let mut cei = vec![0.0; n_years];
    let mut stats = Vec::with_capacity(dataset.n_units());
    for u in 0..dataset.n_units() {
        for t in 0..n_years {
            let i = u * n_years + t;
            let row = &rows[i];
            ti[t] = positive(row[Field::Gdp as usize] / indices.energy_tce[i], Driver::TI, dataset, i)?;
            cei[t] = positive(ce[i] / row[Field::SecondaryGdp as usize], Driver::CEI, dataset, i)?;
            let fixed = &terms.logs[i];
            x.push([fixed[0], fixed[1], fixed[2], ti[t].ln(), fixed[3], cei[t].ln()]);
            y.push(ce[i].ln());
        }
        let fixed = &terms.stats[u];
        let mut unit_stats = [DriverStats::of(&ti); N_PREDICTORS];
        for (j, &d) in ROW_ONLY_DRIVERS.iter().enumerate() {
            unit_stats[d] = fixed[j];
        }
        unit_stats[Driver::CEI as usize] = DriverStats::of(&cei);
        stats.push(unit_stats);
    }
    Ok(Design { x, y, stats })
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
    if horizon <= base_year {
        return Err(ChainError::Regression(format!(
            "the projection horizon {horizon} is not after the base year {base_year}"
        )));
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
    let need_cs_sen = config.scenarios.neutral_sink == NeutralSink::SenExtrapolation;
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
    let design = design(dataset, rows, terms, &indices)?;
    let standardized = ridge::standardize(&design.x, &design.y)?;
    let fit = standardized.fit(parameters.k)?;
    let r2 = fit.r_squared(&design.x, &design.y);
    let t_test_p = (detail == Detail::Full).then(|| {
        let fitted: Vec<f64> = design.x.iter().map(|row| fit.predict(row).exp()).collect();
        ridge::welch_t_test(&fitted, indices.get(IndexKey::CE)).1
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
                    config.scenarios.neutral_sink,
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
    let terms = PanelTerms::new(dataset, dataset.rows())?;
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
    let terms = PanelTerms::new(dataset, dataset.rows())?;
    let design = design(dataset, dataset.rows(), &terms, &indices)?;
    let standardized = ridge::standardize(&design.x, &design.y)?;
    let trace = standardized.trace(&config.ridge, &design.x, &design.y)?;
    Ok((trace, standardized))
}
