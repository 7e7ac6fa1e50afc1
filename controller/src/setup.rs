//! From a spec to the engine's parts: the repository, the encryption, and the
//! sources. Secrets are read with `get` (never listed); their values go only into the engine's
//! configuration, never into a message.

use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tend_backup::{
    ConfigSource, DatabaseSource, Encryption, LocalRepository, ObjectsSource, PostgresConnection,
    PostgresSource, PostgresTools, Repository, S3Config, S3Credentials, S3Repository,
};
use tend_crds::backup_policy::{BackupPolicySpec, ConfigTarget};
use tend_crds::types::{SecretRef, StorageLocation};

use crate::error::StepError;
use crate::ops_api::OpsApi;
use crate::secrets::Secrets;

/// The repository (or object store) a location names.
pub async fn storage(
    field: &str,
    location: &StorageLocation,
    secrets: &mut Secrets,
    must_exist: bool,
) -> Result<Arc<dyn Repository>, StepError> {
    if let Some(s3) = &location.s3 {
        let mut config = S3Config::new(&s3.bucket, &s3.region);
        config.prefix = s3.prefix.trim_matches('/').to_owned();
        config.endpoint = s3.endpoint.clone();
        config.force_path_style = s3.force_path_style;
        if let Some(SecretRef { name }) = &s3.credentials_secret_ref {
            let f = format!("{field}.s3.credentialsSecretRef");
            config.credentials = Some(S3Credentials {
                access_key_id: secrets.required(&f, name, "accessKeyId").await?,
                secret_access_key: secrets.required(&f, name, "secretAccessKey").await?,
                session_token: secrets.value(&f, name, "sessionToken").await?,
            });
        }
        let repo =
            S3Repository::new(config).map_err(|e| StepError::Setup(format!("{field}.s3: {e}")))?;
        return Ok(Arc::new(repo));
    }
    if let Some(fs) = &location.filesystem {
        if must_exist && !Path::new(&fs.path).is_dir() {
            return Err(StepError::Setup(format!(
                "{field}.filesystem.path: {} is not a directory the controller can read",
                fs.path
            )));
        }
        let repo = LocalRepository::new(&fs.path)
            .map_err(|e| StepError::Setup(format!("{field}.filesystem: {e}")))?;
        return Ok(Arc::new(repo));
    }
    Err(StepError::Setup(format!(
        "{field}: exactly one of s3 or filesystem must be set"
    )))
}

/// The age recipients.
pub async fn encryption(
    spec: &BackupPolicySpec,
    secrets: &mut Secrets,
) -> Result<Encryption, StepError> {
    let field = "spec.encryption.recipientsSecretRef";
    let text = secrets
        .key_ref(field, &spec.encryption.recipients_secret_ref)
        .await?;
    Encryption::from_recipients(&text).map_err(|e| StepError::Setup(format!("{field}: {e}")))
}

/// The ops API client of `spec.app`.
pub async fn ops_api(
    spec: &BackupPolicySpec,
    secrets: &mut Secrets,
) -> Result<Option<OpsApi>, StepError> {
    let Some(app) = &spec.app else {
        return Ok(None);
    };
    let token = secrets
        .key_ref("spec.app.tokenSecretRef", &app.token_secret_ref)
        .await?;
    OpsApi::new(&app.endpoint, &token)
        .map(Some)
        .map_err(|e| StepError::Setup(format!("spec.app: {e}")))
}

/// A PostgreSQL connection from a Secret with the libpq keys.
pub async fn postgres_connection(
    secrets: &mut Secrets,
    field: &str,
    name: &str,
) -> Result<PostgresConnection, StepError> {
    let port_text = secrets.required(field, name, "port").await?;
    let port = port_text.trim().parse::<u16>().map_err(|_| {
        StepError::Setup(format!(
            "{field}: key \"port\" of Secret {name:?} is not a port number"
        ))
    })?;
    Ok(PostgresConnection {
        host: secrets
            .required(field, name, "host")
            .await?
            .trim()
            .to_owned(),
        port,
        dbname: secrets
            .required(field, name, "dbname")
            .await?
            .trim()
            .to_owned(),
        user: secrets
            .required(field, name, "user")
            .await?
            .trim()
            .to_owned(),
        password: secrets.required(field, name, "password").await?,
    })
}

/// The age identities that decrypt the policy's backups (restores and drills).
pub async fn decryption(
    spec: &BackupPolicySpec,
    secrets: &mut Secrets,
) -> Result<tend_backup::Decryption, StepError> {
    let field = "spec.encryption.identitySecretRef";
    let identity = spec
        .encryption
        .identity_secret_ref
        .as_ref()
        .ok_or_else(|| {
            StepError::Setup(format!(
                "the BackupPolicy's {field} is not set: restores need the age identity to decrypt"
            ))
        })?;
    let text = secrets.key_ref(field, identity).await?;
    tend_backup::Decryption::from_identities(&text)
        .map_err(|e| StepError::Setup(format!("{field}: {e}")))
}

/// The database source.
pub async fn database(
    spec: &BackupPolicySpec,
    secrets: &mut Secrets,
    ops: Option<&OpsApi>,
    tools: &PostgresTools,
) -> Result<Option<DatabaseSource>, StepError> {
    let Some(database) = &spec.targets.database else {
        return Ok(None);
    };
    if let Some(pg) = &database.postgres {
        let connection = postgres_connection(
            secrets,
            "spec.targets.database.postgres.connectionSecretRef",
            &pg.connection_secret_ref.name,
        )
        .await?;
        let mut source = PostgresSource::new(connection);
        source.tools = tools.clone();
        return Ok(Some(DatabaseSource::Postgres(source)));
    }
    if let Some(sqlite) = &database.sqlite {
        let ops = ops.ok_or_else(|| {
            StepError::Setup("spec.app is required when the database target is sqlite".into())
        })?;
        // fieldbook counts the rows of the snapshot it sends; restores check against them.
        let crate::ops_api::Snapshot {
            body: snapshot,
            row_counts,
        } = ops
            .snapshot()
            .await
            .map_err(|e| StepError::Setup(format!("spec.targets.database.sqlite: {e}")))?;
        return Ok(Some(DatabaseSource::Sqlite {
            name: sqlite.name.clone(),
            snapshot,
            row_counts,
        }));
    }
    Ok(None)
}

/// The objects (photos) source.
pub async fn objects(
    spec: &BackupPolicySpec,
    secrets: &mut Secrets,
) -> Result<Option<ObjectsSource>, StepError> {
    let Some(location) = &spec.targets.objects else {
        return Ok(None);
    };
    // The S3 prefix is part of the store, so objects are listed from its root.
    let store = storage("spec.targets.objects", location, secrets, true).await?;
    Ok(Some(ObjectsSource::new(store, "")))
}

/// The config archive: the selected ConfigMaps and Secrets of the namespace and the app's
/// settings, as one JSON document (encrypted like every part). Config is small — Kubernetes
/// caps each object at 1 MiB — so the archive is built in memory.
pub async fn config(
    target: Option<&ConfigTarget>,
    client: &Client,
    namespace: &str,
    ops: Option<&OpsApi>,
) -> Result<Option<(ConfigSource, u64)>, StepError> {
    let Some(target) = target else {
        return Ok(None);
    };
    let mut count = 0u64;
    let mut document = json!({ "format": 1, "namespace": namespace });
    if let Some(selector) = &target.config_map_selector {
        let field = "spec.targets.config.configMapSelector";
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let params = ListParams::default().labels(&selector_string(field, selector)?);
        let list = api
            .list(&params)
            .await
            .map_err(|e| StepError::Setup(format!("{field}: listing ConfigMaps: {e}")))?;
        let items: Vec<_> = list
            .items
            .iter()
            .map(|cm| {
                json!({
                    "name": cm.name_any(),
                    "labels": cm.labels(),
                    "annotations": portable_annotations(cm.annotations()),
                    "data": cm.data,
                    "binaryData": cm.binary_data,
                    "immutable": cm.immutable,
                })
            })
            .collect();
        count += items.len() as u64;
        document["configMaps"] = json!(items);
    }
    if let Some(selector) = &target.secret_selector {
        let field = "spec.targets.config.secretSelector";
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let params = ListParams::default().labels(&selector_string(field, selector)?);
        let list = api.list(&params).await.map_err(|e| {
            StepError::Setup(format!(
                "{field}: listing Secrets: {e} (archiving Secrets needs the tend-config-backup role in this namespace; see docs/rbac.md)"
            ))
        })?;
        let items: Vec<_> = list
            .items
            .iter()
            .map(|s| {
                json!({
                    "name": s.name_any(),
                    "type": s.type_,
                    "labels": s.labels(),
                    "annotations": portable_annotations(s.annotations()),
                    "data": s.data,
                    "immutable": s.immutable,
                })
            })
            .collect();
        count += items.len() as u64;
        document["secrets"] = json!(items);
    }
    if target.app_settings {
        let ops = ops.ok_or_else(|| {
            StepError::Setup("spec.app is required when targets.config.appSettings is true".into())
        })?;
        let settings = ops
            .settings()
            .await
            .map_err(|e| StepError::Setup(format!("spec.targets.config.appSettings: {e}")))?;
        count += 1;
        document["appSettings"] = settings;
    }
    let bytes = serde_json::to_vec_pretty(&document).expect("a JSON value serializes");
    Ok(Some((
        ConfigSource {
            archive: Box::pin(std::io::Cursor::new(bytes)),
            content: "json".into(),
        },
        count,
    )))
}

/// Annotations worth restoring: not the ones the API server or kubectl manage.
fn portable_annotations(
    annotations: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    annotations
        .iter()
        .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A LabelSelector as the `labelSelector` query string.
pub fn selector_string(field: &str, selector: &LabelSelector) -> Result<String, StepError> {
    let mut terms = Vec::new();
    for (key, value) in selector.match_labels.iter().flatten() {
        terms.push(format!("{key}={value}"));
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default();
        let term = match expr.operator.as_str() {
            "In" if !values.is_empty() => format!("{} in ({})", expr.key, values.join(",")),
            "NotIn" if !values.is_empty() => format!("{} notin ({})", expr.key, values.join(",")),
            "Exists" if values.is_empty() => expr.key.clone(),
            "DoesNotExist" if values.is_empty() => format!("!{}", expr.key),
            other => {
                return Err(StepError::Setup(format!(
                    "{field}.matchExpressions: operator {other:?} with {} values is not valid",
                    values.len()
                )));
            }
        };
        terms.push(term);
    }
    Ok(terms.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_become_query_strings() {
        let selector = LabelSelector {
            match_labels: Some([("app".to_string(), "fieldbook".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["web".into(), "db".into()]),
                },
                LabelSelectorRequirement {
                    key: "skip".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            selector_string("f", &selector).unwrap(),
            "app=fieldbook,tier in (web,db),!skip"
        );
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: None,
            }]),
        };
        let error = selector_string("spec.x", &bad).unwrap_err().to_string();
        assert!(error.contains("spec.x.matchExpressions"), "{error}");
    }
}
