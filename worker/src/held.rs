//! The leases this worker holds, from LEASE until their result is delivered
//! or dropped, each with the flag the coordinator raises through a
//! heartbeat's `abandon` list.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use zonesweep_proto::ids::LeaseRef;
use zonesweep_proto::pb;

/// Set once the coordinator has asked the worker to give a lease up.
pub type AbandonFlag = Arc<AtomicBool>;

#[derive(Debug, Default)]
pub struct HeldLeases {
    leases: Mutex<HashMap<LeaseRef, AbandonFlag>>,
}

impl HeldLeases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LeaseRef, AbandonFlag>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start holding `key`; the flag turns true if it is abandoned.
    pub fn insert(&self, key: LeaseRef) -> AbandonFlag {
        self.lock().entry(key).or_default().clone()
    }

    pub fn remove(&self, key: &LeaseRef) {
        self.lock().remove(key);
    }

    /// Every lease held, for a heartbeat, in a stable order.
    pub fn snapshot(&self) -> Vec<pb::LeaseRef> {
        let mut keys: Vec<LeaseRef> = self.lock().keys().cloned().collect();
        keys.sort();
        keys.iter().map(LeaseRef::to_pb).collect()
    }

    /// Mark a held lease abandoned; false when it is not held (already
    /// delivered, or a reference that names nothing here).
    pub fn abandon(&self, lease_ref: &pb::LeaseRef) -> Option<LeaseRef> {
        let key = LeaseRef::from_pb(lease_ref).ok()?;
        let flag = self.lock().get(&key).cloned()?;
        flag.store(true, Ordering::SeqCst);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
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
        assert_eq!(held.snapshot(), vec![lease_ref("sw-1", 0, 7), lease_ref("sw-1", 1, 8)]);

        // A newer lease of the same job is another lease.
        assert!(held.abandon(&lease_ref("sw-1", 0, 9)).is_none());
        assert!(held.abandon(&lease_ref("bad/id", 0, 7)).is_none());
        assert_eq!(held.abandon(&lease_ref("sw-1", 0, 7)).unwrap().to_string(), "job sw-1#0 (lease 7)");
        assert!(a.load(Ordering::SeqCst));
        assert!(!b.load(Ordering::SeqCst));

        held.remove(&LeaseRef::from_pb(&lease_ref("sw-1", 0, 7)).unwrap());
        assert_eq!(held.snapshot(), vec![lease_ref("sw-1", 1, 8)]);
        assert_eq!(held.len(), 1);
    }
}
