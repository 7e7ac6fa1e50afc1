//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! acts. Like client-go, a lease held by someone else counts as expired only when its record has
//! not changed for `lease_duration` *as observed on this replica's clock* — clock skew between
//! replicas cannot hand the lease to two holders. Updates use the resourceVersion, so two
//! candidates racing for an expired lease cannot both win.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// Lease timings (client-go defaults scaled for a small controller).
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews, and candidates retry.
    pub retry_period: Duration,
}

impl LeaseConfig {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One candidate for the lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The last lease record seen (holder, renew time) and when this replica first saw it.
    observed: Option<(Option<String>, Option<MicroTime>, Instant)>,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self {
            api,
            config,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Tries once to acquire or renew the lease. `Ok(true)` means this replica holds it now.
    pub async fn try_acquire_or_renew(&mut self) -> kube::Result<bool> {
        let now = MicroTime(Timestamp::now());
        let duration_secs = self.config.lease_duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_me = holder.as_deref() == Some(self.config.identity.as_str());
        if !held_by_me && holder.is_some() && !self.observed_expired(&holder, &spec.renew_time) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(duration_secs),
            acquire_time: if held_by_me {
                spec.acquire_time
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..spec
        });
        // `replace` carries the resourceVersion we read: a concurrent writer makes this a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether another holder's lease has gone unrenewed for a whole lease duration, measured
    /// from when this replica first saw the current record.
    fn observed_expired(
        &mut self,
        holder: &Option<String>,
        renew_time: &Option<MicroTime>,
    ) -> bool {
        let unchanged = matches!(&self.observed, Some((h, r, _)) if h == holder && r == renew_time);
        if !unchanged {
            self.observed = Some((holder.clone(), renew_time.clone(), Instant::now()));
            return false;
        }
        let first_seen = self
            .observed
            .as_ref()
            .map(|(_, _, at)| *at)
            .unwrap_or_else(Instant::now);
        first_seen.elapsed() > self.config.lease_duration
    }

    /// Gives the lease up (on clean shutdown) so another replica takes over at once.
    pub async fn release(&mut self) -> kube::Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            renew_time: None,
            acquire_time: None,
            ..spec
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }
}
