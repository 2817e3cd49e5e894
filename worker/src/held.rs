//! The leases this worker holds, from LEASE until their result is delivered
//! or dropped, each with the flag the coordinator raises through a
//! heartbeat's `abandon` list.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use zonesweep_proto::ProtoError;
use zonesweep_proto::ids::{JobId, LeaseId, SweepId};
use zonesweep_proto::pb;

/// One lease of one job, as the wire's `LeaseRef` names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseKey {
    pub job: JobId,
    pub lease: LeaseId,
}

impl LeaseKey {
    pub fn from_ref(lease_ref: &pb::LeaseRef) -> Result<LeaseKey, ProtoError> {
        Ok(LeaseKey {
            job: JobId { sweep: SweepId::parse(&lease_ref.sweep_id)?, index: lease_ref.job_index },
            lease: LeaseId(lease_ref.lease_id),
        })
    }

    pub fn of_job(job: &pb::Job) -> Result<LeaseKey, ProtoError> {
        LeaseKey::from_ref(&pb::LeaseRef {
            sweep_id: job.sweep_id.clone(),
            job_index: job.job_index,
            lease_id: job.lease_id,
        })
    }

    pub fn to_ref(&self) -> pb::LeaseRef {
        pb::LeaseRef { sweep_id: self.job.sweep.as_str().to_owned(), job_index: self.job.index, lease_id: self.lease.0 }
    }
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {} (lease {})", self.job, self.lease.0)
    }
}

/// Set once the coordinator has asked the worker to give a lease up.
pub type AbandonFlag = Arc<AtomicBool>;

#[derive(Debug, Default)]
pub struct HeldLeases {
    leases: Mutex<HashMap<LeaseKey, AbandonFlag>>,
}

impl HeldLeases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LeaseKey, AbandonFlag>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start holding `key`; the flag turns true if it is abandoned.
    pub fn insert(&self, key: LeaseKey) -> AbandonFlag {
        self.lock().entry(key).or_default().clone()
    }

    pub fn remove(&self, key: &LeaseKey) {
        self.lock().remove(key);
    }

    /// Every lease held, for a heartbeat, in a stable order.
    pub fn snapshot(&self) -> Vec<pb::LeaseRef> {
        let mut keys: Vec<LeaseKey> = self.lock().keys().cloned().collect();
        keys.sort();
        keys.iter().map(LeaseKey::to_ref).collect()
    }

    /// Mark a held lease abandoned; false when it is not held (already
    /// delivered, or a reference that names nothing here).
    pub fn abandon(&self, lease_ref: &pb::LeaseRef) -> Option<LeaseKey> {
        let key = LeaseKey::from_ref(lease_ref).ok()?;
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
        let a = held.insert(LeaseKey::from_ref(&lease_ref("sw-1", 0, 7)).unwrap());
        let b = held.insert(LeaseKey::from_ref(&lease_ref("sw-1", 1, 8)).unwrap());
        assert_eq!(held.snapshot(), vec![lease_ref("sw-1", 0, 7), lease_ref("sw-1", 1, 8)]);

        // A newer lease of the same job is another lease.
        assert!(held.abandon(&lease_ref("sw-1", 0, 9)).is_none());
        assert!(held.abandon(&lease_ref("bad/id", 0, 7)).is_none());
        assert_eq!(held.abandon(&lease_ref("sw-1", 0, 7)).unwrap().to_string(), "job sw-1#0 (lease 7)");
        assert!(a.load(Ordering::SeqCst));
        assert!(!b.load(Ordering::SeqCst));

        held.remove(&LeaseKey::from_ref(&lease_ref("sw-1", 0, 7)).unwrap());
        assert_eq!(held.snapshot(), vec![lease_ref("sw-1", 1, 8)]);
        assert_eq!(held.len(), 1);
    }
}
