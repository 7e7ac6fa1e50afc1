//! Verification after a restore: the checks a request (or drill) names — row counts against
//! the manifest, object hashes, SQL queries, the app's own self-check — run against what was
//! restored. The pure parts (judging a result) are in [`super::checks`].

use std::collections::BTreeMap;

use tend_backup::Manifest;
use tend_backup::postgres::{self as pg};
use tend_backup::restore::{ObjectsTarget, check_objects};
use tend_crds::restore_request::{CheckResult, CheckType, RestoreMode};

use super::checks;
use super::run::Run;
use super::targets::RestoredDatabase;
use crate::ops_api::OpsApi;

impl Run<'_> {
    pub(super) async fn run_checks(
        &self,
        manifest: &Manifest,
        database: Option<&RestoredDatabase>,
        objects: Option<&ObjectsTarget>,
        objects_check: Option<(bool, String)>,
        ops: Option<&OpsApi>,
    ) -> Vec<CheckResult> {
        let plan = self.plan;
        let expected = manifest
            .database
            .as_ref()
            .map(|d| d.row_counts.clone())
            .unwrap_or_default();
        let mut specs: Vec<(String, CheckType, Option<String>)> = plan
            .spec
            .checks
            .iter()
            .map(|c| (c.name.clone(), c.type_, c.query.clone()))
            .collect();
        // Row counts and object hashes are always checked.
        if database.is_some()
            && !expected.is_empty()
            && !specs.iter().any(|s| s.1 == CheckType::RowCounts)
        {
            specs.insert(0, ("rowCounts".into(), CheckType::RowCounts, None));
        }
        if objects.is_some() && !specs.iter().any(|s| s.1 == CheckType::ObjectHashes) {
            specs.insert(0, ("objectHashes".into(), CheckType::ObjectHashes, None));
        }
        let mut results = Vec::new();
        for (name, kind, query) in specs {
            let (passed, message) = match kind {
                CheckType::RowCounts => match database {
                    None => (false, "no database was restored".to_string()),
                    Some(db) => match self.row_counts(db).await {
                        Ok(found) => checks::compare_row_counts(&expected, &found),
                        Err(e) => (false, e),
                    },
                },
                CheckType::ObjectHashes => match (&objects_check, objects) {
                    (Some(done), _) => done.clone(),
                    (None, None) => (false, "no objects were restored".to_string()),
                    (None, Some(target)) => match check_objects(target, manifest, 8).await {
                        Ok(report) => checks::describe_objects(&report),
                        Err(e) => (false, e.to_string()),
                    },
                },
                CheckType::Sql => {
                    let query = query.unwrap_or_default();
                    match database {
                        None => (false, "no database was restored".to_string()),
                        Some(RestoredDatabase::Postgres(conn)) => {
                            match pg::check_query(&plan.tools, conn, &query).await {
                                Ok(true) => (true, "returned true".to_string()),
                                Ok(false) => (false, "returned false".to_string()),
                                Err(e) => (false, e.to_string()),
                            }
                        }
                        Some(RestoredDatabase::Sqlite { file, .. }) => {
                            checks::sqlite_check(file.clone(), query).await
                        }
                    }
                }
                CheckType::AppVerify => match ops {
                    Some(ops) if plan.spec.target.mode == RestoreMode::InPlace => {
                        match ops.verify().await {
                            Ok(report) => checks::judge_app_verify(&report),
                            Err(e) => (false, e.to_string()),
                        }
                    }
                    Some(_) => (
                        false,
                        "appVerify checks the app, which does not serve a scratch target"
                            .to_string(),
                    ),
                    None => (false, "the BackupPolicy has no spec.app".to_string()),
                },
                CheckType::Unknown => (false, "unknown check type".to_string()),
            };
            results.push(CheckResult {
                name,
                passed,
                message: Some(message),
            });
        }
        results
    }

    pub(super) async fn row_counts(
        &self,
        db: &RestoredDatabase,
    ) -> Result<BTreeMap<String, u64>, String> {
        match db {
            RestoredDatabase::Postgres(conn) => pg::table_row_counts(&self.plan.tools, conn)
                .await
                .map_err(|e| e.to_string()),
            RestoredDatabase::Sqlite {
                app_tables: Some(tables),
                ..
            } => Ok(tables.clone()),
            RestoredDatabase::Sqlite { file, .. } => checks::sqlite_row_counts(file.clone()).await,
        }
    }
}
