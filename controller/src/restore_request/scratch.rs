//! Scratch targets: their names (derived from the request, so a crashed restore's leftovers
//! are found again), the resources recorded in status before any is created, and their
//! removal — after drills, failed requests and interrupted ones.

use std::path::PathBuf;

use jiff::Timestamp;
use kube::{Api, Client, ResourceExt};
use sha2::{Digest, Sha256};
use tend_backup::PostgresTools;
use tend_backup::postgres::{self as pg};
use tend_crds::backup_policy::BackupPolicy;
use tend_crds::restore_request::{
    Component, RestoreMode, RestoreRequest, RestoreRequestSpec, ScratchTarget,
};
use tend_crds::types::StorageLocation;

use super::report::Outcome;
use super::run::set_maintenance;
use crate::backup_policy::BackupSettings;
use crate::context::Context;
use crate::secrets::Secrets;
use crate::setup;

/// The scratch database of a request: derived from its uid, so a crashed restore's leftover
/// is found again and two requests never share one.
pub fn scratch_database_name(uid: &str) -> String {
    let digest = hex::encode(Sha256::digest(uid.as_bytes()));
    format!("tend_scratch_{}", &digest[..12])
}

/// The directory (or S3 prefix segment) of a request under the scratch location.
pub fn scratch_dir_name(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}")
}

/// The scratch resources a request may create, recorded in status before any is created.
pub fn planned_scratch(request: &RestoreRequest) -> Vec<String> {
    let Some(scratch) = scratch_of(&request.spec) else {
        return Vec::new();
    };
    let namespace = request.namespace().unwrap_or_default();
    let dir = scratch_dir_name(&namespace, &request.name_any());
    let mut out = Vec::new();
    if scratch.postgres.is_some() && request.spec.components.contains(&Component::Database) {
        out.push(format!(
            "postgres:{}",
            scratch_database_name(&request.uid().unwrap_or_default())
        ));
    }
    if let Some(fs) = &scratch.filesystem {
        out.push(format!("directory:{}/{dir}", fs.path.trim_end_matches('/')));
    }
    if let Some(s3) = &scratch.s3 {
        let prefix = s3.prefix.trim_matches('/');
        out.push(if prefix.is_empty() {
            format!("s3:{}/{dir}/", s3.bucket)
        } else {
            format!("s3:{}/{prefix}/{dir}/", s3.bucket)
        });
    }
    out
}

pub(super) fn scratch_of(spec: &RestoreRequestSpec) -> Option<&ScratchTarget> {
    (spec.target.mode == RestoreMode::Scratch)
        .then_some(spec.target.scratch.as_ref())
        .flatten()
}

/// Where scratch objects go, as a storage location the setup code understands.
pub(super) fn scratch_store_location(scratch: &ScratchTarget) -> Option<StorageLocation> {
    if let Some(s3) = &scratch.s3 {
        return Some(StorageLocation {
            s3: Some(s3.clone()),
            filesystem: None,
        });
    }
    scratch.filesystem.as_ref().map(|fs| StorageLocation {
        s3: None,
        filesystem: Some(fs.clone()),
    })
}

/// Removes a request's scratch target, recomputed from its spec and uid (never from status,
/// so nothing outside the scratch location can be named for deletion). Returns what it removed.
pub async fn remove_scratch(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
    spec: &RestoreRequestSpec,
    tools: &PostgresTools,
) -> Result<Vec<String>, String> {
    let Some(scratch) = scratch_of(spec) else {
        return Ok(Vec::new());
    };
    let dir = scratch_dir_name(namespace, name);
    let mut removed = Vec::new();
    let mut secrets = Secrets::new(client.clone(), namespace);
    if let Some(pg) = &scratch.postgres {
        let admin = setup::postgres_connection(
            &mut secrets,
            "spec.target.scratch.postgres.connectionSecretRef",
            &pg.connection_secret_ref.name,
        )
        .await
        .map_err(|e| e.to_string())?;
        let database = scratch_database_name(uid);
        pg::drop_database(tools, &admin, &database)
            .await
            .map_err(|e| e.to_string())?;
        removed.push(format!("postgres:{database}"));
    }
    if let Some(fs) = &scratch.filesystem {
        let path = PathBuf::from(&fs.path).join(&dir);
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => removed.push(format!("directory:{}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing {}: {e}", path.display())),
        }
    }
    if scratch.s3.is_some() {
        let location = scratch_store_location(scratch).expect("s3 set");
        let store = setup::storage("spec.target.scratch", &location, &mut secrets, false)
            .await
            .map_err(|e| e.to_string())?;
        let prefix = format!("{dir}/");
        let objects = store.list(&prefix).await.map_err(|e| e.to_string())?;
        for object in &objects {
            store.delete(&object.key).await.map_err(|e| e.to_string())?;
        }
        if !objects.is_empty() {
            removed.push(format!("s3:{}", store.describe()));
        }
    }
    Ok(removed)
}

/// A request found `Running` with no task in this process: end it as failed, remove its
/// scratch target, and turn the app's maintenance mode off if it was an in-place restore.
pub(super) async fn interrupted(
    request: &RestoreRequest,
    ctx: &Context,
    settings: &BackupSettings,
    now: Timestamp,
) -> Outcome {
    let namespace = request.namespace().unwrap_or_default();
    let name = request.name_any();
    let uid = request.uid().unwrap_or_default();
    let mut problems = Vec::new();
    let mut outcome = Outcome::failed(
        now,
        "interrupted",
        "interrupted: the controller stopped during the restore (crash, restart or leader change); apply a new RestoreRequest to try again".into(),
    );
    match remove_scratch(
        &ctx.client,
        &namespace,
        &name,
        &uid,
        &request.spec,
        &settings.postgres_tools,
    )
    .await
    {
        Ok(removed) => {
            outcome.scratch_removed = removed;
            outcome.scratch_gone = true;
        }
        Err(e) => problems.push(format!("the scratch target could not be removed: {e}")),
    }
    if request.spec.target.mode == RestoreMode::InPlace {
        let policy = Api::<BackupPolicy>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(&request.spec.policy_ref.name)
            .await
            .ok()
            .flatten();
        if let Some(policy) = policy {
            let mut secrets = Secrets::new(ctx.client.clone(), &namespace);
            match setup::ops_api(&policy.spec, &mut secrets).await {
                Ok(Some(ops)) => {
                    if let Err(e) = set_maintenance(&ops, false).await {
                        problems.push(format!("maintenance mode could not be turned off: {e}"));
                    }
                }
                Ok(None) => {}
                Err(e) => problems.push(format!("maintenance mode could not be turned off: {e}")),
            }
        }
    }
    if !problems.is_empty() {
        let message = outcome.error.take().unwrap_or_default();
        outcome.error = Some(format!("{message}; {}", problems.join("; ")));
    }
    outcome
}
