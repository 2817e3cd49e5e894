//! A worker's completion as the coordinator receives it: the bytes of a
//! `CompleteRequest`, decoded, its ids checked, its aggregate decoded
//! against the sweep's shape, checked against its job (`check_result`) and
//! merged (the committer's `plan`, sparse, compared with the dense merge) into the sweep of
//! [`zonesweep_fuzz::result_fixture`]. Also the same bytes as a stored
//! aggregate (`decode_aggregate`). Nothing panics, and a result accepted
//! leaves the sweep's aggregate consistent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use zonesweep_coordinator::committer::{Change, Decision, Fit, check_result, plan};
use zonesweep_fuzz::result_fixture;
use zonesweep_proto::convert::{decode_aggregate, encode_aggregate, result_from_pb};
use zonesweep_proto::ids::{LeaseRef, WorkerId};
use zonesweep_proto::pb;

/// The fixture's real results take about 3 KiB.
const MAX_INPUT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    // The storage path: an aggregate read back from the database.
    if let Ok(aggregate) = decode_aggregate(data) {
        assert_eq!(decode_aggregate(&encode_aggregate(&aggregate)).expect("re-encoded"), aggregate);
    }

    let fixture = result_fixture();
    let Ok(request) = pb::CompleteRequest::decode(data) else { return };
    if WorkerId::parse(&request.worker_id).is_err() {
        return;
    }
    let Some(Ok(lease)) = request.lease.as_ref().map(LeaseRef::from_pb) else { return };
    let Some(wire) = request.aggregate.as_ref() else { return };
    let Ok(aggregate) = result_from_pb(wire, &fixture.shape) else { return };
    // The result stays sparse; it is checked exactly as its dense form.
    let dense = aggregate.to_aggregate().expect("a decoded result has its shape's lengths");
    assert_eq!(
        aggregate.check_consistency().map_err(|e| e.to_string()),
        dense.check_consistency().map_err(|e| e.to_string()),
        "the sparse and the dense checks disagree"
    );
    let Some(sweep) = fixture.state.sweep(lease.sweep()) else { return };
    match check_result(sweep, lease.index(), &aggregate) {
        Ok(Fit::New) => {
            let change = Change::Complete { job: lease.job.clone(), aggregate: Box::new(aggregate), worker: "fuzz/w".into() };
            let planned = plan(&fixture.state, &[change]);
            assert_eq!(planned.decisions, [Decision::Merge], "a checked result does not merge");
            // The batch stores the merge of its new results (its delta);
            // the sweep's results are then the ones in memory and the delta.
            let delta = planned.entries[0].delta.as_ref().expect("a merge carries its delta");
            let before = sweep.aggregate().expect("a running sweep's aggregate is in memory");
            let mut merged = before.clone();
            merged.merge(delta).expect("a checked result's delta merges");
            if let Err(e) = merged.check_consistency() {
                panic!("a checked result leaves the sweep inconsistent: {e}");
            }
            let mut dense_merged = before.clone();
            dense_merged.merge(&dense).expect("a checked result merges dense");
            assert_eq!(merged, dense_merged, "the sparse merge differs from the dense one");
            assert_eq!(merged.samples_total(), before.samples_total() + sweep.job_range(lease.index()).count() as u64);
        }
        Ok(Fit::AlreadyMerged) => assert!(sweep.is_done(lease.index())),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
