//! The `farm` namespace the backup and restore tests work in, and the steps they share: its
//! Secret and ConfigMap, photo directories, on-demand and scheduled backups, finished restores,
//! read back with the real kubectl; fieldbook's SQLite file read with the real sqlite3.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{TestCluster, WAIT, eventually};

/// The namespace of the farm fixtures.
pub const NS: &str = "farm";

/// Installs the tend CRDs and creates the namespace, the `backup-age` Secret (age
/// `recipients` and `identity`) and the `farm-settings` ConfigMap (label `app: farm`).
pub async fn setup(c: &TestCluster, recipient: &str, identity: &str) -> anyhow::Result<()> {
    c.install_tend_crds(&[]).await?;
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: backup-age\n  namespace: {NS}\n\
             stringData:\n  recipients: {recipient}\n  identity: {identity}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: farm-settings\n  namespace: {NS}\n  labels: {{app: farm}}\n\
             data:\n  greeting: hello\n"
        ),
    )
    .await?;
    Ok(())
}

/// `kubectl get KIND NAME -n farm -o json`.
pub async fn object_json(c: &TestCluster, kind: &str, name: &str) -> anyhow::Result<Value> {
    let out = c
        .kubectl(&["get", kind, name, "-n", NS, "-o", "json"])
        .await?;
    Ok(serde_json::from_str(&out)?)
}

/// The status of BackupPolicy `name`.
pub async fn policy_status(c: &TestCluster, name: &str) -> anyhow::Result<Value> {
    Ok(object_json(c, "backuppolicy", name).await?["status"].clone())
}

/// `kubectl patch backuppolicy NAME --type=merge -p PATCH`.
pub async fn patch_policy(c: &TestCluster, name: &str, patch: &str) -> anyhow::Result<()> {
    c.kubectl(&[
        "patch",
        "backuppolicy",
        name,
        "-n",
        NS,
        "--type=merge",
        "-p",
        patch,
    ])
    .await?;
    Ok(())
}

/// The bytes of photo `i`: distinct per photo, not compressible to nothing.
pub fn photo_body(i: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|j| ((i * 7919 + j * 31) ^ (j >> 3)) as u8)
        .collect()
}

/// Writes `count` photos of `size` bytes under `dir` (16 subdirectories).
pub fn write_photos(dir: &Path, count: usize, size: usize) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for i in 0..count {
        let sub = dir.join(format!("{:02x}", i % 16));
        std::fs::create_dir_all(&sub).unwrap();
        let path = sub.join(format!("photo-{i}.jpg"));
        std::fs::write(&path, photo_body(i, size)).unwrap();
        paths.push(path);
    }
    paths
}

/// Annotates the policy with a new `tend.dev/backup-now` value (the run starts; nothing waits).
pub async fn annotate_backup_now(c: &TestCluster, policy: &str, value: &str) -> anyhow::Result<()> {
    c.kubectl(&[
        "annotate",
        "--overwrite",
        "backuppolicy",
        policy,
        "-n",
        NS,
        &format!("tend.dev/backup-now={value}"),
    ])
    .await?;
    Ok(())
}

/// Annotates the policy with a new `tend.dev/backup-now` value and waits until that request's
/// run has finished; returns the status (whatever the result).
pub async fn request_backup(
    c: &TestCluster,
    policy: &str,
    value: &str,
    log: impl Fn() -> String,
) -> anyhow::Result<Value> {
    annotate_backup_now(c, policy, value).await?;
    let res = eventually(WAIT * 3, "the backup to finish", || async {
        let status = policy_status(c, policy).await.ok()?;
        (status["lastManualRequest"] == value
            && matches!(
                status["lastBackup"]["result"].as_str(),
                Some("Succeeded" | "Failed")
            ))
        .then_some(status)
    })
    .await;
    res.map_err(|e| anyhow::anyhow!("{e}\n--- log ---\n{}", log()))
}

/// [`request_backup`] that must succeed; returns the new restore point's id.
pub async fn successful_backup(
    c: &TestCluster,
    policy: &str,
    value: &str,
    log: impl Fn() -> String,
) -> anyhow::Result<String> {
    let status = request_backup(c, policy, value, log).await?;
    anyhow::ensure!(
        status["lastBackup"]["result"] == "Succeeded",
        "backup failed: {status:#}"
    );
    Ok(status["lastBackup"]["id"]
        .as_str()
        .expect("a finished run has an id")
        .to_string())
}

/// Waits until `lastBackup` is a finished run other than `previous` (scheduled or requested);
/// returns the status.
pub async fn finished_run(
    c: &TestCluster,
    policy: &str,
    previous: Option<&str>,
    log: impl Fn() -> String,
) -> anyhow::Result<Value> {
    let res = eventually(WAIT * 3, "a backup run to finish", || async {
        let status = policy_status(c, policy).await.ok()?;
        let run = &status["lastBackup"];
        let id = run["id"].as_str()?;
        let done = run["result"] == "Succeeded" || run["result"] == "Failed";
        (done && Some(id) != previous).then_some(status)
    })
    .await;
    res.map_err(|e| anyhow::anyhow!("{e}\n--- log ---\n{}", log()))
}

/// A RestoreRequest of `policy`'s latest restore point into `target` (YAML flow mapping).
pub fn restore_yaml(name: &str, policy: &str, target: &str, checks: &str) -> String {
    format!(
        "apiVersion: tend.dev/v1alpha1\nkind: RestoreRequest\nmetadata: {{name: {name}, namespace: {NS}}}\n\
         spec:\n  policyRef: {{name: {policy}}}\n  restorePoint: {{latest: true}}\n  target: {target}\n{checks}"
    )
}

/// Waits until the RestoreRequest is Succeeded or Failed; returns its status.
pub async fn finished_restore(
    c: &TestCluster,
    name: &str,
    log: impl Fn() -> String,
) -> anyhow::Result<Value> {
    let res = eventually(
        WAIT * 4,
        &format!("RestoreRequest {name} to finish"),
        || async {
            let status = object_json(c, "restorerequest", name).await.ok()?["status"].clone();
            matches!(status["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(status)
        },
    )
    .await;
    res.map_err(|e| anyhow::anyhow!("{e}\n--- log ---\n{}", log()))
}

/// Runs `sql` on fieldbook's SQLite file with the real sqlite3; returns its output.
pub fn sqlite(db: &Path, sql: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .map_err(|e| anyhow::anyhow!("sqlite3 is needed (apt-get install sqlite3): {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
