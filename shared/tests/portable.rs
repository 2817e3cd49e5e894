//! The tests of `fast.rs` (the fast path against the reference chain, the
//! accumulator against `Aggregate::add`) and of `chain_revision.rs` (the
//! pinned digest of a few samples) again, in a process that runs only the
//! portable copies of the fast path and the accumulator
//! ([`zonesweep_shared::sweep::fast::portable_only`]): on a machine with
//! AVX2, CI's included, the code a machine without AVX2 runs.

#[path = "chain_revision.rs"]
mod chain_revision;
#[path = "fast.rs"]
mod fast;

/// Called first by every test of the two files.
fn setup() {
    zonesweep_shared::sweep::fast::portable_only(true);
    assert!(!zonesweep_shared::sweep::fast::takes_avx2_copies(), "the portable copies are taken");
}
