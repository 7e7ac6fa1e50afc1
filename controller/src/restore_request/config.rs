//! Restoring the config component: the archived ConfigMaps and Secrets re-created with
//! server-side apply (the app's settings through its ops API).

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use tend_backup::{Decryption, Manifest, PolicyLocation, Repository, restore_part};

use super::run::{MAINTENANCE_MESSAGE, Run};
use crate::error::kube_reason;
use crate::ops_api::OpsApi;

impl Run<'_> {
    pub(super) async fn restore_config(
        &self,
        repo: &dyn Repository,
        location: &PolicyLocation,
        manifest: &Manifest,
        decryption: &Decryption,
        ops: Option<&OpsApi>,
    ) -> Result<(u64, u64, String), String> {
        let plan = self.plan;
        let part = manifest
            .parts
            .iter()
            .find(|p| p.component == "config")
            .expect("checked");
        let mut archive = Vec::new();
        let bytes = restore_part(
            repo,
            location,
            manifest,
            &part.name,
            decryption,
            &mut archive,
        )
        .await
        .map_err(|e| e.to_string())?;
        let document: Value = serde_json::from_slice(&archive)
            .map_err(|e| format!("the config archive is not JSON: {e}"))?;
        let config_maps = document["configMaps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let secrets = document["secrets"].as_array().cloned().unwrap_or_default();
        let settings = document.get("appSettings").filter(|v| !v.is_null());
        let count = (config_maps.len() + secrets.len()) as u64 + u64::from(settings.is_some());
        let summary = format!(
            "{} ConfigMaps, {} Secrets{}",
            config_maps.len(),
            secrets.len(),
            if settings.is_some() {
                ", app settings"
            } else {
                ""
            }
        );
        if self.scratch.is_some() {
            return Ok((
                count,
                bytes,
                format!(
                    "archive decrypted and read: {summary} (a scratch restore applies nothing)"
                ),
            ));
        }
        let cm_api: Api<ConfigMap> = Api::namespaced(plan.client.clone(), &plan.namespace);
        for item in &config_maps {
            apply_archived(&cm_api, "ConfigMap", item, &["data", "binaryData"]).await?;
        }
        let secret_api: Api<Secret> = Api::namespaced(plan.client.clone(), &plan.namespace);
        for item in &secrets {
            apply_archived(&secret_api, "Secret", item, &["type", "data"]).await?;
        }
        if let Some(settings) = settings {
            let ops =
                ops.ok_or("the archive has app settings but the BackupPolicy has no spec.app")?;
            // The archived maintenance state is not re-applied: the restore keeps the app in
            // maintenance until it is done, then turns it off.
            let mut settings = settings.clone();
            if let Some(maintenance) = settings
                .get_mut("settings")
                .and_then(|s| s.get_mut("maintenance"))
            {
                *maintenance = json!({"enabled": true, "message": MAINTENANCE_MESSAGE});
            }
            ops.put_settings(&settings)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok((count, bytes, format!("re-applied: {summary}")))
    }
}

/// Re-creates one archived ConfigMap or Secret by server-side apply: its name, labels and
/// annotations plus the kind's own `fields` from the archive.
pub(super) async fn apply_archived<K>(
    api: &Api<K>,
    kind: &str,
    item: &Value,
    fields: &[&str],
) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = item["name"].as_str().unwrap_or_default();
    let mut object = json!({
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "labels": item["labels"], "annotations": item["annotations"]},
    });
    for field in fields {
        object[*field] = item[*field].clone();
    }
    api.patch(name, &PatchParams::apply("tend-restore").force(), &Patch::Apply(&object))
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "re-creating {kind} {name}: {} (restoring config needs the tend-config-restore role in this namespace; see docs/rbac.md)",
                kube_reason(&e)
            )
        })
}
