//! Variance-based group sensitivity (docs/model.md section 8, "Group sensitivity"): which groups
//! of uncertain inputs drive each unit's total score and zone.
//!
//! Sample k of a sensitivity sweep is a base sample of Saltelli's (2010)
//! design: A_k is the plain sweep's sample k, B_k an independent one
//! ([`Side::B`](crate::sweep::design::Side)), and A_B^g is A_k with group g's
//! inputs taken from B_k, so each sample runs the chain 2 + G times. The
//! runner adds integer sums of the outputs and their products to
//! [`SensitivitySums`], which merge exactly like every other count of an
//! aggregate; the indices are computed from the sums at query time:
//!
//! - V from A and B pooled;
//! - first order S_g = mean(f_B (f_AB − f_A)) / V (Saltelli 2010);
//! - total ST_g = mean((f_A − f_AB)²) / (2V) (Jansen 1999);
//! - 95 % intervals from the asymptotic normal distribution of the two
//!   means, V taken as known (its own sampling error is not included).

use std::collections::BTreeMap;

use glob::Pattern;
use serde::Serialize;

use crate::data::fields::{Field, FieldGroup, N_FIELDS};
use crate::model::coefficients::COEFFICIENT_NAMES;
use crate::model::config::Driver;
use crate::sweep::aggregate::{MAX_TOTAL, MergeError, Outcome, Shape};
use crate::sweep::plan::{Dimension, Target};
use crate::sweep::spec::{SensitivityGroups, SensitivityMethod, SensitivitySpec};

/// The most groups a sensitivity design may have (more than a plan can make:
/// every group holds at least one of the at most a few hundred factors).
pub const MAX_GROUPS: usize = 512;
/// The longest group name.
pub const MAX_GROUP_NAME: usize = 64;
/// The most sums a sensitivity design may keep (units × outputs × (4 + 6 ×
/// groups)): 64 MiB in memory, so results stay well within the message
/// limits; 81 units, 5 zones and 15 groups take 45,684.
pub const MAX_SENSITIVITY_SUMS: usize = 1 << 23;

/// One group of factors: the dimensions (indices into [`Plan::dimensions`],
/// uncertain ones only) and the noisy field groups it takes from B.
///
/// [`Plan::dimensions`]: crate::sweep::Plan::dimensions
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactorGroup {
    pub name: String,
    pub dimensions: Vec<usize>,
    pub noise: Vec<FieldGroup>,
}

impl FactorGroup {
    /// Whether field `field`'s noise factors come from B in A_B^g.
    pub fn takes_noise(&self, field: Field) -> bool {
        self.noise.contains(&field.group())
    }
}

/// The resolved sensitivity design of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensitivityPlan {
    pub method: SensitivityMethod,
    pub groups: Vec<FactorGroup>,
}

impl SensitivityPlan {
    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }
}

/// A factor of the analysis: an uncertain dimension or a noisy field group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Factor {
    Dimension(usize),
    Noise(FieldGroup),
}

/// The name of a noise factor: `noise.<field group>`.
fn noise_name(group: FieldGroup) -> String {
    format!("noise.{}", group.key())
}

/// The default group of a dimension: `k`, `trend_threshold`, `rate.<driver>`,
/// `cap`, `coefficient.<family>` or the reading's own name.
fn default_group(dimension: &Dimension) -> String {
    match dimension.target {
        Target::K => "k".to_owned(),
        Target::TrendThreshold => "trend_threshold".to_owned(),
        Target::Rate { driver, .. } => format!("rate.{}", driver.key()),
        Target::Cap { .. } => "cap".to_owned(),
        Target::Coefficient(c) => {
            format!("coefficient.{}", COEFFICIENT_NAMES[c].split('.').next().expect("a coefficient has a name"))
        }
        Target::Reading(_) => dimension.name.clone(),
    }
}

/// The order of the default groups: K, the trend threshold, rates by driver,
/// caps, coefficient families in table order, readings, noise.
fn default_rank(dimension: &Dimension) -> (usize, usize) {
    match dimension.target {
        Target::K => (0, 0),
        Target::TrendThreshold => (1, 0),
        Target::Rate { driver, .. } => (2, Driver::ALL.iter().position(|d| *d == driver).unwrap_or(0)),
        Target::Cap { .. } => (3, 0),
        Target::Coefficient(c) => (4, c),
        Target::Reading(r) => (5, r),
    }
}

/// Names listed in a message: the first dozen and how many more.
fn listed(names: &[String]) -> String {
    const SHOWN: usize = 12;
    if names.is_empty() {
        return "none".to_owned();
    }
    let mut text = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// Resolve the groups of `spec` against a plan's dimensions and noise; the
/// problems go to `problems`. With custom groups, factors no group matches
/// are left out of the analysis: they still vary between A and B (so they
/// count in V) but get no index.
pub(crate) fn resolve(
    spec: &SensitivitySpec,
    dimensions: &[Dimension],
    noise_sigma: &[f64; N_FIELDS],
    problems: &mut Vec<String>,
) -> Option<SensitivityPlan> {
    let mut factors: Vec<(String, Factor)> = dimensions
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.distribution.is_fixed())
        .map(|(i, d)| (d.name.clone(), Factor::Dimension(i)))
        .collect();
    for group in FieldGroup::ALL {
        if Field::ALL.iter().any(|f| f.group() == group && noise_sigma[*f as usize] > 0.0) {
            factors.push((noise_name(group), Factor::Noise(group)));
        }
    }
    let mut groups: Vec<FactorGroup> = Vec::new();
    let add = |groups: &mut Vec<FactorGroup>, name: &str, factor: Factor| {
        let position = match groups.iter().position(|g| g.name == name) {
            Some(p) => p,
            None => {
                groups.push(FactorGroup { name: name.to_owned(), dimensions: Vec::new(), noise: Vec::new() });
                groups.len() - 1
            }
        };
        match factor {
            Factor::Dimension(i) => groups[position].dimensions.push(i),
            Factor::Noise(g) => groups[position].noise.push(g),
        }
    };
    match &spec.groups {
        SensitivityGroups::Default => {
            let mut ranked: Vec<((usize, usize), String, Factor)> = factors
                .iter()
                .map(|(name, factor)| match *factor {
                    Factor::Dimension(i) => (default_rank(&dimensions[i]), default_group(&dimensions[i]), *factor),
                    Factor::Noise(g) => ((6, g as usize), name.clone(), *factor),
                })
                .collect();
            // Stable: members keep the plan's order within a group.
            ranked.sort_by_key(|(rank, _, _)| *rank);
            for (_, name, factor) in ranked {
                add(&mut groups, &name, factor);
            }
        }
        SensitivityGroups::Custom(table) => {
            if table.is_empty() {
                problems.push(
                    "sensitivity.groups is an empty table; name at least one group, or write groups = \"default\""
                        .to_owned(),
                );
                return None;
            }
            let names: Vec<String> = factors.iter().map(|(n, _)| n.clone()).collect();
            let mut owner: BTreeMap<usize, &str> = BTreeMap::new();
            for (name, globs) in table {
                let at = format!("sensitivity group `{name}`");
                if name.is_empty() || name.chars().count() > MAX_GROUP_NAME || name.chars().any(char::is_control) {
                    problems.push(format!(
                        "{at}: a group name must be 1–{MAX_GROUP_NAME} characters without control characters"
                    ));
                    continue;
                }
                if globs.is_empty() {
                    problems.push(format!(
                        "{at} is empty; give it at least one glob over parameter names (e.g. \"rate.*\")"
                    ));
                    continue;
                }
                let mut members = Vec::new();
                for text in globs {
                    let pattern = match Pattern::new(text) {
                        Ok(p) => p,
                        Err(e) => {
                            problems.push(format!("{at}: `{text}` is not a valid pattern: {e}"));
                            continue;
                        }
                    };
                    let matched: Vec<usize> = (0..factors.len()).filter(|&f| pattern.matches(&factors[f].0)).collect();
                    if matched.is_empty() {
                        problems.push(format!(
                            "{at}: `{text}` matches no uncertain parameter (or noisy field group); they are {}",
                            listed(&names)
                        ));
                    }
                    members.extend(matched);
                }
                members.sort_unstable();
                members.dedup();
                for f in members {
                    if let Some(other) = owner.insert(f, name) {
                        problems.push(format!(
                            "`{}` is in sensitivity groups `{other}` and `{name}`; a parameter may be in one group only",
                            factors[f].0
                        ));
                        continue;
                    }
                    add(&mut groups, name, factors[f].1);
                }
            }
        }
    }
    if groups.is_empty() {
        problems.push(
            "the sensitivity design has no group: the spec has no uncertain parameter and no data noise".to_owned(),
        );
        return None;
    }
    if groups.len() > MAX_GROUPS {
        problems.push(format!("the sensitivity design has {} groups; at most {MAX_GROUPS} are allowed", groups.len()));
        return None;
    }
    Some(SensitivityPlan { method: spec.method, groups })
}

/// Sums per slot of a unit and output: Σf_A, Σf_A², Σf_B, Σf_B².
const BASE_SLOTS: usize = 4;
/// The names of the base slots, in order, as exports write them.
pub const BASE_SLOT_NAMES: [&str; BASE_SLOTS] = ["sum_fa", "sum_fa2", "sum_fb", "sum_fb2"];
/// The names of the group slots, in order (d = f_AB − f_A), as exports write them.
pub const GROUP_SLOT_NAMES: [&str; GROUP_SLOTS] =
    ["sum_d", "sum_fb_d", "sum_fb_d_squared", "sum_d2", "sum_d4", "sum_fb_d2"];
/// Sums per slot of a unit, output and group, with d = f_AB − f_A:
/// Σd, Σf_B·d, Σ(f_B·d)², Σd², Σd⁴, Σf_B·d². With them the first-order
/// term can be centred at query time, (f_B − f̄)·d, as SALib centres its
/// outputs: the same estimator in expectation, with far less variance when
/// the mean is large against the spread (a total score of 30 ± 1).
const GROUP_SLOTS: usize = 6;
/// The largest magnitude one sample adds to each slot: outputs are totals
/// (10–50) or indicators (0–1), so |f| ≤ 50 and |f_AB − f_A| ≤ 40.
const MAX_F: i64 = MAX_TOTAL as i64;
const MAX_D: i64 = (MAX_TOTAL - crate::sweep::aggregate::MIN_TOTAL) as i64;
const BASE_BOUNDS: [i64; BASE_SLOTS] = [MAX_F, MAX_F * MAX_F, MAX_F, MAX_F * MAX_F];
const GROUP_BOUNDS: [i64; GROUP_SLOTS] = [
    MAX_D,
    MAX_F * MAX_D,
    MAX_F * MAX_D * MAX_F * MAX_D,
    MAX_D * MAX_D,
    MAX_D * MAX_D * MAX_D * MAX_D,
    MAX_F * MAX_D * MAX_D,
];
/// Whether a slot's sum may be negative (Σd and Σf_B·d).
const GROUP_SIGNED: [bool; GROUP_SLOTS] = [true, true, false, false, false, false];

/// The most samples whose sums fit in an i64 whatever the outputs: the
/// largest per-sample term is 4 × 10⁶ ((f_B·d)², with |f_B·d| ≤ 2000), so
/// sweeps of up to 2.3 × 10¹² samples cannot overflow. The coordinator's
/// sample limit is checked against it; merges are checked all the same.
pub const MAX_SENSITIVITY_SAMPLES: u64 = (i64::MAX / GROUP_BOUNDS[2]) as u64;

/// Which output of a unit: its total score, or the indicator of one zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Total,
    /// 1{zone = z}, z in 1..=n_zones.
    Zone(usize),
}

/// The mergeable sums of a sensitivity sweep: per unit, output (the total
/// score, then the indicator of each zone) and group, integers whose merge
/// is exact, associative and commutative. Their size depends on the units,
/// zones and groups, never on the samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SensitivitySums {
    /// The groups, in the plan's order.
    pub groups: Vec<String>,
    /// Base samples in the sums: A, B and every A_B^g succeeded.
    pub samples: u64,
    /// Base samples whose A succeeded (they are in the ordinary counts) but
    /// B or an A_B^g failed: in no sum.
    pub incomplete: u64,
    /// `[unit][output][slot]`: Σf_A, Σf_A², Σf_B, Σf_B².
    pub base: Vec<i64>,
    /// `[unit][output][group][slot]` with d = f_AB − f_A: Σd, Σf_B·d,
    /// Σ(f_B·d)², Σd², Σd⁴, Σf_B·d².
    pub group: Vec<i64>,
}

/// The outputs of one unit in one run: the total, then each zone's indicator.
fn outputs(outcome: &Outcome, unit: usize, n_outputs: usize, into: &mut [i64]) {
    let u = &outcome.units[unit];
    into[0] = i64::from(u.total);
    for (z, slot) in into[1..n_outputs].iter_mut().enumerate() {
        *slot = i64::from(usize::from(u.zone) == z + 1);
    }
}

impl SensitivitySums {
    pub fn zeros(shape: &Shape, groups: Vec<String>) -> SensitivitySums {
        let (base, group) = SensitivitySums::lengths(shape, groups.len());
        SensitivitySums { groups, samples: 0, incomplete: 0, base: vec![0; base], group: vec![0; group] }
    }

    /// Outputs per unit: the total and one indicator per zone.
    pub fn n_outputs(shape: &Shape) -> usize {
        1 + shape.n_zones
    }

    /// The lengths of `base` and `group` for a shape and a number of groups.
    pub fn lengths(shape: &Shape, n_groups: usize) -> (usize, usize) {
        let slots = shape.n_units * SensitivitySums::n_outputs(shape);
        (slots * BASE_SLOTS, slots * n_groups * GROUP_SLOTS)
    }

    /// Why sums of this many groups over a shape would be too large, if so.
    pub fn size_problem(shape: &Shape, n_groups: usize) -> Option<String> {
        let (base, group) = SensitivitySums::lengths(shape, n_groups);
        (base + group > MAX_SENSITIVITY_SUMS).then(|| {
            format!(
                "a sensitivity design of {n_groups} groups over {} units and {} zones keeps {} sums; at most {MAX_SENSITIVITY_SUMS} are allowed (name fewer groups, or fewer units)",
                shape.n_units,
                shape.n_zones,
                base + group
            )
        })
    }

    /// Add one complete base sample: A, B and A_B^g in group order.
    pub fn add(&mut self, shape: &Shape, a: &Outcome, b: &Outcome, ab: &[Outcome]) {
        let n_outputs = SensitivitySums::n_outputs(shape);
        let n_groups = self.groups.len();
        assert_eq!(ab.len(), n_groups, "one A_B run per group");
        let mut fa = vec![0i64; n_outputs];
        let mut fb = vec![0i64; n_outputs];
        let mut fab = vec![0i64; n_outputs * n_groups];
        for unit in 0..shape.n_units {
            outputs(a, unit, n_outputs, &mut fa);
            outputs(b, unit, n_outputs, &mut fb);
            for (g, run) in ab.iter().enumerate() {
                outputs(run, unit, n_outputs, &mut fab[g * n_outputs..(g + 1) * n_outputs]);
            }
            for o in 0..n_outputs {
                let slot = unit * n_outputs + o;
                let base = &mut self.base[slot * BASE_SLOTS..(slot + 1) * BASE_SLOTS];
                // Within the bounds above: a sweep of at most
                // MAX_SENSITIVITY_SAMPLES samples cannot overflow.
                base[0] += fa[o];
                base[1] += fa[o] * fa[o];
                base[2] += fb[o];
                base[3] += fb[o] * fb[o];
                for g in 0..n_groups {
                    let d = fab[g * n_outputs + o] - fa[o];
                    let (y, z) = (fb[o] * d, d * d);
                    let at = (slot * n_groups + g) * GROUP_SLOTS;
                    let sums = &mut self.group[at..at + GROUP_SLOTS];
                    sums[0] += d;
                    sums[1] += y;
                    sums[2] += y * y;
                    sums[3] += z;
                    sums[4] += z * z;
                    sums[5] += fb[o] * z;
                }
            }
        }
        self.samples += 1;
    }

    /// Add another part's sums: the same groups and lengths, checked
    /// additions (an overflow is an error, never a wrapped sum).
    pub fn merge(&mut self, other: &SensitivitySums) -> Result<(), MergeError> {
        if self.groups != other.groups {
            return Err(MergeError(format!(
                "sensitivity groups differ: [{}] and [{}]",
                self.groups.join(", "),
                other.groups.join(", ")
            )));
        }
        if self.base.len() != other.base.len() || self.group.len() != other.group.len() {
            return Err(MergeError("sensitivity sums of different lengths".to_owned()));
        }
        let overflow = || MergeError("sensitivity sums overflow".to_owned());
        let samples = self.samples.checked_add(other.samples).ok_or_else(overflow)?;
        let incomplete = self.incomplete.checked_add(other.incomplete).ok_or_else(overflow)?;
        let add = |a: &[i64], b: &[i64]| -> Result<Vec<i64>, MergeError> {
            a.iter().zip(b).map(|(x, y)| x.checked_add(*y).ok_or_else(overflow)).collect()
        };
        let base = add(&self.base, &other.base)?;
        let group = add(&self.group, &other.group)?;
        *self = SensitivitySums { groups: other.groups.clone(), samples, incomplete, base, group };
        Ok(())
    }

    /// Check the group names and that the sums have the lengths a shape and
    /// the group count imply.
    pub fn check_lengths(&self, shape: &Shape) -> Result<(), MergeError> {
        if self.groups.is_empty() || self.groups.len() > MAX_GROUPS {
            return Err(MergeError(format!(
                "a sensitivity design has 1–{MAX_GROUPS} groups, not {}",
                self.groups.len()
            )));
        }
        for (i, name) in self.groups.iter().enumerate() {
            if name.is_empty() || name.chars().count() > MAX_GROUP_NAME || self.groups[..i].contains(name) {
                return Err(MergeError(format!(
                    "sensitivity group {i} has an empty, overlong or repeated name `{}`",
                    name.chars().take(MAX_GROUP_NAME).collect::<String>()
                )));
            }
        }
        if let Some(problem) = SensitivitySums::size_problem(shape, self.groups.len()) {
            return Err(MergeError(problem));
        }
        let (base, group) = SensitivitySums::lengths(shape, self.groups.len());
        if self.base.len() != base || self.group.len() != group {
            return Err(MergeError(format!(
                "the sensitivity sums have {} and {} entries; the shape and {} groups need {base} and {group}",
                self.base.len(),
                self.group.len(),
                self.groups.len()
            )));
        }
        Ok(())
    }

    /// Check the sums against the aggregate's `samples_ok`: complete and
    /// incomplete samples add up to it, and every sum is within what its
    /// samples can give (so merges of checked parts cannot overflow).
    pub fn check_consistency(&self, samples_ok: u64) -> Result<(), MergeError> {
        if u128::from(self.samples) + u128::from(self.incomplete) != u128::from(samples_ok) {
            return Err(MergeError(format!(
                "the sensitivity sums count {} complete and {} incomplete samples, not the {samples_ok} that succeeded",
                self.samples, self.incomplete
            )));
        }
        let n = i128::from(self.samples);
        let within = |value: i64, bound: i64, signed: bool| {
            let value = i128::from(value);
            (signed || value >= 0) && value.abs() <= n * i128::from(bound)
        };
        if let Some(i) = self.base.iter().enumerate().position(|(i, &v)| !within(v, BASE_BOUNDS[i % BASE_SLOTS], false))
        {
            return Err(MergeError(format!(
                "sensitivity base sum {i} is {}, beyond what {} samples can give",
                self.base[i], self.samples
            )));
        }
        if let Some(i) = self
            .group
            .iter()
            .enumerate()
            .position(|(i, &v)| !within(v, GROUP_BOUNDS[i % GROUP_SLOTS], GROUP_SIGNED[i % GROUP_SLOTS]))
        {
            return Err(MergeError(format!(
                "sensitivity group sum {i} is {}, beyond what {} samples can give",
                self.group[i], self.samples
            )));
        }
        Ok(())
    }

    /// The moments of one unit's output, from its sums.
    pub fn moments(&self, shape: &Shape, unit: usize, output: Output) -> Moments {
        let n_outputs = SensitivitySums::n_outputs(shape);
        let o = match output {
            Output::Total => 0,
            Output::Zone(z) => z,
        };
        assert!(unit < shape.n_units && o < n_outputs, "unit {unit} and output {output:?} of this shape");
        let slot = unit * n_outputs + o;
        let base = &self.base[slot * BASE_SLOTS..(slot + 1) * BASE_SLOTS];
        let g = self.groups.len();
        let groups = &self.group[slot * g * GROUP_SLOTS..(slot + 1) * g * GROUP_SLOTS];
        // Integers below 2^53 convert exactly; larger sums lose only
        // relative precision of 1e-16.
        Moments::from_sums(
            self.samples,
            std::array::from_fn(|i| base[i] as f64),
            groups.chunks(GROUP_SLOTS).map(|s| std::array::from_fn(|i| s[i] as f64)).collect(),
        )
    }

    /// The indices of one unit's output, groups ranked by total index.
    pub fn analyse(&self, shape: &Shape, unit: usize, output: Output) -> OutputSensitivity {
        let moments = self.moments(shape, unit, output);
        let mut groups: Vec<GroupIndices> = self
            .groups
            .iter()
            .zip(moments.indices())
            .map(|(name, (first, total))| GroupIndices { group: name.clone(), first, total })
            .collect();
        rank(&mut groups);
        OutputSensitivity { output, samples: moments.samples, mean: moments.mean, variance: moments.variance, groups }
    }
}

/// The moments of one group's estimator terms: the centred first-order
/// term y = (f_B − f̄)(f_AB − f_A) and the total term z = (f_A − f_AB)².
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupMoments {
    pub mean_y: f64,
    /// The sample variance of y.
    pub variance_y: f64,
    pub mean_z: f64,
    pub variance_z: f64,
}

/// What the estimators need of one output: the base samples, the pooled
/// mean and variance of A and B, and each group's term moments.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    pub samples: u64,
    pub mean: f64,
    /// V: the variance of A and B pooled (2n values, divided by 2n).
    pub variance: f64,
    pub groups: Vec<GroupMoments>,
}

impl Moments {
    /// From n samples' sums: `base` Σf_A, Σf_A², Σf_B, Σf_B², and per group,
    /// with d = f_AB − f_A, Σd, Σf_B·d, Σ(f_B·d)², Σd², Σd⁴, Σf_B·d².
    pub fn from_sums(samples: u64, base: [f64; 4], groups: Vec<[f64; GROUP_SLOTS]>) -> Moments {
        let n = samples as f64;
        let pooled = 2.0 * n;
        let mean = (base[0] + base[2]) / pooled;
        let variance = ((base[1] + base[3]) - (base[0] + base[2]) * mean) / pooled;
        // Σ(x − x̄)² / (n − 1) from Σx and Σx².
        let sample_variance = |sum: f64, squares: f64| (squares - sum * sum / n) / (n - 1.0);
        let groups = groups
            .iter()
            .map(|&[d, y, y2, z, z2, fb_z]| {
                // Centred at f̄: Σ(f_B − f̄)d and Σ((f_B − f̄)d)².
                let yc = y - mean * d;
                let yc2 = y2 - 2.0 * mean * fb_z + mean * mean * z;
                GroupMoments {
                    mean_y: yc / n,
                    variance_y: sample_variance(yc, yc2),
                    mean_z: z / n,
                    variance_z: sample_variance(z, z2),
                }
            })
            .collect();
        Moments { samples, mean, variance, groups }
    }
}

/// The normal quantile of a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// An index with its 95 % interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Index {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Index {
    fn new(estimate: f64, standard_error: f64) -> Index {
        Index { estimate, low: estimate - Z95 * standard_error, high: estimate + Z95 * standard_error }
    }
}

impl Moments {
    /// Per group, (S_g, ST_g) with their intervals; `None` when the output
    /// does not vary (V = 0) or fewer than two samples were complete.
    pub fn indices(&self) -> Vec<(Option<Index>, Option<Index>)> {
        let v = self.variance;
        let n = self.samples as f64;
        let usable = self.samples >= 2 && v.is_finite() && v > 0.0;
        self.groups
            .iter()
            .map(|g| {
                if !usable {
                    return (None, None);
                }
                // V as known: the interval is that of the mean of y (or z)
                // divided by V (or 2V).
                let first = Index::new(g.mean_y / v, (g.variance_y.max(0.0) / n).sqrt() / v);
                let total = Index::new(g.mean_z / (2.0 * v), (g.variance_z.max(0.0) / n).sqrt() / (2.0 * v));
                (Some(first), Some(total))
            })
            .collect()
    }
}

/// One group's indices for one output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupIndices {
    pub group: String,
    /// First order S_g; `None` when the output does not vary.
    pub first: Option<Index>,
    /// Total ST_g.
    pub total: Option<Index>,
}

/// One output of one unit: its spread and the groups ranked by total index
/// (largest first; groups without an index last, then by name).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputSensitivity {
    pub output: Output,
    pub samples: u64,
    pub mean: f64,
    pub variance: f64,
    pub groups: Vec<GroupIndices>,
}

fn rank(groups: &mut [GroupIndices]) {
    groups.sort_by(|a, b| {
        let key = |g: &GroupIndices| g.total.map_or(f64::NEG_INFINITY, |t| t.estimate);
        key(b).total_cmp(&key(a)).then_with(|| a.group.cmp(&b.group))
    });
}

#[cfg(test)]
mod tests {
    use std::f64::consts::PI;

    use super::*;

    /// The Ishigami function with a = 7, b = 0.1 on [−π, π]³.
    fn ishigami(x: [f64; 3]) -> f64 {
        x[0].sin() + 7.0 * x[1].sin().powi(2) + 0.1 * x[2].powi(4) * x[0].sin()
    }

    /// Moments of Saltelli's design for the Ishigami function, one factor
    /// per group, from n scrambled Sobol' points of 6 dimensions (A the
    /// first 3, B the last 3).
    fn ishigami_moments(n: u32) -> Moments {
        let mut base = [0.0f64; 4];
        let mut groups = vec![[0.0f64; GROUP_SLOTS]; 3];
        for k in 0..n {
            let point: Vec<f64> = (0..6)
                .map(|d| (f64::from(sobol_burley::sample(k, d, 11)) + 0.5 / f64::from(1u32 << 24)) * 2.0 * PI - PI)
                .collect();
            let a = [point[0], point[1], point[2]];
            let b = [point[3], point[4], point[5]];
            let (fa, fb) = (ishigami(a), ishigami(b));
            add_sample(&mut base, &mut groups, fa, fb, |g| {
                let mut ab = a;
                ab[g] = b[g];
                ishigami(ab)
            });
        }
        Moments::from_sums(u64::from(n), base, groups)
    }

    /// Add one base sample's terms, as [`SensitivitySums::add`] does.
    fn add_sample(
        base: &mut [f64; 4],
        groups: &mut [[f64; GROUP_SLOTS]],
        fa: f64,
        fb: f64,
        fab: impl Fn(usize) -> f64,
    ) {
        base[0] += fa;
        base[1] += fa * fa;
        base[2] += fb;
        base[3] += fb * fb;
        for (g, s) in groups.iter_mut().enumerate() {
            let d = fab(g) - fa;
            let (y, z) = (fb * d, d * d);
            for (slot, term) in s.iter_mut().zip([d, y, y * y, z, z * z, fb * z]) {
                *slot += term;
            }
        }
    }

    #[test]
    fn the_estimators_give_salib_s_ishigami_indices() {
        // SALib's analytic values for a = 7, b = 0.1.
        let first = [0.3139, 0.4424, 0.0];
        let total = [0.5576, 0.4424, 0.2437];
        let moments = ishigami_moments(1 << 15);
        // The analytic variance: a²/8 + b π⁴/5 + b² π⁸/18 + 1/2.
        let exact_v = 49.0 / 8.0 + 0.1 * PI.powi(4) / 5.0 + 0.01 * PI.powi(8) / 18.0 + 0.5;
        assert!((moments.variance - exact_v).abs() < 0.02 * exact_v, "V {} vs {exact_v}", moments.variance);
        for (g, (s, st)) in moments.indices().into_iter().enumerate() {
            let (s, st) = (s.unwrap(), st.unwrap());
            // Within 0.02 of the analytic values, and the 95 % intervals
            // (a few hundredths wide at 2^15 samples) hold them.
            assert!((s.estimate - first[g]).abs() < 0.02, "S{} = {:?}, SALib {}", g + 1, s, first[g]);
            assert!((st.estimate - total[g]).abs() < 0.02, "ST{} = {:?}, SALib {}", g + 1, st, total[g]);
            assert!(s.low <= first[g] && first[g] <= s.high, "S{}: {s:?}", g + 1);
            assert!(st.low <= total[g] && total[g] <= st.high, "ST{}: {st:?}", g + 1);
            assert!(s.high - s.low < 0.1 && st.high - st.low < 0.1, "{s:?} {st:?}");
        }
        // Fewer samples: wider intervals.
        let few = ishigami_moments(1 << 9).indices();
        let many = moments.indices();
        for g in 0..3 {
            let width = |i: Option<Index>| i.map(|i| i.high - i.low).unwrap();
            assert!(width(few[g].1) > 2.0 * width(many[g].1));
        }
    }

    #[test]
    fn an_output_that_never_varies_has_no_indices() {
        let moments = Moments {
            samples: 10,
            mean: 30.0,
            variance: 0.0,
            groups: vec![GroupMoments { mean_y: 0.0, variance_y: 0.0, mean_z: 0.0, variance_z: 0.0 }],
        };
        assert_eq!(moments.indices(), vec![(None, None)]);
    }

    #[test]
    fn integer_sums_give_the_moments_of_their_terms() {
        let shape = Shape { n_units: 1, n_zones: 2, base_year: 2020, milestone: 2030, horizon: 2060 };
        let mut sums = SensitivitySums::zeros(&shape, vec!["g".into()]);
        // Totals of A, B and A_B for four samples.
        let runs = [(20i64, 30i64, 25i64), (40, 10, 40), (15, 35, 20), (50, 12, 44)];
        for &(a, b, ab) in &runs {
            let d = ab - a;
            for (slot, term) in sums.base.iter_mut().zip([a, a * a, b, b * b]) {
                *slot += term;
            }
            for (slot, term) in sums.group.iter_mut().zip([d, b * d, b * d * b * d, d * d, d * d * d * d, b * d * d]) {
                *slot += term;
            }
        }
        sums.samples = 4;
        sums.check_consistency(4).unwrap();
        assert!(sums.check_consistency(5).is_err());
        let m = sums.moments(&shape, 0, Output::Total);
        let all: Vec<f64> = runs.iter().flat_map(|&(a, b, _)| [a as f64, b as f64]).collect();
        let mean = all.iter().sum::<f64>() / 8.0;
        let v = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 8.0;
        assert!((m.mean - mean).abs() < 1e-12 && (m.variance - v).abs() < 1e-9, "{m:?}");
        // The centred first-order terms, straight from their definition.
        let ys: Vec<f64> = runs.iter().map(|&(a, b, ab)| (b as f64 - mean) * (ab - a) as f64).collect();
        let mean_y = ys.iter().sum::<f64>() / 4.0;
        let var_y = ys.iter().map(|y| (y - mean_y).powi(2)).sum::<f64>() / 3.0;
        let zs: Vec<f64> = runs.iter().map(|&(a, _, ab)| ((a - ab) * (a - ab)) as f64).collect();
        let mean_z = zs.iter().sum::<f64>() / 4.0;
        let var_z = zs.iter().map(|z| (z - mean_z).powi(2)).sum::<f64>() / 3.0;
        let g = m.groups[0];
        assert!((g.mean_y - mean_y).abs() < 1e-9 && (g.variance_y - var_y).abs() < 1e-6 * var_y, "{g:?} {var_y}");
        assert!((g.mean_z - mean_z).abs() < 1e-12 && (g.variance_z - var_z).abs() < 1e-9 * var_z, "{g:?}");
        let (s, st) = m.indices()[0];
        assert!((s.unwrap().estimate - mean_y / v).abs() < 1e-12);
        assert!((st.unwrap().estimate - mean_z / (2.0 * v)).abs() < 1e-12);
    }

    #[test]
    fn sums_beyond_their_samples_or_overflowing_merges_are_refused() {
        let shape = Shape { n_units: 2, n_zones: 3, base_year: 2020, milestone: 2030, horizon: 2060 };
        let mut sums = SensitivitySums::zeros(&shape, vec!["a".into(), "b".into()]);
        sums.samples = 1;
        sums.check_consistency(1).unwrap();
        let mut negative = sums.clone();
        negative.base[1] = -1;
        assert!(negative.check_consistency(1).is_err());
        let mut big = sums.clone();
        big.group[2] = 4_000_001;
        assert!(big.check_consistency(1).is_err());
        // Σd and Σf_B·d may be negative, within their bounds.
        let mut signed = sums.clone();
        signed.group[1] = -2000;
        signed.group[6] = -40;
        signed.check_consistency(1).unwrap();
        signed.group[6] = -41;
        assert!(signed.check_consistency(1).is_err());
        let mut near = sums.clone();
        near.group[2] = i64::MAX;
        assert!(near.clone().merge(&near).is_err());
        let other_groups = SensitivitySums::zeros(&shape, vec!["a".into()]);
        assert!(sums.clone().merge(&other_groups).unwrap_err().0.contains("groups differ"));
        sums.check_lengths(&shape).unwrap();
        assert!(sums.check_lengths(&Shape { n_units: 3, ..shape }).is_err());
        let mut repeated = sums.clone();
        repeated.groups = vec!["a".into(), "a".into()];
        assert!(repeated.check_lengths(&shape).is_err());
    }
}
