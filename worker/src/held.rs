//! The leases this worker holds, from the answer that leased them until
//! their result is answered or their job is dropped, each with the flag the
//! coordinator raises through a heartbeat's `abandon` list; and the calls
//! that lease jobs, numbered, so that a heartbeat can tell the coordinator
//! which calls have ended: a lease such a call granted that the heartbeat
//! does not name never reached this worker (the answer was lost) and goes
//! back to pending at once instead of at its deadline.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use zonesweep_proto::ids::LeaseRef;
use zonesweep_proto::pb;

/// Set once the coordinator has asked the worker to give a lease up.
pub type AbandonFlag = Arc<AtomicBool>;

#[derive(Debug, Default)]
pub struct HeldLeases {
    inner: Mutex<Inner>,
}

/// Leases and calls under one lock, so a heartbeat reads both at once.
#[derive(Debug, Default)]
struct Inner {
    leases: HashMap<LeaseRef, AbandonFlag>,
    /// The number the last call opened was given (the first is 1).
    last_call: u64,
    /// Calls opened and not yet ended.
    open: BTreeSet<u64>,
}

/// What a heartbeat tells: every lease held, and that every call numbered
/// up to `calls_ended` had ended when they were read.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub leases: Vec<pb::LeaseRef>,
    pub calls_ended: u64,
}

/// A call that may lease jobs, from before it is first sent until its
/// answer is taken ([`Call::received`]) or it is given up (dropped,
/// however: an error, a timeout, a cancelled future).
#[derive(Debug)]
pub struct Call<'a> {
    held: &'a HeldLeases,
    number: u64,
}

impl Call<'_> {
    /// The number every attempt of the call carries.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The call's answer leased `jobs`: they are held from now on, and the
    /// call has ended, in one step.
    pub fn received(self, jobs: &[pb::Job]) {
        let mut inner = self.held.lock();
        for job in jobs {
            // A job whose id does not parse cannot be held; its job task
            // refuses it.
            if let Ok(key) = LeaseRef::of_job(job) {
                inner.leases.entry(key).or_default();
            }
        }
        inner.open.remove(&self.number);
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.held.lock().open.remove(&self.number);
    }
}

impl HeldLeases {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open a call that may lease jobs, under the next number.
    pub fn call(&self) -> Call<'_> {
        let mut inner = self.lock();
        inner.last_call += 1;
        let number = inner.last_call;
        inner.open.insert(number);
        Call { held: self, number }
    }

    /// Hold `key` (if its call's answer did not already make it held); the
    /// flag turns true if it is abandoned.
    pub fn insert(&self, key: LeaseRef) -> AbandonFlag {
        self.lock().leases.entry(key).or_default().clone()
    }

    pub fn remove(&self, key: &LeaseRef) {
        self.lock().leases.remove(key);
    }

    /// Stop holding the leases of `jobs`, which no job task will run.
    pub fn drop_jobs(&self, jobs: &[pb::Job]) {
        let mut inner = self.lock();
        for job in jobs {
            if let Ok(key) = LeaseRef::of_job(job) {
                inner.leases.remove(&key);
            }
        }
    }

    /// Every lease held, in a stable order, and the calls ended, read at once.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let mut keys: Vec<&LeaseRef> = inner.leases.keys().collect();
        keys.sort();
        // Every call below the first still open has ended.
        let calls_ended = inner.open.first().map_or(inner.last_call, |first| first - 1);
        Snapshot { leases: keys.into_iter().map(LeaseRef::to_pb).collect(), calls_ended }
    }

    /// Mark a held lease abandoned; false when it is not held (already
    /// delivered, or a reference that names nothing here).
    pub fn abandon(&self, lease_ref: &pb::LeaseRef) -> Option<LeaseRef> {
        let key = LeaseRef::from_pb(lease_ref).ok()?;
        let flag = self.lock().leases.get(&key).cloned()?;
        flag.store(true, Ordering::SeqCst);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.lock().leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease_ref(sweep: &str, index: u32, lease: u64) -> pb::LeaseRef {
        pb::LeaseRef { sweep_id: sweep.into(), job_index: index, lease_id: lease }
    }

    #[test]
    fn abandoning_raises_the_flag_of_that_lease_only() {
        let held = HeldLeases::default();
        let a = held.insert(LeaseRef::from_pb(&lease_ref("sw-1", 0, 7)).unwrap());
        let b = held.insert(LeaseRef::from_pb(&lease_ref("sw-1", 1, 8)).unwrap());
        assert_eq!(held.snapshot().leases, vec![lease_ref("sw-1", 0, 7), lease_ref("sw-1", 1, 8)]);

        // A newer lease of the same job is another lease.
        assert!(held.abandon(&lease_ref("sw-1", 0, 9)).is_none());
        assert!(held.abandon(&lease_ref("bad/id", 0, 7)).is_none());
        assert_eq!(held.abandon(&lease_ref("sw-1", 0, 7)).unwrap().to_string(), "job sw-1#0 (lease 7)");
        assert!(a.load(Ordering::SeqCst));
        assert!(!b.load(Ordering::SeqCst));

        held.remove(&LeaseRef::from_pb(&lease_ref("sw-1", 0, 7)).unwrap());
        assert_eq!(held.snapshot().leases, vec![lease_ref("sw-1", 1, 8)]);
        assert_eq!(held.len(), 1);
    }

    fn job(sweep: &str, index: u32, lease: u64) -> pb::Job {
        pb::Job { sweep_id: sweep.into(), job_index: index, lease_id: lease, ..pb::Job::default() }
    }

    #[test]
    fn calls_end_in_any_order_and_a_heartbeat_names_only_those_below_every_open_one() {
        let held = HeldLeases::default();
        assert_eq!(held.snapshot(), Snapshot { leases: vec![], calls_ended: 0 });
        let (first, second, third) = (held.call(), held.call(), held.call());
        assert_eq!((first.number(), second.number(), third.number()), (1, 2, 3));
        // The second's answer arrives first: its jobs are held at once, but
        // the first call is still out, so no call counts as ended.
        second.received(&[job("sw-1", 4, 20), job("bad/id", 0, 21)]);
        assert_eq!(held.snapshot(), Snapshot { leases: vec![lease_ref("sw-1", 4, 20)], calls_ended: 0 });
        // The first fails (dropped without an answer): calls 1 and 2 ended.
        drop(first);
        assert_eq!(held.snapshot().calls_ended, 2);
        third.received(&[]);
        assert_eq!(held.snapshot().calls_ended, 3);
        // A job task holding a lease its call's answer brought shares the flag.
        let flag = held.insert(LeaseRef::from_pb(&lease_ref("sw-1", 4, 20)).unwrap());
        held.abandon(&lease_ref("sw-1", 4, 20)).unwrap();
        assert!(flag.load(Ordering::SeqCst));
        // Jobs no task will run are let go.
        held.drop_jobs(&[job("sw-1", 4, 20)]);
        assert!(held.is_empty());
        let fourth = held.call();
        assert_eq!((fourth.number(), held.snapshot().calls_ended), (4, 3));
    }
}
