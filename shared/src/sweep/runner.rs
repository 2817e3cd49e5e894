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
use crate::sweep::fast::{Accumulator, FastChain, Scratch};
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
    /// The fast path's per-runner data, when the sweep can take it: no
    /// data noise, no sensitivity design.
    fast: Option<FastChain>,
    mode: Mode,
}

/// Bytes one thread holds to run samples: [`SweepRunner::thread_memory`].
#[derive(Clone, Copy, Debug)]
pub struct ThreadMemory {
    pub scratch: usize,
    pub accumulator: usize,
}

/// Which chain [`SweepRunner::run_range`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The fast path ([`crate::sweep::fast`]) where the sweep allows it,
    /// the reference chain otherwise and for any sample the fast path
    /// leaves to it.
    #[default]
    Fast,
    /// The reference chain only: [`chain::run_with_rows`], [`Outcome::new`]
    /// and [`Aggregate::add`], sample by sample.
    Reference,
    /// Both, comparing every sample's outcome bit for bit and the two
    /// aggregates at the end (in a sensitivity design, every run's
    /// outcome); a difference is a defect of this program and stops the
    /// run with a panic that names the sample and what differs.
    Verify,
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
        let fast = (!plan.has_noise()).then(|| FastChain::new(dataset, config)).flatten();
        Ok(SweepRunner { dataset, config, plan, terms, fast, mode: Mode::default() })
    }

    /// The same runner running `mode`'s chain.
    pub fn with_mode(self, mode: Mode) -> SweepRunner<'a> {
        SweepRunner { mode, ..self }
    }

    /// Whether [`Mode::Fast`] takes the fast path for this sweep (it does
    /// not for data noise; a sensitivity design takes it for each run).
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
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

    /// One run of a sensitivity design: [`SweepRunner::evaluate`], by the
    /// fast path where the sweep has one (no data noise) and the mode and
    /// the sample allow it. [`Mode::Verify`] runs the reference chain too
    /// and panics at the first difference.
    fn evaluate_run(
        &self,
        parameters: &Parameters,
        rows: Option<(RowsKey, &[Row])>,
        cache: &mut TermsCache,
        scratch: &mut Scratch,
    ) -> Result<Outcome, ChainError> {
        if let (Some(fast), None, Mode::Fast | Mode::Verify) = (&self.fast, rows, self.mode)
            && let Some((_, Ok(terms))) =
                self.terms.iter().find(|(years, _)| *years == parameters.readings.interval_years)
            && fast.outcome_into(self.dataset, self.config, terms, parameters, scratch).is_ok()
        {
            if self.mode == Mode::Verify {
                let reference = self.evaluate(parameters, rows, cache).unwrap_or_else(|error| {
                    panic!("verify: a sensitivity run: the fast path succeeded where the reference failed: {error}")
                });
                if let Some(difference) = first_difference(&scratch.outcome, &reference) {
                    panic!("verify: a sensitivity run: the fast path and the reference chain differ: {difference}");
                }
            }
            return Ok(scratch.outcome.clone());
        }
        self.evaluate(parameters, rows, cache)
    }

    /// Base sample k of a sensitivity design: A's outcome (exactly
    /// [`SweepRunner::sample`]'s) and, when it succeeded, B's and each
    /// A_B^g's in group order, or the first of their failures.
    #[allow(clippy::type_complexity)]
    pub fn sensitivity_sample(
        &self,
        k: u64,
    ) -> Result<(Outcome, Result<(Outcome, Vec<Outcome>), ChainError>), ChainError> {
        self.sensitivity_sample_in(k, &mut Scratch::default())
    }

    /// [`SweepRunner::sensitivity_sample`] with the fast path's buffers of
    /// `scratch`.
    #[allow(clippy::type_complexity)]
    fn sensitivity_sample_in(
        &self,
        k: u64,
        scratch: &mut Scratch,
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
        let a =
            self.evaluate_run(&parameters_a, noise.as_ref().map(|n| (RowsKey::A, &n.2[..])), &mut cache, scratch)?;
        let rest = (|| {
            let parameters_b = self.plan.parameters(self.config, &ub);
            let b =
                self.evaluate_run(&parameters_b, noise.as_ref().map(|n| (RowsKey::B, &n.3[..])), &mut cache, scratch)?;
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
                ab.push(self.evaluate_run(&parameters, rows, &mut cache, scratch)?);
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
        self.add_sample_in(aggregate, k, &mut Scratch::default());
    }

    /// [`SweepRunner::add_sample`] with the fast path's buffers of `scratch`.
    fn add_sample_in(&self, aggregate: &mut Aggregate, k: u64, scratch: &mut Scratch) {
        if self.plan.sensitivity.is_none() {
            match self.sample(k) {
                Ok(outcome) => aggregate.add(&outcome),
                Err(error) => aggregate.add_failure(k, &error.kind(), &format!("sample {k}: {error}")),
            }
            return;
        }
        let shape = aggregate.shape;
        match self.sensitivity_sample_in(k, scratch) {
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

    /// The aggregate of samples `range`, in order, by the runner's [`Mode`].
    pub fn run_range(&self, range: Range<u64>) -> Aggregate {
        if self.plan.sensitivity.is_some() {
            // Each run of a base sample picks its chain by the mode.
            let mut aggregate = self.empty_aggregate();
            let mut scratch = Scratch::default();
            for k in range {
                self.add_sample_in(&mut aggregate, k, &mut scratch);
            }
            return aggregate;
        }
        match (&self.fast, self.mode) {
            (None, _) | (_, Mode::Reference) => {
                let mut aggregate = self.empty_aggregate();
                for k in range {
                    self.add_sample(&mut aggregate, k);
                }
                aggregate
            }
            (Some(_), Mode::Fast) => {
                let mut accumulator = self.accumulator();
                self.run_into(range, &mut Scratch::default(), &mut accumulator);
                accumulator.finish()
            }
            (Some(fast), Mode::Verify) => self.verify_range(fast, range),
        }
    }

    /// The memory one thread running a job of this sweep's first `samples`
    /// samples holds beside the job's count tables: the fast path's buffers,
    /// and its accumulator's pending histogram bins and per-job counters of
    /// the histograms (zero on the reference chain, which holds a sample's
    /// intermediate results only while it runs).
    pub fn thread_memory(&self, samples: u64) -> ThreadMemory {
        if self.fast.is_none() {
            return ThreadMemory { scratch: 0, accumulator: 0 };
        }
        let mut scratch = Scratch::default();
        let mut accumulator = Accumulator::new(self.empty_aggregate());
        self.run_into(0..samples.max(1), &mut scratch, &mut accumulator);
        ThreadMemory { scratch: scratch.heap_bytes(), accumulator: accumulator.heap_bytes() }
    }

    /// Whether the fast path computes sample k itself (rather than leaving
    /// it to the reference chain); `false` for a sweep without a fast path.
    pub fn fast_path_takes(&self, k: u64) -> bool {
        self.fast.as_ref().is_some_and(|fast| self.fast_outcome(fast, &mut Scratch::default(), k))
    }

    /// An empty accumulator of this sweep's samples, for [`SweepRunner::run_into`].
    pub fn accumulator(&self) -> Accumulator {
        Accumulator::new(self.empty_aggregate())
    }

    /// Add samples `range` to `accumulator` by the fast path, with the
    /// buffers of `scratch`, which a thread keeps from range to range: once
    /// they have grown, a sample allocates nothing. Samples the fast path
    /// leaves to the reference chain, and sweeps without a fast path, run
    /// the reference chain (which allocates); so does a sensitivity design,
    /// which keeps each run's outcome. [`Mode::Verify`] is
    /// [`SweepRunner::run_range`]'s: here it runs the fast path.
    pub fn run_into(&self, range: Range<u64>, scratch: &mut Scratch, accumulator: &mut Accumulator) {
        if self.plan.sensitivity.is_some() {
            // A base sample is 2 + G runs and sums beside the counts; each
            // run's outcome is copied out of `scratch` (an allocation per run).
            for k in range {
                self.add_sample_in(accumulator.aggregate_mut(), k, scratch);
            }
            return;
        }
        for k in range {
            match &self.fast {
                Some(fast) if self.mode != Mode::Reference => self.add_fast_sample(fast, scratch, accumulator, k),
                _ => match self.sample(k) {
                    Ok(outcome) => accumulator.add(&outcome),
                    Err(error) => {
                        accumulator.aggregate_mut().add_failure(k, &error.kind(), &format!("sample {k}: {error}"))
                    }
                },
            }
        }
    }

    /// Sample k by the fast path into `scratch.outcome`, `false` when it
    /// leaves the sample to the reference chain.
    fn fast_outcome(&self, fast: &FastChain, scratch: &mut Scratch, k: u64) -> bool {
        let mut uniforms = std::mem::take(&mut scratch.uniforms);
        self.plan.uniforms_into(k, Side::A, &mut uniforms);
        let parameters = self.plan.parameters(self.config, &uniforms);
        scratch.uniforms = uniforms;
        let Some((_, Ok(terms))) = self.terms.iter().find(|(years, _)| *years == parameters.readings.interval_years)
        else {
            return false;
        };
        fast.outcome_into(self.dataset, self.config, terms, &parameters, scratch).is_ok()
    }

    fn add_fast_sample(&self, fast: &FastChain, scratch: &mut Scratch, accumulator: &mut Accumulator, k: u64) {
        if self.fast_outcome(fast, scratch, k) {
            accumulator.add(&scratch.outcome);
            return;
        }
        match self.sample(k) {
            Ok(outcome) => accumulator.add(&outcome),
            Err(error) => accumulator.aggregate_mut().add_failure(k, &error.kind(), &format!("sample {k}: {error}")),
        }
    }

    /// [`Mode::Verify`]: both chains on every sample, compared.
    fn verify_range(&self, fast: &FastChain, range: Range<u64>) -> Aggregate {
        let mut scratch = Scratch::default();
        let mut accumulator = Accumulator::new(self.empty_aggregate());
        let mut reference = self.empty_aggregate();
        for k in range {
            let by_fast_path = self.fast_outcome(fast, &mut scratch, k);
            match self.sample(k) {
                Ok(outcome) => {
                    if by_fast_path {
                        if let Some(difference) = first_difference(&scratch.outcome, &outcome) {
                            panic!("verify: sample {k}: the fast path and the reference chain differ: {difference}");
                        }
                    }
                    reference.add(&outcome);
                }
                Err(error) => {
                    assert!(
                        !by_fast_path,
                        "verify: sample {k}: the fast path succeeded where the reference failed: {error}"
                    );
                    reference.add_failure(k, &error.kind(), &format!("sample {k}: {error}"));
                }
            }
            self.add_fast_sample(fast, &mut scratch, &mut accumulator, k);
        }
        let aggregate = accumulator.finish();
        assert!(aggregate == reference, "verify: the fast path's aggregate differs from the reference chain's");
        aggregate
    }
}

/// The first field in which two outcomes differ, comparing numbers bit for
/// bit (their `Debug` text is the shortest text that reads back to the same
/// bits), or `None` when they are identical.
fn first_difference(fast: &Outcome, reference: &Outcome) -> Option<String> {
    if fast.units.len() != reference.units.len() {
        return Some(format!("{} units and {}", fast.units.len(), reference.units.len()));
    }
    for (u, (a, b)) in fast.units.iter().zip(&reference.units).enumerate() {
        let (a, b) = (format!("{a:?}"), format!("{b:?}"));
        if a != b {
            return Some(format!("unit {u}: fast {a}, reference {b}"));
        }
    }
    for (s, (a, b)) in fast.regional_ce.iter().zip(&reference.regional_ce).enumerate() {
        let (a, b) = (format!("{a:?}"), format!("{b:?}"));
        if a != b {
            return Some(format!("regional CE of scenario {s}: fast {a}, reference {b}"));
        }
    }
    let (a, b) = (
        format!("{:?} {:?} {:?}", fast.coefficients, fast.r2, fast.k),
        format!("{:?} {:?} {:?}", reference.coefficients, reference.r2, reference.k),
    );
    (a != b).then(|| format!("coefficients, R², K: fast {a}, reference {b}"))
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
