//! A warm fast path allocates nothing per sample: every buffer a sample
//! needs lives in a `Scratch` and an `Accumulator` that the thread keeps.
//! Counted by a global allocator that counts this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use zonesweep_shared::data::dataset::Dataset;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::fast::Scratch;
use zonesweep_shared::sweep::runner::SweepRunner;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is passed to the system allocator unchanged; the
// counter is a const-initialised thread local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_warm_fast_path_allocates_nothing_per_sample() {
    let dataset =
        Dataset::from_csv(include_str!("../../data/demo/units.csv"), include_str!("../../data/demo/panel.csv"), None)
            .expect("the demonstration dataset is valid");
    let config = Config::default();
    let spec = SweepSpec::default();
    let runner = SweepRunner::new(&dataset, &config, &spec).expect("the default spec is valid");
    assert!(runner.has_fast_path());
    let mut scratch = Scratch::default();
    let mut accumulator = runner.accumulator();
    // Warm: the buffers grow to their size, the histograms meet their
    // bins; 1,024 samples are four whole batches of pending bins.
    runner.run_into(0..1024, &mut scratch, &mut accumulator);
    let before = allocations();
    runner.run_into(1024..1224, &mut scratch, &mut accumulator);
    let per_sample = allocations() - before;
    assert_eq!(per_sample, 0, "200 warm samples within one batch allocated");
    // A batch adds its bins to the sorted histograms: a bin seen for the
    // first time may still grow a histogram's vector (amortised doubling).
    let before = allocations();
    runner.run_into(1224..3000, &mut scratch, &mut accumulator);
    let with_batches = allocations() - before;
    assert!(with_batches < 1776 / 10, "1,776 samples and their batches made {with_batches} allocations");
    let aggregate = accumulator.finish();
    assert_eq!(aggregate.samples_ok, 3000, "{:?}", aggregate.failures);
}
