//! `SupportChannel`: the help and feedback content an app shows — help button, FAQ, guides,
//! troubleshooting, inquiry and feedback forms, NPS survey — published to the app through its
//! ops API, with inquiry SLA and NPS figures reported back (seed §5, §6).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::references::{Reference, References, route_references};
use crate::types::{AppRef, Duration, NotificationRoute, duration_rule, min_duration};

/// Help content, support forms and the NPS survey of an app, declared in Git.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "tend.dev",
    version = "v1alpha1",
    kind = "SupportChannel",
    namespaced,
    status = "SupportChannelStatus",
    shortname = "supch",
    category = "tend",
    doc = "Help button, FAQ, guides, troubleshooting, inquiry and feedback forms and the NPS survey of an app, published through its ops API; reports inquiry SLA and NPS.",
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.publishedRevision"
    ),
    printcolumn(name = "Open", type_ = "integer", json_path = ".status.inquiries.open"),
    printcolumn(
        name = "Overdue",
        type_ = "integer",
        json_path = ".status.inquiries.overdue"
    ),
    printcolumn(name = "NPS", type_ = "number", json_path = ".status.nps.score"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SupportChannelSpec {
    /// The app the content is published to.
    pub app: AppRef,
    /// The help button shown on every page.
    #[serde(default)]
    pub help_button: HelpButton,
    /// Frequently asked questions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"]))]
    pub faq: Vec<FaqEntry>,
    /// How-to guides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"]))]
    pub guides: Vec<Article>,
    /// Troubleshooting articles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"]))]
    pub troubleshooting: Vec<Article>,
    /// The inquiry (contact) form.
    pub inquiry_form: InquiryForm,
    /// Bug report and feature request forms.
    #[serde(default)]
    pub feedback_forms: FeedbackForms,
    /// Net Promoter Score survey.
    #[serde(default)]
    pub nps: NpsSurvey,
}

/// The floating help button.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelpButton {
    /// Corner of the page. Defaults to `bottomRight`.
    #[serde(default)]
    pub position: ButtonPosition,
    /// Button label. Defaults to `Help`.
    #[serde(default = "default_help_label")]
    #[schemars(length(min = 1, max = 40))]
    pub label: String,
}

impl Default for HelpButton {
    fn default() -> Self {
        Self {
            position: ButtonPosition::default(),
            label: default_help_label(),
        }
    }
}

fn default_help_label() -> String {
    "Help".into()
}

/// Help button positions.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ButtonPosition {
    #[default]
    BottomRight,
    BottomLeft,
    /// A value this version of tend does not know.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// One FAQ entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaqEntry {
    /// Stable id (used in links), e.g. `add-photo`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pub id: String,
    /// The question.
    #[schemars(length(min = 1, max = 300))]
    pub question: String,
    /// The answer (Markdown).
    #[schemars(length(min = 1, max = 20000))]
    pub answer: String,
    /// Search tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub tags: Vec<String>,
}

/// A guide or troubleshooting article.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Article {
    /// Stable id (used in links), e.g. `first-field`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pub id: String,
    /// Title.
    #[schemars(length(min = 1, max = 300))]
    pub title: String,
    /// Body (Markdown).
    #[schemars(length(min = 1, max = 100000))]
    pub body: String,
    /// Search tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub tags: Vec<String>,
}

/// The inquiry form and its handling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct InquiryForm {
    /// Categories users choose from, e.g. `account`, `records`, `photos`, `billing`, `other`.
    #[schemars(length(min = 1, max = 30))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub categories: Vec<String>,
    /// The automatic acknowledgement sent to the user.
    pub auto_reply: AutoReply,
    /// Staff notified of each new inquiry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub routes: Vec<NotificationRoute>,
    /// Staff should first answer within this; older unanswered inquiries count as overdue.
    /// Defaults to `24h`.
    #[serde(default = "default_sla")]
    #[x_kube(validation = duration_rule(min_duration::MINUTE))]
    pub first_response_sla: Duration,
    /// Allow a screenshot attachment.
    #[serde(default = "default_true")]
    pub allow_screenshot: bool,
}

fn default_sla() -> Duration {
    Duration("24h".into())
}

fn default_true() -> bool {
    true
}

/// Automatic acknowledgement. `{{name}}`, `{{category}}` and `{{ticket}}` are replaced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoReply {
    /// Subject of the acknowledgement e-mail.
    #[schemars(length(min = 1, max = 200))]
    pub subject: String,
    /// Body of the acknowledgement, shown on the page and e-mailed.
    #[schemars(length(min = 1, max = 10000))]
    pub body: String,
}

/// Feedback forms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackForms {
    /// Bug report form.
    #[serde(default)]
    pub bug_report: FormToggle,
    /// Feature request form.
    #[serde(default)]
    pub feature_request: FormToggle,
}

/// A form that can be switched on or off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FormToggle {
    /// Show the form. Defaults to true.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for FormToggle {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The NPS survey.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NpsSurvey {
    /// Show the survey.
    #[serde(default)]
    pub enabled: bool,
    /// Ask one user at most once per this interval. Defaults to `2160h` (90 days).
    #[serde(default = "default_nps_interval")]
    #[x_kube(validation = duration_rule(min_duration::HOUR))]
    pub interval: Duration,
    /// The question. Defaults to the standard NPS question.
    #[serde(default = "default_nps_question")]
    #[schemars(length(min = 1, max = 300))]
    pub question: String,
}

impl Default for NpsSurvey {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: default_nps_interval(),
            question: default_nps_question(),
        }
    }
}

fn default_nps_interval() -> Duration {
    Duration("2160h".into())
}

fn default_nps_question() -> String {
    "How likely are you to recommend fieldbook to a fellow farmer?".into()
}

/// Observed state of a SupportChannel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportChannelStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled, Published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Content revision (hash) the app confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_revision: Option<String>,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Time>,
    /// Inquiry figures from the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inquiries: Option<InquiryStats>,
    /// NPS over the last period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps: Option<NpsStats>,
}

/// Inquiry figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct InquiryStats {
    /// Inquiries not closed.
    pub open: u32,
    /// Open inquiries without a first response older than the SLA.
    pub overdue: u32,
    /// Age of the oldest unanswered inquiry, e.g. `5h2m0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_unanswered_age: Option<String>,
    /// When the figures were read.
    pub observed_at: Time,
}

/// NPS figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NpsStats {
    /// Score from -100 to 100.
    pub score: f64,
    /// Responses in the period.
    pub responses: u32,
    /// The period, e.g. `2160h`.
    pub period: String,
}

impl References for SupportChannelSpec {
    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference::secret_key(
            "spec.app.tokenSecretRef",
            &self.app.token_secret_ref,
        )];
        refs.extend(route_references(
            "spec.inquiryForm.routes",
            &self.inquiry_form.routes,
        ));
        refs
    }
}
