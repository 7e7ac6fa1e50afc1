//! The notification engine of tend: renders a [`Notification`] for a destination (e-mail,
//! Slack, Microsoft Teams, an Alertmanager-shaped webhook) in Japanese or English and delivers
//! it politely — timeouts, retries with backoff, `Retry-After`, a per-destination rate limit —
//! with errors that never carry a secret. It knows nothing of Kubernetes.

#![forbid(unsafe_code)]
