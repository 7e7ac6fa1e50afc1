//! Each kind's place in the pipeline: how to reach its status, and its own `operate` step.
//!
//! BackupPolicy runs backups and drills (see [`crate::backup`]), RestoreRequest restores (see
//! [`crate::restore`]), AlertRule evaluates simple signals and remediates (see [`crate::alert`]).
//! The engines behind IncidentRecord, SupportChannel and LogPolicy are not built yet. Their
//! `operate` does the real work that needs no engine (postmortem completeness, escalation
//! totals) and reports `Ready=False` with reason `EngineNotImplemented` naming what is missing —
//! never a fake success.

use std::time::Duration;

use jiff::Timestamp;
use tend_crds::conditions::{Condition, condition, reasons, set_condition, types};
use tend_crds::types::format_duration;
use tend_crds::*;

use super::{TendKind, Verdict};
use crate::context::Context;

fn not_implemented(what: &str) -> Verdict {
    Verdict::new(
        false,
        reasons::ENGINE_NOT_IMPLEMENTED,
        format!(
            "spec is valid and its references resolve, but {what} is not part of this build yet"
        ),
    )
}

macro_rules! status_access {
    ($kind:ty, $spec:ty, $status:ty, $name:literal) => {
        type Spec = $spec;
        type Status = $status;
        const KIND: &'static str = $name;

        fn spec(&self) -> &$spec {
            &self.spec
        }
        fn status(&self) -> Option<&$status> {
            self.status.as_ref()
        }
        fn conditions_mut(status: &mut $status) -> &mut Vec<Condition> {
            &mut status.conditions
        }
        fn observed_generation_mut(status: &mut $status) -> &mut Option<i64> {
            &mut status.observed_generation
        }
    };
}

impl TendKind for BackupPolicy {
    status_access!(
        BackupPolicy,
        BackupPolicySpec,
        BackupPolicyStatus,
        "BackupPolicy"
    );

    async fn operate(
        &self,
        ctx: &Context,
        status: &mut BackupPolicyStatus,
        now: Timestamp,
    ) -> Verdict {
        crate::backup::operate(self, ctx, status, now).await
    }
}

impl TendKind for RestoreRequest {
    status_access!(
        RestoreRequest,
        RestoreRequestSpec,
        RestoreRequestStatus,
        "RestoreRequest"
    );

    async fn operate(
        &self,
        ctx: &Context,
        status: &mut RestoreRequestStatus,
        now: Timestamp,
    ) -> Verdict {
        crate::restore::operate(self, ctx, status, now).await
    }
}

impl TendKind for AlertRule {
    status_access!(AlertRule, AlertRuleSpec, AlertRuleStatus, "AlertRule");

    async fn operate(
        &self,
        ctx: &Context,
        status: &mut AlertRuleStatus,
        now: Timestamp,
    ) -> Verdict {
        crate::alert::operate(self, ctx, status, now).await
    }
}

impl TendKind for EscalationPolicy {
    status_access!(
        EscalationPolicy,
        EscalationPolicySpec,
        EscalationPolicyStatus,
        "EscalationPolicy"
    );

    /// Until the incident engine lands nothing escalates, so the policy is not `Ready`: it
    /// says so (reason `EngineNotImplemented`, not `Stalled`) and still reports its totals.
    async fn operate(
        &self,
        _ctx: &Context,
        status: &mut EscalationPolicyStatus,
        _now: Timestamp,
    ) -> Verdict {
        let per_round: Duration = self
            .spec
            .levels
            .iter()
            .filter_map(|l| l.ack_timeout.parse().ok())
            .sum();
        let total = per_round * (self.spec.repeat + 1);
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

impl TendKind for IncidentRecord {
    status_access!(
        IncidentRecord,
        IncidentRecordSpec,
        IncidentRecordStatus,
        "IncidentRecord"
    );

    async fn operate(
        &self,
        _ctx: &Context,
        status: &mut IncidentRecordStatus,
        now: Timestamp,
    ) -> Verdict {
        let gaps = self.spec.postmortem_gaps();
        let generation = self.metadata.generation;
        let postmortem = if gaps.is_empty() {
            condition(
                types::POSTMORTEM_COMPLETE,
                true,
                "Complete",
                "the postmortem is complete",
                generation,
                now,
            )
        } else {
            condition(
                types::POSTMORTEM_COMPLETE,
                false,
                "Incomplete",
                format!("the postmortem still needs: {}", gaps.join(", ")),
                generation,
                now,
            )
        };
        set_condition(&mut status.conditions, postmortem);
        not_implemented("the incident engine (notifications, escalation, timeline)")
    }
}

impl TendKind for SupportChannel {
    status_access!(
        SupportChannel,
        SupportChannelSpec,
        SupportChannelStatus,
        "SupportChannel"
    );

    async fn operate(
        &self,
        _ctx: &Context,
        _status: &mut SupportChannelStatus,
        _now: Timestamp,
    ) -> Verdict {
        not_implemented("publishing to the app's ops API")
    }
}

impl TendKind for LogPolicy {
    status_access!(LogPolicy, LogPolicySpec, LogPolicyStatus, "LogPolicy");

    async fn operate(
        &self,
        _ctx: &Context,
        _status: &mut LogPolicyStatus,
        _now: Timestamp,
    ) -> Verdict {
        not_implemented("the log retention and audit engine")
    }
}
