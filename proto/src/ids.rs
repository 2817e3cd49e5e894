//! Typed identifiers at the boundary: a string or number from the wire
//! becomes one of these only after it has been checked.

use std::fmt;

use crate::{ProtoError, pb};

fn check_token(kind: &'static str, text: &str) -> Result<(), ProtoError> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(ProtoError::BadId { kind, value: text.chars().take(80).collect() }) }
}

macro_rules! string_id {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A ", $kind, " id: 1–64 ASCII letters, digits, `-` or `_`.")]
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<$name, ProtoError> {
                check_token($kind, text)?;
                Ok($name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(SweepId, "sweep");
string_id!(WorkerId, "worker");

/// One job of a sweep: a contiguous range of its samples.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId {
    pub sweep: SweepId,
    pub index: u32,
}

impl JobId {
    pub fn new(sweep: SweepId, index: u32) -> JobId {
        JobId { sweep, index }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.sweep, self.index)
    }
}

/// One lease of a job; a job leased again gets a new lease id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub u64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One lease of one job, as the wire's `LeaseRef` names it: what a worker
/// holds, heartbeats, completes or fails.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseRef {
    pub job: JobId,
    pub lease: LeaseId,
}

impl LeaseRef {
    pub fn new(sweep: SweepId, index: u32, lease: u64) -> LeaseRef {
        LeaseRef { job: JobId::new(sweep, index), lease: LeaseId(lease) }
    }

    pub fn sweep(&self) -> &SweepId {
        &self.job.sweep
    }

    pub fn index(&self) -> u32 {
        self.job.index
    }

    /// Check a wire reference (its sweep id).
    pub fn from_pb(wire: &pb::LeaseRef) -> Result<LeaseRef, ProtoError> {
        Ok(LeaseRef::new(SweepId::parse(&wire.sweep_id)?, wire.job_index, wire.lease_id))
    }

    /// The lease a wire job grants.
    pub fn of_job(job: &pb::Job) -> Result<LeaseRef, ProtoError> {
        Ok(LeaseRef::new(SweepId::parse(&job.sweep_id)?, job.job_index, job.lease_id))
    }

    pub fn to_pb(&self) -> pb::LeaseRef {
        pb::LeaseRef { sweep_id: self.job.sweep.as_str().to_owned(), job_index: self.job.index, lease_id: self.lease.0 }
    }
}

impl fmt::Display for LeaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {} (lease {})", self.job, self.lease)
    }
}

/// A content hash (SHA-256, lowercase hex) of a stored dataset, configuration or spec.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash(String);

impl ContentHash {
    pub fn parse(text: &str) -> Result<ContentHash, ProtoError> {
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(ContentHash(text.to_owned()))
        } else {
            Err(ProtoError::BadId { kind: "content hash", value: text.chars().take(80).collect() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(SweepId::parse("sw-0123abcd").is_ok());
        assert!(SweepId::parse("").is_err());
        assert!(SweepId::parse("a/b").is_err());
        assert!(SweepId::parse(&"x".repeat(65)).is_err());
        assert!(ContentHash::parse(&"a".repeat(64)).is_ok());
        assert!(ContentHash::parse(&"A".repeat(64)).is_err());
    }

    #[test]
    fn lease_refs_are_checked_and_round_trip() {
        let wire = pb::LeaseRef { sweep_id: "sw-1".into(), job_index: 3, lease_id: 7 };
        let lease = LeaseRef::from_pb(&wire).unwrap();
        assert_eq!(lease, LeaseRef::new(SweepId::parse("sw-1").unwrap(), 3, 7));
        assert_eq!(lease.to_pb(), wire);
        assert_eq!(lease.to_string(), "job sw-1#3 (lease 7)");
        let bad = pb::LeaseRef { sweep_id: "a/b".into(), ..wire };
        assert!(matches!(LeaseRef::from_pb(&bad), Err(ProtoError::BadId { kind: "sweep", .. })));
    }
}
