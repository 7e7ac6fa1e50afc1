//! LogPolicy in the controller. The log retention and audit engine is not built yet: the
//! policy says so (`Ready=False`, reason `EngineNotImplemented`) once its spec is valid and its
//! references resolve.

use jiff::Timestamp;
use tend_crds::log_policy::{LogPolicy, LogPolicySpec, LogPolicyStatus};

use crate::context::Context;
use crate::reconcile::{TendKind, Verdict, status_access};

impl TendKind for LogPolicy {
    status_access!(LogPolicy, LogPolicySpec, LogPolicyStatus, "LogPolicy");
    type State = ();

    async fn operate(
        &self,
        _ctx: &Context,
        _state: &(),
        _status: &mut LogPolicyStatus,
        _now: Timestamp,
    ) -> Verdict {
        Verdict::engine_not_implemented("the log retention and audit engine")
    }
}
