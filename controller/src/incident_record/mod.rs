//! IncidentRecord in the controller. The incident engine (notifications, escalation, timeline)
//! is not built yet; what needs no engine is done: the `PostmortemComplete` condition names
//! what the postmortem still lacks. `Ready` stays False with reason `EngineNotImplemented`.

use jiff::Timestamp;
use tend_crds::conditions::{Condition, condition, set_condition, types};
use tend_crds::incident_record::{
    IncidentRecord, IncidentRecordSpec, IncidentRecordStatus, reasons,
};

use crate::context::Context;
use crate::reconcile::{TendKind, Verdict, status_access};

impl TendKind for IncidentRecord {
    status_access!(
        IncidentRecord,
        IncidentRecordSpec,
        IncidentRecordStatus,
        "IncidentRecord"
    );
    type State = ();

    async fn operate(
        &self,
        _ctx: &Context,
        _state: &(),
        status: &mut IncidentRecordStatus,
        now: Timestamp,
    ) -> Verdict {
        set_condition(
            &mut status.conditions,
            postmortem_condition(&self.spec, self.metadata.generation, now),
        );
        Verdict::engine_not_implemented("the incident engine (notifications, escalation, timeline)")
    }
}

/// `PostmortemComplete`: True when nothing is missing, else False naming what is.
pub fn postmortem_condition(
    spec: &IncidentRecordSpec,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let gaps = spec.postmortem_gaps();
    if gaps.is_empty() {
        condition(
            types::POSTMORTEM_COMPLETE,
            true,
            reasons::COMPLETE,
            "the postmortem is complete",
            generation,
            now,
        )
    } else {
        condition(
            types::POSTMORTEM_COMPLETE,
            false,
            reasons::INCOMPLETE,
            format!("the postmortem still needs: {}", gaps.join(", ")),
            generation,
            now,
        )
    }
}
