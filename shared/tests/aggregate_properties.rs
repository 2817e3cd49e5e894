//! Properties of the mergeable [`Aggregate`] on synthetic outcomes and
//! failures (ARCHITECTURE.md invariant 1): merging is commutative and associative
//! and equals adding every sample to one aggregate, bit for bit; aggregates
//! that do not fit are refused and leave the target unchanged. The sparse
//! form a job's result takes at the coordinator ([`SparseAggregate`]) is
//! checked with the same verdicts and merges bit-identically.

use proptest::prelude::*;
use zonesweep_shared::numerics::ridge::N_PREDICTORS;
use zonesweep_shared::sweep::aggregate::{
    Aggregate, KEPT_FAILED_SAMPLES, Outcome, ScenarioOutcome, Shape, UnitOutcome,
};
use zonesweep_shared::sweep::count_table::CountTable;
use zonesweep_shared::sweep::sparse::SparseAggregate;

const BASE_YEAR: i32 = 2020;
const MILESTONE: i32 = 2023;
const HORIZON: i32 = 2027;
const N_ZONES: usize = 5;
const FAILURE_KINDS: [&str; 2] = ["projection diverges", "CEI not positive"];

fn shape(n_units: usize) -> Shape {
    Shape { n_units, n_zones: N_ZONES, base_year: BASE_YEAR, milestone: MILESTONE, horizon: HORIZON }
}

fn n_years() -> usize {
    (HORIZON - BASE_YEAR) as usize + 1
}

/// One sample: a success or a failure of one of [`FAILURE_KINDS`].
#[derive(Clone, Debug)]
enum Event {
    Success(Outcome),
    Failure(usize),
}

fn positive() -> impl Strategy<Value = f64> {
    prop_oneof![1e-3f64..10.0, 10.0f64..1e6]
}

fn scenario_outcome() -> impl Strategy<Value = ScenarioOutcome> {
    (prop::option::of(BASE_YEAR..HORIZON), any::<bool>(), prop::option::of(positive()), positive()).prop_map(
        |(peak_year, neutral, ce_milestone, ce_horizon)| ScenarioOutcome {
            peak_year,
            peaked_by_milestone: peak_year.is_some_and(|y| y <= MILESTONE),
            neutral,
            ce_milestone,
            ce_horizon,
        },
    )
}

fn unit_outcome() -> impl Strategy<Value = UnitOutcome> {
    (1u8..=5, 10u32..=50, prop::array::uniform10(1u8..=5), 1u8..=5, prop::array::uniform3(scenario_outcome()))
        .prop_map(|(zone, total, scores, cep, scenarios)| UnitOutcome { zone, total, scores, cep, scenarios })
}

fn outcome(n_units: usize) -> impl Strategy<Value = Outcome> {
    (
        prop::collection::vec(unit_outcome(), n_units),
        prop::array::uniform3(prop::collection::vec(positive(), n_years())),
        prop::array::uniform6(-3.0f64..3.0),
        0.0f64..1.0,
        0.0f64..0.1,
    )
        .prop_map(|(units, regional_ce, coefficients, r2, k)| {
            let coefficients: [f64; N_PREDICTORS] = coefficients;
            Outcome { units, regional_ce, coefficients, r2, k }
        })
}

fn event(n_units: usize) -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => outcome(n_units).prop_map(Event::Success),
        2 => (0..FAILURE_KINDS.len()).prop_map(Event::Failure),
    ]
}

/// Samples 0..n of a sweep of 1–4 units, each assigned to one of three parts.
fn sweep() -> impl Strategy<Value = (usize, Vec<(Event, usize)>)> {
    (1usize..=4).prop_flat_map(|n_units| (Just(n_units), prop::collection::vec((event(n_units), 0usize..3), 0..50)))
}

fn add_event(aggregate: &mut Aggregate, sample: u64, event: &Event) {
    match event {
        Event::Success(outcome) => aggregate.add(outcome),
        Event::Failure(kind) => {
            let kind = FAILURE_KINDS[*kind];
            aggregate.add_failure(sample, kind, &format!("sample {sample}: {kind} (synthetic)"));
        }
    }
}

/// The three parts' aggregates and the aggregate of every sample in order.
fn aggregates(n_units: usize, events: &[(Event, usize)]) -> ([Aggregate; 3], Aggregate) {
    let mut parts = std::array::from_fn(|_| Aggregate::empty(shape(n_units)));
    let mut all = Aggregate::empty(shape(n_units));
    for (sample, (event, part)) in events.iter().enumerate() {
        add_event(&mut parts[*part], sample as u64, event);
        add_event(&mut all, sample as u64, event);
    }
    (parts, all)
}

fn json(aggregate: &Aggregate) -> String {
    serde_json::to_string(aggregate).expect("an aggregate serializes")
}

fn merged(a: &Aggregate, b: &Aggregate) -> Aggregate {
    let mut out = a.clone();
    out.merge(b).expect("aggregates of one sweep merge");
    out
}

/// A table of zeros with `rows` and `width` changed by the given amounts.
fn reshape(table: &mut CountTable, rows: isize, width: isize) {
    let change = |n: usize, by: isize| n.checked_add_signed(by).expect("a layout to shrink").max(1);
    *table = CountTable::zeros(change(table.n_rows(), rows), change(table.width(), width));
}

/// Ways to damage an aggregate's arrays so they no longer fit its shape.
fn tamper(aggregate: &mut Aggregate, how: usize) {
    match how % 16 {
        14 => reshape(&mut aggregate.regional_peak_counts, 0, 1),
        15 => reshape(&mut aggregate.zone_size_counts, -1, 0),
        0 => reshape(&mut aggregate.zone_counts, 1, 0),
        1 => reshape(&mut aggregate.total_counts, 0, -1),
        2 => reshape(&mut aggregate.score_counts, -1, 0),
        3 => reshape(&mut aggregate.cep_counts, 0, 1),
        4 => reshape(&mut aggregate.peak_counts, 1, 0),
        5 => reshape(&mut aggregate.neutral_counts, 0, 1),
        6 => aggregate.ce_milestone.push(Default::default()),
        7 => {
            aggregate.ce_horizon.pop();
        }
        8 => aggregate.regional_ce.push(Default::default()),
        9 => {
            aggregate.coefficients.pop();
        }
        10 => aggregate.r2.width *= 2.0,
        11 => aggregate.k.width = 1.0,
        12 => aggregate.coefficients[0].width = 0.5,
        _ => {
            let extra = aggregate.coefficients[0].clone();
            aggregate.coefficients.push(extra);
        }
    }
}

/// Ways to change an aggregate's counts without changing its layout, most of
/// which make it inconsistent: `at` picks the entry.
fn miscount(aggregate: &mut Aggregate, how: usize, at: usize) {
    let ok = aggregate.samples_ok;
    fn table(a: &mut Aggregate, t: usize) -> &mut CountTable {
        match t % 8 {
            0 => &mut a.zone_counts,
            1 => &mut a.total_counts,
            2 => &mut a.score_counts,
            3 => &mut a.cep_counts,
            4 => &mut a.peak_counts,
            5 => &mut a.neutral_counts,
            6 => &mut a.regional_peak_counts,
            _ => &mut a.zone_size_counts,
        }
    }
    match how % 12 {
        0..=7 => {
            let flat = table(aggregate, how).as_flat_mut();
            let i = at % flat.len();
            flat[i] += 1;
        }
        8 => {
            let flat = table(aggregate, at).as_flat_mut();
            if let Some(i) = flat.iter().position(|&c| c > 0) {
                flat[i] -= 1;
                let j = (i + at) % flat.len();
                flat[j] += 1;
            }
        }
        9 => aggregate.samples_ok += 1 + (at % 2) as u64,
        10 => {
            let n = aggregate.ce_milestone.len();
            aggregate.ce_milestone[at % n].add(1.0 + at as f64);
        }
        _ => {
            let flat = aggregate.neutral_counts.as_flat_mut();
            let i = at % flat.len();
            flat[i] = ok + 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_sparse_form_is_the_dense_one_and_merges_bit_identically(sweep in sweep()) {
        let (n_units, events) = sweep;
        let ([a, b, c], all) = aggregates(n_units, &events);
        let mut dense = a.clone();
        let mut sparse = a.clone();
        for part in [&b, &c] {
            let compact = SparseAggregate::from(part);
            let back = compact.to_aggregate();
            prop_assert_eq!(back.as_ref(), Ok(part));
            prop_assert!(compact.check_consistency().is_ok());
            prop_assert_eq!(compact.samples_total(), part.samples_total());
            dense.merge(part).unwrap();
            sparse.merge_sparse(&compact).unwrap();
        }
        prop_assert_eq!(json(&sparse), json(&dense));
        prop_assert_eq!(json(&sparse), json(&all));
        // Into an empty aggregate too (the committer's delta).
        let mut delta = Aggregate::empty(shape(n_units));
        delta.merge_sparse(&SparseAggregate::from(&all)).unwrap();
        prop_assert_eq!(json(&delta), json(&all));
    }

    #[test]
    fn the_sparse_check_gives_the_dense_check_s_verdict_and_message(
        sweep in sweep(),
        how in 0usize..12,
        at in 0usize..10_000,
    ) {
        let (n_units, events) = sweep;
        let ([a, _, _], _) = aggregates(n_units, &events);
        let mut changed = a.clone();
        miscount(&mut changed, how, at);
        let sparse = SparseAggregate::from(&changed);
        prop_assert_eq!(
            sparse.check_consistency().map_err(|e| e.to_string()),
            changed.check_consistency().map_err(|e| e.to_string())
        );
    }

    #[test]
    fn a_tampered_sparse_aggregate_is_refused_and_changes_nothing(
        sweep in sweep(),
        how in 0usize..16,
    ) {
        let (n_units, events) = sweep;
        let ([target, other, _], _) = aggregates(n_units, &events);
        let mut tampered = other.clone();
        tamper(&mut tampered, how);
        let tampered = SparseAggregate::from(&tampered);
        prop_assert!(tampered.check_lengths().is_err(), "tamper {} not caught", how);
        let mut merged_into = target.clone();
        let before = json(&merged_into);
        prop_assert!(merged_into.merge_sparse(&tampered).is_err());
        prop_assert_eq!(json(&merged_into), before);
        prop_assert!(merged_into.merge_sparse(&SparseAggregate::from(&other)).is_ok());
    }

    #[test]
    fn merge_is_commutative(sweep in sweep()) {
        let (n_units, events) = sweep;
        let ([a, b, _], _) = aggregates(n_units, &events);
        prop_assert_eq!(json(&merged(&a, &b)), json(&merged(&b, &a)));
    }

    #[test]
    fn merge_is_associative(sweep in sweep()) {
        let (n_units, events) = sweep;
        let ([a, b, c], _) = aggregates(n_units, &events);
        let left = merged(&merged(&a, &b), &c);
        let right = merged(&a, &merged(&b, &c));
        prop_assert_eq!(json(&left), json(&right));
    }

    #[test]
    fn merging_the_parts_equals_adding_every_sample_to_one_aggregate(sweep in sweep()) {
        let (n_units, events) = sweep;
        let ([a, b, c], all) = aggregates(n_units, &events);
        let expected = json(&all);
        for order in [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a]] {
            let mut total = Aggregate::empty(shape(n_units));
            for part in order {
                total.merge(part).unwrap();
            }
            prop_assert_eq!(json(&total), expected.clone());
        }
        // The whole is consistent with the events.
        let n = events.len() as u64;
        prop_assert_eq!(all.samples_total(), n);
        let successes = events.iter().filter(|(e, _)| matches!(e, Event::Success(_))).count() as u64;
        prop_assert_eq!(all.samples_ok, successes);
        prop_assert_eq!(all.samples_failed(), n - successes);
        all.check_lengths().unwrap();
        for (k, kind) in FAILURE_KINDS.iter().enumerate() {
            let failed: Vec<u64> = events
                .iter()
                .enumerate()
                .filter(|(_, (e, _))| matches!(e, Event::Failure(x) if *x == k))
                .map(|(i, _)| i as u64)
                .collect();
            match all.failures.get(*kind) {
                None => prop_assert!(failed.is_empty()),
                Some(f) => {
                    prop_assert_eq!(f.count, failed.len() as u64);
                    prop_assert_eq!(&f.samples[..], &failed[..failed.len().min(KEPT_FAILED_SAMPLES)]);
                    prop_assert_eq!(&f.example, &format!("sample {}: {kind} (synthetic)", failed[0]));
                }
            }
        }
        // Every unit's zone counts add up to the successes.
        for u in 0..n_units {
            prop_assert_eq!(all.zone_counts.row(u).iter().sum::<u64>(), successes);
        }
    }

    #[test]
    fn adding_in_any_order_gives_the_same_aggregate(sweep in sweep(), seed in any::<u64>()) {
        let (n_units, events) = sweep;
        let (_, all) = aggregates(n_units, &events);
        // A deterministic shuffle of the sample order.
        let mut order: Vec<usize> = (0..events.len()).collect();
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut shuffled = Aggregate::empty(shape(n_units));
        for i in order {
            add_event(&mut shuffled, i as u64, &events[i].0);
        }
        prop_assert_eq!(json(&shuffled), json(&all));
    }

    #[test]
    fn a_different_shape_is_refused_and_changes_nothing(
        sweep in sweep(),
        change in 0usize..5,
    ) {
        let (n_units, events) = sweep;
        let ([target, _, _], _) = aggregates(n_units, &events);
        let mut other_shape = shape(n_units);
        match change {
            0 => other_shape.n_units += 1,
            1 => other_shape.n_zones = 4,
            2 => other_shape.base_year -= 1,
            3 => other_shape.milestone += 1,
            _ => other_shape.horizon += 5,
        }
        let other = Aggregate::empty(other_shape);
        let mut merged_into = target.clone();
        let before = json(&merged_into);
        let error = merged_into.merge(&other);
        prop_assert!(error.is_err());
        prop_assert_eq!(json(&merged_into), before);
        prop_assert!(error.unwrap_err().to_string().contains("shape"));
    }

    #[test]
    fn a_tampered_aggregate_is_refused_and_changes_nothing(
        sweep in sweep(),
        how in 0usize..16,
    ) {
        let (n_units, events) = sweep;
        let ([target, other, _], _) = aggregates(n_units, &events);
        let mut tampered = other.clone();
        tamper(&mut tampered, how);
        prop_assert!(other.check_lengths().is_ok());
        prop_assert!(tampered.check_lengths().is_err(), "tamper {} not caught", how);
        let mut merged_into = target.clone();
        let before = json(&merged_into);
        prop_assert!(merged_into.merge(&tampered).is_err());
        prop_assert_eq!(json(&merged_into), before);
        // The untampered aggregate still merges.
        prop_assert!(merged_into.merge(&other).is_ok());
    }
}

#[test]
fn empty_aggregates_are_neutral_and_the_example_is_of_the_smallest_failure() {
    let shape = shape(2);
    let mut a = Aggregate::empty(shape);
    let mut b = Aggregate::empty(shape);
    for k in [40u64, 7, 19] {
        a.add_failure(k, "x", &format!("sample {k}"));
    }
    for k in (0..30u64).map(|i| 101 - 3 * i) {
        b.add_failure(k, "x", &format!("sample {k}"));
    }
    let before = json(&a);
    a.merge(&Aggregate::empty(shape)).unwrap();
    assert_eq!(json(&a), before);
    let ab = merged(&a, &b);
    let ba = merged(&b, &a);
    assert_eq!(json(&ab), json(&ba));
    let x = &ab.failures["x"];
    assert_eq!(x.count, 33);
    assert_eq!(x.example, "sample 7");
    assert_eq!(x.samples.len(), KEPT_FAILED_SAMPLES);
    let mut expected: Vec<u64> = [40u64, 7, 19].into_iter().chain((0..30u64).map(|i| 101 - 3 * i)).collect();
    expected.sort_unstable();
    expected.truncate(KEPT_FAILED_SAMPLES);
    assert_eq!(x.samples, expected);
}
