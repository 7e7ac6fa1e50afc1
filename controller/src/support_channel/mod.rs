//! SupportChannel in the controller. Publishing help content to the app's ops API is not built
//! yet: the channel says so (`Ready=False`, reason `EngineNotImplemented`) once its spec is
//! valid and its references resolve.

use jiff::Timestamp;
use tend_crds::support_channel::{SupportChannel, SupportChannelSpec, SupportChannelStatus};

use crate::context::Context;
use crate::reconcile::{TendKind, Verdict, status_access};

impl TendKind for SupportChannel {
    status_access!(
        SupportChannel,
        SupportChannelSpec,
        SupportChannelStatus,
        "SupportChannel"
    );
    type State = ();

    async fn operate(
        &self,
        _ctx: &Context,
        _state: &(),
        _status: &mut SupportChannelStatus,
        _now: Timestamp,
    ) -> Verdict {
        Verdict::engine_not_implemented("publishing to the app's ops API")
    }
}
