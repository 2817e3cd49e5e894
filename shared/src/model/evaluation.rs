//! The `evaluate --json` document (docs/model.md section 13): one nominal run with
//! every intermediate result.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::dataset::Dataset;
use crate::model::chain::ChainResult;
use crate::model::config::{Driver, Scenario};
use crate::model::indices::IndexKey;
use crate::model::zoning::ScoreKey;
use crate::numerics::ridge::N_PREDICTORS;

/// Trend statistics of one index, per unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrendDocument {
    pub sen: Vec<f64>,
    pub s: Vec<i64>,
    pub var_s: Vec<f64>,
    pub z: Vec<f64>,
}

/// The fitted STIRPAT model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StirpatDocument {
    pub k: f64,
    pub intercept: f64,
    pub coefficients: BTreeMap<String, f64>,
    pub standardized: BTreeMap<String, f64>,
    pub vif: BTreeMap<String, f64>,
    pub r2: f64,
    /// `null` when the test is undefined (no variance).
    pub t_test_p: Option<f64>,
}

/// One scenario's projection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionDocument {
    pub years: Vec<i32>,
    pub ce: Vec<Vec<f64>>,
    pub peak_year: Vec<Option<i32>>,
    pub neutral_2060: Vec<bool>,
}

/// The whole document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluateDocument {
    pub units: Vec<String>,
    pub years: Vec<i32>,
    pub indices: BTreeMap<String, Vec<Vec<f64>>>,
    pub trend: BTreeMap<String, TrendDocument>,
    pub stirpat: StirpatDocument,
    pub projection: BTreeMap<String, ProjectionDocument>,
    pub cep: Vec<u8>,
    pub scores: BTreeMap<String, Vec<u8>>,
    pub total: Vec<u32>,
    pub breaks: Vec<u32>,
    pub zone: Vec<u8>,
}

fn by_driver(values: &[f64; N_PREDICTORS]) -> BTreeMap<String, f64> {
    Driver::ALL.iter().zip(values).map(|(d, v)| (d.key().to_owned(), *v)).collect()
}

impl EvaluateDocument {
    /// The document of a [`crate::model::chain::Detail::Full`] run on `dataset`.
    pub fn new(dataset: &Dataset, result: &ChainResult) -> EvaluateDocument {
        let n_units = dataset.n_units();
        let indices = IndexKey::ALL
            .iter()
            .map(|&key| {
                let per_unit = (0..n_units).map(|u| result.indices.series(key, u).to_vec()).collect();
                (key.key().to_owned(), per_unit)
            })
            .collect();
        let trend = IndexKey::TRENDED
            .iter()
            .zip(&result.trends)
            .map(|(key, trends)| {
                let document = TrendDocument {
                    sen: trends.iter().map(|t| t.sen.unwrap_or(f64::NAN)).collect(),
                    s: trends.iter().map(|t| t.mk.s as i64).collect(),
                    var_s: trends.iter().map(|t| t.mk.var_s).collect(),
                    z: trends.iter().map(|t| t.mk.z).collect(),
                };
                (key.key().to_owned(), document)
            })
            .collect();
        let fit = &result.stirpat.fit;
        let stirpat = StirpatDocument {
            k: fit.k,
            intercept: fit.intercept,
            coefficients: by_driver(&fit.coefficients),
            standardized: by_driver(&fit.standardized),
            vif: by_driver(&fit.vif),
            r2: result.stirpat.r2,
            t_test_p: result.stirpat.t_test_p.filter(|p| p.is_finite()),
        };
        let projection = Scenario::ALL
            .iter()
            .map(|&scenario| {
                let units = &result.projections[scenario as usize];
                let n = units.first().map_or(0, |p| p.ce.len());
                let document = ProjectionDocument {
                    years: (0..n as i32).map(|i| result.base_year + i).collect(),
                    ce: units.iter().map(|p| p.ce.clone()).collect(),
                    peak_year: units.iter().map(|p| p.peak_year).collect(),
                    neutral_2060: units.iter().map(|p| p.neutral).collect(),
                };
                (scenario.key().to_owned(), document)
            })
            .collect();
        let scores = ScoreKey::ALL
            .iter()
            .map(|&key| (key.key().to_owned(), result.scores.iter().map(|s| s[key as usize]).collect()))
            .collect();
        EvaluateDocument {
            units: dataset.units().iter().map(|u| u.id.clone()).collect(),
            years: dataset.years().to_vec(),
            indices,
            trend,
            stirpat,
            projection,
            cep: result.cep.clone(),
            scores,
            total: result.total.clone(),
            breaks: result.breaks.clone(),
            zone: result.zone.clone(),
        }
    }
}
