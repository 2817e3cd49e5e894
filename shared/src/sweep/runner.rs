//! Running samples of a sweep: draw sample k's parameters, run the chain,
//! count the outcome. Sequential here; the worker spreads ranges over cores.

use std::ops::Range;

use crate::data::dataset::Dataset;
use crate::data::fields::Row;
use crate::error::ChainError;
use crate::model::chain::{self, Detail, PanelTerms, Parameters};
use crate::model::config::Config;
use crate::sweep::aggregate::{Aggregate, Outcome, Shape};
use crate::sweep::design::Side;
use crate::sweep::sensitivity::SensitivitySums;
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
    /// Check the configuration against the dataset ([`Config::problems_for`])
    /// and resolve the spec; a runner's [`SweepRunner::shape`] always passes
    /// [`Shape::check`], so its aggregates can be stored and decoded.
    pub fn new(dataset: &'a Dataset, config: &'a Config, spec: &SweepSpec) -> Result<SweepRunner<'a>, SweepError> {
        let mut problems = config.problems_for(dataset);
        if problems.is_empty() {
            let shape = Shape::new(dataset.n_units(), dataset.base_year(), config);
            problems.extend(shape.check().err());
        }
        if !problems.is_empty() {
            return Err(SweepError::Config(problems));
        }
        let plan = spec.plan(config)?;
        if let Some(sensitivity) = &plan.sensitivity {
            let shape = Shape::new(dataset.n_units(), dataset.base_year(), config);
            if let Some(problem) = SensitivitySums::size_problem(&shape, sensitivity.groups.len()) {
                return Err(SweepError::Invalid(vec![problem]));
            }
        }
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
        let mut cache = TermsCache::default();
        self.evaluate(&draw.parameters, draw.rows.as_deref().map(|rows| (RowsKey::A, rows)), &mut cache)
    }

    /// The chain's outcome at `parameters`, on the dataset's rows or on
    /// noisy `rows` (their row-only terms cached per sample by `key`).
    fn evaluate(
        &self,
        parameters: &Parameters,
        rows: Option<(RowsKey, &[Row])>,
        cache: &mut TermsCache,
    ) -> Result<Outcome, ChainError> {
        let interval_years = parameters.readings.interval_years;
        let result = match rows {
            Some((key, rows)) => {
                let at = match cache.0.iter().position(|(k, years, _)| *k == key && *years == interval_years) {
                    Some(at) => at,
                    None => {
                        cache.0.push((key, interval_years, PanelTerms::new(self.dataset, rows, interval_years)));
                        cache.0.len() - 1
                    }
                };
                let terms = cache.0[at].2.as_ref().map_err(Clone::clone)?;
                chain::run_with_rows(self.dataset, rows, terms, self.config, parameters, Detail::Sample)?
            }
            None => {
                let (_, terms) = self
                    .terms
                    .iter()
                    .find(|(years, _)| *years == interval_years)
                    .expect("the plan lists every interval length it draws");
                let terms = terms.as_ref().map_err(Clone::clone)?;
                chain::run_with_rows(self.dataset, self.dataset.rows(), terms, self.config, parameters, Detail::Sample)?
            }
        };
        Ok(Outcome::new(&result, self.config, parameters))
    }

    /// Base sample k of a sensitivity design: A's outcome (exactly
    /// [`SweepRunner::sample`]'s) and, when it succeeded, B's and each
    /// A_B^g's in group order, or the first of their failures.
    #[allow(clippy::type_complexity)]
    pub fn sensitivity_sample(
        &self,
        k: u64,
    ) -> Result<(Outcome, Result<(Outcome, Vec<Outcome>), ChainError>), ChainError> {
        let groups = &self.plan.sensitivity.as_ref().expect("a sensitivity sweep").groups;
        let rows = self.dataset.rows();
        let ua = self.plan.uniforms_of(k, Side::A);
        let ub = self.plan.uniforms_of(k, Side::B);
        let noise = self.plan.has_noise().then(|| {
            let a = self.plan.noise_factors(k, Side::A, rows.len());
            let b = self.plan.noise_factors(k, Side::B, rows.len());
            let rows_a = self.plan.apply_noise(rows, &a, &b, |_| false);
            let rows_b = self.plan.apply_noise(rows, &a, &b, |_| true);
            (a, b, rows_a, rows_b)
        });
        let mut cache = TermsCache::default();
        let parameters_a = self.plan.parameters(self.config, &ua);
        let a = self.evaluate(&parameters_a, noise.as_ref().map(|n| (RowsKey::A, &n.2[..])), &mut cache)?;
        let rest = (|| {
            let parameters_b = self.plan.parameters(self.config, &ub);
            let b = self.evaluate(&parameters_b, noise.as_ref().map(|n| (RowsKey::B, &n.3[..])), &mut cache)?;
            let mut ab = Vec::with_capacity(groups.len());
            for (g, group) in groups.iter().enumerate() {
                let mut u = ua.clone();
                for &d in &group.dimensions {
                    u[d] = ub[d];
                }
                let parameters = self.plan.parameters(self.config, &u);
                let mixed;
                let rows = match &noise {
                    Some((_, _, rows_a, _)) if group.noise.is_empty() => Some((RowsKey::A, &rows_a[..])),
                    Some((fa, fb, _, _)) => {
                        mixed = self.plan.apply_noise(rows, fa, fb, |f| group.takes_noise(f));
                        Some((RowsKey::Group(g), &mixed[..]))
                    }
                    None => None,
                };
                ab.push(self.evaluate(&parameters, rows, &mut cache)?);
            }
            Ok((b, ab))
        })();
        Ok((a, rest))
    }

    /// An aggregate without samples, with the sensitivity sums of a
    /// sensitivity sweep.
    pub fn empty_aggregate(&self) -> Aggregate {
        let shape = self.shape();
        let mut aggregate = Aggregate::empty(shape);
        aggregate.sensitivity = self.plan.sensitivity.as_ref().map(|s| SensitivitySums::zeros(&shape, s.group_names()));
        aggregate
    }

    /// Add sample k to an aggregate, as a success or a recorded failure; in
    /// a sensitivity sweep, also to the sensitivity sums when B and every
    /// A_B^g succeeded, to their incomplete count otherwise.
    pub fn add_sample(&self, aggregate: &mut Aggregate, k: u64) {
        if self.plan.sensitivity.is_none() {
            match self.sample(k) {
                Ok(outcome) => aggregate.add(&outcome),
                Err(error) => aggregate.add_failure(k, &error.kind(), &format!("sample {k}: {error}")),
            }
            return;
        }
        let shape = aggregate.shape;
        match self.sensitivity_sample(k) {
            Err(error) => aggregate.add_failure(k, &error.kind(), &format!("sample {k}: {error}")),
            Ok((a, rest)) => {
                aggregate.add(&a);
                let sums = aggregate.sensitivity.as_mut().expect("a sensitivity sweep's aggregate has its sums");
                match rest {
                    Ok((b, ab)) => sums.add(&shape, &a, &b, &ab),
                    Err(_) => sums.incomplete += 1,
                }
            }
        }
    }

    /// The aggregate of samples `range`, in order.
    pub fn run_range(&self, range: Range<u64>) -> Aggregate {
        let mut aggregate = self.empty_aggregate();
        for k in range {
            self.add_sample(&mut aggregate, k);
        }
        aggregate
    }
}

/// Which noisy rows a sample's run uses: A's, B's, or group g's mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowsKey {
    A,
    B,
    Group(usize),
}

/// The row-only terms of one sample's noisy rows, per rows and interval
/// length, so the runs of a base sample on the same rows share them.
#[derive(Default)]
struct TermsCache(Vec<(RowsKey, u32, Result<PanelTerms, ChainError>)>);
