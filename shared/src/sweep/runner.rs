//! Running samples of a sweep: draw sample k's parameters, run the chain,
//! count the outcome. Sequential here; the worker spreads ranges over cores.

use std::ops::Range;

use crate::data::dataset::Dataset;
use crate::error::ChainError;
use crate::model::chain::{self, Detail, PanelTerms};
use crate::model::config::Config;
use crate::model::projection;
use crate::sweep::aggregate::{Aggregate, Outcome, Shape};
use crate::sweep::{Plan, SweepError, SweepSpec};

/// A sweep ready to run: dataset, configuration and resolved spec.
#[derive(Clone, Debug)]
pub struct SweepRunner<'a> {
    dataset: &'a Dataset,
    config: &'a Config,
    plan: Plan,
    /// The row-only terms of the dataset's own rows for every interval
    /// length the plan can draw, reused by every sample without data noise;
    /// `Err` when those rows cannot be modelled at all.
    terms: Vec<(u32, Result<PanelTerms, ChainError>)>,
}

impl<'a> SweepRunner<'a> {
    pub fn new(dataset: &'a Dataset, config: &'a Config, spec: &SweepSpec) -> Result<SweepRunner<'a>, SweepError> {
        let mut problems = config.problems();
        // Every sample would fail, and the aggregate of a longer projection
        // would not pass the wire: refused before any job runs.
        problems.extend(projection::horizon_problem(config.scenarios.horizon, dataset.base_year()));
        if !problems.is_empty() {
            return Err(SweepError::Invalid(problems));
        }
        let plan = spec.plan(config)?;
        let terms = plan
            .interval_years_drawn(config)
            .into_iter()
            .map(|years| (years, PanelTerms::new(dataset, dataset.rows(), years)))
            .collect();
        Ok(SweepRunner { dataset, config, plan, terms })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn shape(&self) -> Shape {
        Shape::new(self.dataset.n_units(), self.dataset.base_year(), self.config)
    }

    /// Sample k's outcome: a pure function of (dataset, config, spec, k).
    pub fn sample(&self, k: u64) -> Result<Outcome, ChainError> {
        let draw = self.plan.draw(k, self.config, self.dataset.rows());
        let interval_years = draw.parameters.readings.interval_years;
        let result = match &draw.rows {
            Some(rows) => {
                let terms = PanelTerms::new(self.dataset, rows, interval_years)?;
                chain::run_with_rows(self.dataset, rows, &terms, self.config, &draw.parameters, Detail::Sample)?
            }
            None => {
                let (_, terms) = self
                    .terms
                    .iter()
                    .find(|(years, _)| *years == interval_years)
                    .expect("the plan lists every interval length it draws");
                let terms = terms.as_ref().map_err(Clone::clone)?;
                chain::run_with_rows(
                    self.dataset,
                    self.dataset.rows(),
                    terms,
                    self.config,
                    &draw.parameters,
                    Detail::Sample,
                )?
            }
        };
        Ok(Outcome::new(&result, self.config, &draw.parameters))
    }

    /// Add sample k to an aggregate, as a success or a recorded failure.
    pub fn add_sample(&self, aggregate: &mut Aggregate, k: u64) {
        match self.sample(k) {
            Ok(outcome) => aggregate.add(&outcome),
            Err(error) => aggregate.add_failure(k, &error.kind(), &format!("sample {k}: {error}")),
        }
    }

    /// The aggregate of samples `range`, in order.
    pub fn run_range(&self, range: Range<u64>) -> Aggregate {
        let mut aggregate = Aggregate::empty(self.shape());
        for k in range {
            self.add_sample(&mut aggregate, k);
        }
        aggregate
    }
}
