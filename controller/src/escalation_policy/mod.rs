//! EscalationPolicy in the controller. Until the incident engine lands nothing escalates, so a
//! policy is never `Ready`: it says so (reason `EngineNotImplemented`, not `Stalled`) and still
//! reports its totals — levels and the time an unacknowledged incident takes to reach the end
//! of the chain.

use std::time::Duration;

use jiff::Timestamp;
use tend_crds::conditions::reasons;
use tend_crds::escalation_policy::{
    EscalationPolicy, EscalationPolicySpec, EscalationPolicyStatus,
};
use tend_crds::types::format_duration;

use crate::context::Context;
use crate::reconcile::{TendKind, Verdict, status_access};

impl TendKind for EscalationPolicy {
    status_access!(
        EscalationPolicy,
        EscalationPolicySpec,
        EscalationPolicyStatus,
        "EscalationPolicy"
    );
    type State = ();

    async fn operate(
        &self,
        _ctx: &Context,
        _state: &(),
        status: &mut EscalationPolicyStatus,
        _now: Timestamp,
    ) -> Verdict {
        let total = total_escalation_time(&self.spec);
        status.levels = Some(self.spec.levels.len() as u32);
        status.total_escalation_time = Some(format_duration(total));
        Verdict::new(
            false,
            reasons::ENGINE_NOT_IMPLEMENTED,
            format!(
                "{} levels (an unacknowledged incident would reach the end of the chain after {}); \
                 nothing escalates yet: the incident engine is not part of this build",
                self.spec.levels.len(),
                format_duration(total)
            ),
        )
    }
}

/// How long an incident nobody acknowledges takes to pass every level, every round.
pub fn total_escalation_time(spec: &EscalationPolicySpec) -> Duration {
    let per_round: Duration = spec
        .levels
        .iter()
        .filter_map(|l| l.ack_timeout.parse().ok())
        .sum();
    per_round * (spec.repeat + 1)
}
