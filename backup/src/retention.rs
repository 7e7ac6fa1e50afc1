//! Retention: which backups to keep (grandfather-father-son), and the clean-up that goes with
//! it — deleting expired backups, blobs no kept manifest references, parts of runs that never
//! committed, and stale multipart uploads.
//!
//! [`plan_retention`] is pure: it sees backup ids, times and whether a drill verified them, and
//! says what to keep and why. Buckets (days, ISO weeks, months) are taken in the policy's time
//! zone and counted as restic and Proxmox do: "keep N daily" keeps the newest backup of each of
//! the N most recent days *that have a backup*, so a week without backups does not wipe the
//! history. The newest verified backup is always kept, and so is the newest backup, so
//! retention never leaves a policy without a restore point.

use std::collections::{BTreeMap, HashSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::engine::{remove_backup_parts, restore_points};
use crate::manifest::{MANIFEST_NAME, PolicyLocation};
use crate::repository::Repository;
use crate::{Error, Result};

/// How many generations to keep (the API's `Retention`).
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionRules {
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// The zone days, weeks and months are counted in.
    pub time_zone: TimeZone,
}

impl Default for RetentionRules {
    /// The API's default: 7 daily generations, in UTC.
    fn default() -> Self {
        Self {
            keep_last: 0,
            keep_daily: 7,
            keep_weekly: 0,
            keep_monthly: 0,
            time_zone: TimeZone::UTC,
        }
    }
}

/// A backup as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub time: Timestamp,
    /// A drill restored and verified it.
    pub verified: bool,
}

/// Why a backup is kept. `as_str` gives the names the status uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeepReason {
    Last,
    Daily,
    Weekly,
    Monthly,
    NewestVerified,
    /// The newest backup, kept when no rule keeps it.
    Newest,
}

impl KeepReason {
    pub fn as_str(self) -> &'static str {
        match self {
            KeepReason::Last => "last",
            KeepReason::Daily => "daily",
            KeepReason::Weekly => "weekly",
            KeepReason::Monthly => "monthly",
            KeepReason::NewestVerified => "newestVerified",
            KeepReason::Newest => "newest",
        }
    }
}

/// A kept backup and every rule that keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub id: String,
    pub reasons: Vec<KeepReason>,
}

/// What retention will do; both lists newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    pub kept: Vec<Kept>,
    pub deleted: Vec<String>,
}

type BucketOf = fn(jiff::civil::Date) -> Bucket;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Day(i16, i8, i8),
    Week(i16, i8),
    Month(i16, i8),
}

/// Plans retention over `candidates` (any order).
pub fn plan_retention(candidates: &[Candidate], rules: &RetentionRules) -> RetentionPlan {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| (b.time, &b.id).cmp(&(a.time, &a.id)));
    let mut reasons: Vec<Vec<KeepReason>> = vec![Vec::new(); sorted.len()];

    for reason in reasons.iter_mut().take(rules.keep_last as usize) {
        reason.push(KeepReason::Last);
    }
    let rules_by_bucket: [(u32, KeepReason, BucketOf); 3] = [
        (rules.keep_daily, KeepReason::Daily, |d| {
            Bucket::Day(d.year(), d.month(), d.day())
        }),
        (rules.keep_weekly, KeepReason::Weekly, |d| {
            let w = d.iso_week_date();
            Bucket::Week(w.year(), w.week())
        }),
        (rules.keep_monthly, KeepReason::Monthly, |d| {
            Bucket::Month(d.year(), d.month())
        }),
    ];
    for (limit, reason, bucket_of) in rules_by_bucket {
        let mut last: Option<Bucket> = None;
        let mut taken = 0;
        for (i, candidate) in sorted.iter().enumerate() {
            if taken >= limit {
                break;
            }
            let bucket = bucket_of(candidate.time.to_zoned(rules.time_zone.clone()).date());
            if last != Some(bucket) {
                reasons[i].push(reason);
                taken += 1;
                last = Some(bucket);
            }
        }
    }
    if let Some(i) = sorted.iter().position(|c| c.verified) {
        reasons[i].push(KeepReason::NewestVerified);
    }
    if let Some(first) = reasons.first_mut()
        && first.is_empty()
    {
        first.push(KeepReason::Newest);
    }
    let mut plan = RetentionPlan::default();
    for (candidate, mut why) in sorted.into_iter().zip(reasons) {
        if why.is_empty() {
            plan.deleted.push(candidate.id.clone());
        } else {
            why.sort();
            plan.kept.push(Kept {
                id: candidate.id.clone(),
                reasons: why,
            });
        }
    }
    plan
}

/// Inputs of one retention pass.
#[derive(Clone, Debug)]
pub struct RetentionOptions {
    pub rules: RetentionRules,
    /// Ids a drill verified (from status; the repository does not record drills).
    pub verified: HashSet<String>,
    /// The current time (injectable).
    pub now: Timestamp,
    /// Uncommitted backup parts, unreferenced blobs and pending uploads younger than this are
    /// left alone: they may belong to a run in progress.
    pub grace: SignedDuration,
}

/// What a retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub plan: RetentionPlan,
    /// Ids of runs that never committed whose parts were removed.
    pub incomplete_removed: Vec<String>,
    pub blobs_deleted: u64,
    pub uploads_aborted: u64,
}

fn older_than(t: Option<Timestamp>, cutoff: Timestamp) -> bool {
    t.is_none_or(|t| t <= cutoff)
}

/// Plans and applies retention for one policy.
pub async fn apply_retention(
    repo: &dyn Repository,
    location: &PolicyLocation,
    options: &RetentionOptions,
) -> Result<RetentionReport> {
    let cutoff = options
        .now
        .checked_sub(options.grace)
        .map_err(|e| Error::config("retention.grace", e.to_string()))?;
    let points = restore_points(repo, location).await?;
    let candidates: Vec<Candidate> = points
        .iter()
        .map(|p| Candidate {
            id: p.id.clone(),
            time: p.manifest.started_at,
            verified: options.verified.contains(&p.id),
        })
        .collect();
    let plan = plan_retention(&candidates, &options.rules);
    for id in &plan.deleted {
        remove_backup_parts(repo, location, id).await?;
    }

    // Runs that never wrote a manifest (crashed, or their cleanup failed).
    let committed: HashSet<&str> = points.iter().map(|p| p.id.as_str()).collect();
    let prefix = location.backups_prefix();
    let mut uncommitted: BTreeMap<String, Option<Timestamp>> = BTreeMap::new();
    for object in repo.list(&prefix).await? {
        let Some((id, name)) = object
            .key
            .strip_prefix(&prefix)
            .and_then(|r| r.split_once('/'))
        else {
            continue;
        };
        if committed.contains(id) || name == MANIFEST_NAME {
            continue;
        }
        let newest = uncommitted.entry(id.to_owned()).or_insert(object.modified);
        *newest = (*newest).max(object.modified);
    }
    let mut incomplete_removed = Vec::new();
    for (id, modified) in uncommitted {
        if older_than(modified, cutoff) && !plan.kept.iter().any(|k| k.id == id) {
            remove_backup_parts(repo, location, &id).await?;
            incomplete_removed.push(id);
        }
    }

    // Blobs no kept manifest references.
    let kept: HashSet<&str> = plan.kept.iter().map(|k| k.id.as_str()).collect();
    let referenced: HashSet<&str> = points
        .iter()
        .filter(|p| kept.contains(p.id.as_str()))
        .filter_map(|p| p.manifest.objects.as_ref())
        .flat_map(|o| o.entries.values().map(|e| e.sha256.as_str()))
        .collect();
    let mut blobs_deleted = 0;
    for blob in repo.list(&location.blobs_prefix()).await? {
        let unreferenced = location
            .blob_hash(&blob.key)
            .is_none_or(|hash| !referenced.contains(hash));
        if unreferenced && older_than(blob.modified, cutoff) {
            repo.delete(&blob.key).await?;
            blobs_deleted += 1;
        }
    }

    let mut uploads_aborted = 0;
    for upload in repo.list_uploads(&location.root()).await? {
        if older_than(upload.initiated, cutoff) {
            repo.abort_upload(&upload).await?;
            uploads_aborted += 1;
        }
    }
    Ok(RetentionReport {
        plan,
        incomplete_removed,
        blobs_deleted,
        uploads_aborted,
    })
}

#[cfg(test)]
mod tests;
