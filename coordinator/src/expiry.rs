//! The lease-expiry task: every 250 ms, leases whose heartbeats stopped (or
//! that outlived the maximum job time) go back to pending; a job that failed
//! too often fails its sweep through the committer. Workers silent for long
//! and holding nothing are forgotten (they register again if they return).

use std::time::{Duration, Instant};

use zonesweep_proto::status::SweepState;

use crate::committer::{Change, Command};
use crate::service::Coordinator;

impl Coordinator {
    /// Expire leases whose heartbeats stopped.
    pub(crate) async fn expiry(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let now = Instant::now();
            let failed = {
                let mut state = self.state();
                state.forget_silent_workers(now, self.config().worker_silence());
                let leased = state.leases_held();
                let failed = state.expire(now, self.config().max_attempts);
                let expired = leased.saturating_sub(state.leases_held());
                if expired > 0 {
                    tracing::info!(
                        expired,
                        "leases expired (their workers went silent or ran too long); the jobs run again"
                    );
                }
                (failed, expired)
            };
            let (failed, expired) = failed;
            if expired > 0 {
                // Jobs to lease again: wake lease calls waiting for work.
                self.changed();
            }
            for (sweep, reason) in failed {
                let change = Change::Stop { sweep, state: SweepState::Failed, reason };
                let _ = self.send(Command { change, reply: None }).await;
            }
        }
    }
}
