//! The windowed aggregations of the metrics source — `rate`, `increase`, `errorRatio` and
//! `quantile` — over the scrapes tend keeps itself. Pure: scrapes come in with the time they
//! were taken, nothing here reads a clock or the network.
//!
//! A [`Window`] keeps, for one rule, the selected series of each scrape taken within the last
//! `span`. Memory is bounded per rule: at most [`MAX_SERIES`] series per scrape (more is an
//! error that asks for a narrower selector) and at most [`MAX_SCRAPES`] scrapes (a scrape less
//! than `2 * span / MAX_SCRAPES` after the one before the newest replaces the newest). Label
//! sets are shared between scrapes, so a steady series costs a pointer and a number per scrape.
//!
//! Counter semantics follow PromQL: a value lower than the one before is a reset (the counter
//! restarted from 0), so the increase across it is the new value. A series that appears after
//! the window's first scrape is counted from 0, because client libraries create a labelled
//! counter at its first increment (fieldbook's first `status="503"` request would otherwise be
//! lost). Unlike PromQL there is no extrapolation to the window's edges: `increase` is what was
//! observed between the first and last kept scrape, and `rate` divides it by that time.
//!
//! Over 400 lines because of its unit tests; the code itself is less than half.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

/// The labels of one series (its name is implied by the rule).
pub type Labels = BTreeMap<String, String>;

/// Series of one scrape a rule may keep; a page that selects more is refused.
pub const MAX_SERIES: usize = 500;
/// Scrapes a rule keeps at most (`MAX_SERIES * MAX_SCRAPES` numbers in the worst case).
pub const MAX_SCRAPES: usize = 120;

/// Why a window has no value.
#[derive(Clone, Debug, PartialEq)]
pub enum NoValue {
    /// Not enough scrapes yet: not an error, the state stays.
    NotYet(String),
    /// The data cannot give a value (no series, no `+Inf` bucket...).
    Error(String),
}

struct Scrape {
    at: Timestamp,
    series: BTreeMap<Arc<Labels>, f64>,
}

/// The scrapes of one rule within its window.
pub struct Window {
    span: Duration,
    scrapes: VecDeque<Scrape>,
}

impl Window {
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            scrapes: VecDeque::new(),
        }
    }

    /// Number of scrapes kept.
    pub fn len(&self) -> usize {
        self.scrapes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scrapes.is_empty()
    }

    /// The newest scrape's time.
    pub fn newest(&self) -> Option<Timestamp> {
        self.scrapes.back().map(|s| s.at)
    }

    /// Adds the selected series of a scrape taken at `at` and drops scrapes older than the
    /// window. A scrape older than the newest kept one (the clock went back) starts afresh.
    pub fn push(&mut self, at: Timestamp, series: Vec<(Labels, f64)>) -> Result<(), String> {
        if series.len() > MAX_SERIES {
            return Err(format!(
                "{} series selected, more than the {MAX_SERIES} a windowed aggregation keeps",
                series.len()
            ));
        }
        if self.newest().is_some_and(|newest| at < newest) {
            self.scrapes.clear();
        }
        let previous = self.scrapes.back();
        let series = series
            .into_iter()
            .map(|(labels, value)| {
                let shared = previous
                    .and_then(|p| p.series.get_key_value(&labels))
                    .map(|(key, _)| key.clone())
                    .unwrap_or_else(|| Arc::new(labels));
                (shared, value)
            })
            .collect();
        let scrape = Scrape { at, series };
        // Thinning, so that a window holds at most about MAX_SCRAPES / 2 scrapes: when the
        // newest kept scrape is less than `min_gap` after the one before it, the new scrape
        // replaces it (the oldest, which anchors the window, is never replaced). A reset inside
        // a replaced stretch loses the increase before it; the cost of bounded memory.
        let min_gap = self.span / (MAX_SCRAPES as u32 / 2);
        let len = self.scrapes.len();
        let too_close = len >= 2 && elapsed(self.scrapes[len - 2].at, at) < min_gap;
        if too_close {
            self.scrapes.pop_back();
        }
        self.scrapes.push_back(scrape);
        let cutoff = at - jiff::SignedDuration::try_from(self.span).unwrap_or_default();
        while self.scrapes.front().is_some_and(|s| s.at < cutoff) {
            self.scrapes.pop_front();
        }
        while self.scrapes.len() > MAX_SCRAPES {
            self.scrapes.pop_front();
        }
        Ok(())
    }

    /// The scrapes, or why they cannot give a value yet: at least two, at least half the window
    /// apart (a rate from a sliver of the window would be noise).
    fn ready(&self) -> Result<(&Scrape, &Scrape), NoValue> {
        let needed = self.span / 2;
        match (self.scrapes.front(), self.scrapes.back()) {
            (Some(first), Some(last)) if self.scrapes.len() >= 2 => {
                let covered = elapsed(first.at, last.at);
                if covered >= needed && !covered.is_zero() {
                    Ok((first, last))
                } else {
                    Err(NoValue::NotYet(format!(
                        "no data yet: {} scrapes over {}s of the {}s window; a value needs {}s",
                        self.scrapes.len(),
                        covered.as_secs(),
                        self.span.as_secs(),
                        needed.as_secs()
                    )))
                }
            }
            _ => Err(NoValue::NotYet(format!(
                "no data yet: {} scrape(s) in the {}s window; a value needs two, {}s apart",
                self.scrapes.len(),
                self.span.as_secs(),
                needed.as_secs()
            ))),
        }
    }

    /// Increase of every series over the window (resets handled, new series from 0), and the
    /// seconds between the first and last scrape.
    fn increases(&self) -> Result<(BTreeMap<Arc<Labels>, f64>, f64), NoValue> {
        let (first, last) = self.ready()?;
        let mut previous: BTreeMap<Arc<Labels>, f64> = BTreeMap::new();
        let mut increase: BTreeMap<Arc<Labels>, f64> = BTreeMap::new();
        for (index, scrape) in self.scrapes.iter().enumerate() {
            for (labels, &value) in &scrape.series {
                if value.is_nan() {
                    continue;
                }
                let total = increase.entry(labels.clone()).or_insert(0.0);
                match previous.get(labels) {
                    Some(&before) if value >= before => *total += value - before,
                    // A drop is a reset: the counter started again from 0.
                    Some(_) => *total += value,
                    // Seen first after the window's first scrape: created since, from 0.
                    None if index > 0 => *total += value,
                    None => {}
                }
                previous.insert(labels.clone(), value);
            }
        }
        let seconds = elapsed(first.at, last.at).as_secs_f64();
        Ok((increase, seconds))
    }

    /// Sum of the series' increases over the window; no series at all is an error.
    pub fn increase(&self) -> Result<f64, NoValue> {
        let (increases, _) = self.increases()?;
        if increases.is_empty() {
            return Err(NoValue::Error("no series selected in the window".into()));
        }
        Ok(increases.values().sum())
    }

    /// [`Window::increase`] per second between the first and last scrape.
    pub fn rate(&self) -> Result<f64, NoValue> {
        let (increases, seconds) = self.increases()?;
        if increases.is_empty() {
            return Err(NoValue::Error("no series selected in the window".into()));
        }
        Ok(increases.values().sum::<f64>() / seconds)
    }

    /// Increase of the series that also match `errors` divided by the increase of all: the
    /// ratio of the rates. No traffic in the window (and no selected series) is 0: an idle
    /// service has no error rate; alert on `rate` for "no traffic".
    pub fn error_ratio(&self, errors: &Labels) -> Result<f64, NoValue> {
        let (increases, _) = self.increases()?;
        let total: f64 = increases.values().sum();
        let failed: f64 = increases
            .iter()
            .filter(|(labels, _)| errors.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .map(|(_, v)| v)
            .sum();
        if total <= 0.0 {
            return Ok(0.0);
        }
        Ok(failed / total)
    }

    /// The `q` quantile of the histogram whose `_bucket` series the window holds (each with an
    /// `le` label), from the buckets' increase over the window, interpolated linearly inside
    /// the bucket like PromQL's `histogram_quantile`. Buckets of every selected series with the
    /// same `le` are added. No observations in the window is "no data yet".
    pub fn quantile(&self, q: f64) -> Result<f64, NoValue> {
        let (increases, _) = self.increases()?;
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for (labels, increase) in &increases {
            let Some(le) = labels.get("le") else {
                return Err(NoValue::Error(
                    "a selected series has no `le` label; quantile needs the histogram's _bucket series".into(),
                ));
            };
            let bound = parse_bound(le)
                .ok_or_else(|| NoValue::Error(format!("a bucket's le={le:?} is not a number")))?;
            match buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, count)) => *count += increase,
                None => buckets.push((bound, *increase)),
            }
        }
        if buckets.is_empty() {
            return Err(NoValue::Error(
                "no histogram buckets selected in the window".into(),
            ));
        }
        histogram_quantile(q, &mut buckets)
    }
}

/// Time from `from` to `to`, zero when `to` is earlier.
fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        other => other.parse::<f64>().ok().filter(|v| !v.is_nan()),
    }
}

/// PromQL's `histogram_quantile` on cumulative `(upper bound, count)` buckets.
pub fn histogram_quantile(q: f64, buckets: &mut [(f64, f64)]) -> Result<f64, NoValue> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets
        .last()
        .is_none_or(|(bound, _)| *bound != f64::INFINITY)
    {
        return Err(NoValue::Error(
            "the histogram has no le=\"+Inf\" bucket".into(),
        ));
    }
    // Scrapes of different buckets are not atomic: make the counts monotonic, as PromQL does.
    let mut highest = 0.0_f64;
    for (_, count) in buckets.iter_mut() {
        highest = highest.max(*count);
        *count = highest;
    }
    let total = buckets[buckets.len() - 1].1;
    if total <= 0.0 {
        return Err(NoValue::NotYet(
            "no data yet: no observations in the window".into(),
        ));
    }
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        return Err(NoValue::Error(format!(
            "quantile {q} is not between 0 and 1"
        )));
    }
    let rank = q * total;
    let index = buckets
        .iter()
        .position(|(_, count)| *count >= rank)
        .unwrap_or(buckets.len() - 1);
    if index == buckets.len() - 1 {
        // In the +Inf bucket: the highest finite bound is the best answer (as in PromQL).
        return Ok(if buckets.len() >= 2 {
            buckets[buckets.len() - 2].0
        } else {
            f64::INFINITY
        });
    }
    let (upper, count) = buckets[index];
    let (lower, below) = if index == 0 {
        // The lowest bucket starts at 0 unless its bound is negative.
        (if upper > 0.0 { 0.0 } else { upper }, 0.0)
    } else {
        buckets[index - 1]
    };
    if count == below {
        return Ok(upper);
    }
    Ok(lower + (upper - lower) * (rank - below) / (count - below))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> Timestamp {
        // Any instant will do; derived from the real clock so no calendar date is pinned.
        static BASE: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
        let base = *BASE.get_or_init(Timestamp::now);
        base + jiff::SignedDuration::from_secs(seconds)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn one(value: f64) -> Vec<(Labels, f64)> {
        vec![(labels(&[("route", "/")]), value)]
    }

    fn window(span: u64, scrapes: &[(i64, Vec<(Labels, f64)>)]) -> Window {
        let mut w = Window::new(Duration::from_secs(span));
        for (at, series) in scrapes {
            w.push(t(*at), series.clone()).unwrap();
        }
        w
    }

    fn not_yet(result: Result<f64, NoValue>) -> bool {
        matches!(result, Err(NoValue::NotYet(_)))
    }

    #[test]
    fn a_value_needs_two_scrapes_half_a_window_apart() {
        let w = window(60, &[]);
        assert!(not_yet(w.rate()));
        let w = window(60, &[(0, one(1.0))]);
        assert!(not_yet(w.rate()));
        let w = window(60, &[(0, one(1.0)), (29, one(2.0))]);
        match w.rate() {
            Err(NoValue::NotYet(text)) => {
                assert_eq!(
                    text,
                    "no data yet: 2 scrapes over 29s of the 60s window; a value needs 30s"
                )
            }
            other => panic!("{other:?}"),
        }
        let w = window(60, &[(0, one(1.0)), (30, one(4.0))]);
        assert_eq!(w.rate(), Ok(0.1));
    }

    #[test]
    fn increase_and_rate_of_a_steady_counter() {
        let w = window(
            60,
            &[
                (0, one(10.0)),
                (10, one(15.0)),
                (20, one(25.0)),
                (40, one(30.0)),
            ],
        );
        assert_eq!(w.increase(), Ok(20.0));
        assert_eq!(w.rate(), Ok(0.5));
    }

    #[test]
    fn a_drop_is_a_counter_reset() {
        // 100 → 110 (+10), restart → 3 (+3), → 8 (+5): 18 in 30 s.
        let w = window(
            60,
            &[
                (0, one(100.0)),
                (10, one(110.0)),
                (20, one(3.0)),
                (30, one(8.0)),
            ],
        );
        assert_eq!(w.increase(), Ok(18.0));
        assert_eq!(w.rate(), Ok(0.6));
    }

    #[test]
    fn scrapes_older_than_the_window_are_dropped() {
        let mut w = window(30, &[(0, one(0.0)), (10, one(100.0)), (20, one(110.0))]);
        assert_eq!(w.len(), 3);
        w.push(t(40), one(130.0)).unwrap();
        // 0 and 10 are older than 40 - 30 = 10? 10 is kept (not older), 0 is dropped.
        assert_eq!(w.len(), 3);
        assert_eq!(w.increase(), Ok(30.0));
        w.push(t(41), one(131.0)).unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(w.increase(), Ok(21.0));
    }

    #[test]
    fn a_series_that_appears_later_counts_from_zero() {
        let ok = labels(&[("status", "200")]);
        let failed = labels(&[("status", "503")]);
        let w = window(
            60,
            &[
                (0, vec![(ok.clone(), 100.0)]),
                (15, vec![(ok.clone(), 130.0), (failed.clone(), 4.0)]),
                (30, vec![(ok.clone(), 160.0), (failed.clone(), 10.0)]),
            ],
        );
        assert_eq!(w.increase(), Ok(70.0));
        // 10 errors of 70 requests.
        let ratio = w.error_ratio(&labels(&[("status", "503")])).unwrap();
        assert!((ratio - 10.0 / 70.0).abs() < 1e-12, "{ratio}");
    }

    #[test]
    fn error_ratio_without_traffic_is_zero_and_without_errors_zero() {
        let w = window(60, &[(0, one(5.0)), (30, one(5.0))]);
        assert_eq!(w.error_ratio(&labels(&[("status", "500")])), Ok(0.0));
        let w = window(60, &[(0, vec![]), (30, vec![])]);
        assert_eq!(w.error_ratio(&labels(&[("status", "500")])), Ok(0.0));
        let w = window(60, &[(0, one(5.0)), (30, one(25.0))]);
        assert_eq!(w.error_ratio(&labels(&[("status", "500")])), Ok(0.0));
        // Everything failing is 1.
        assert_eq!(w.error_ratio(&labels(&[("route", "/")])), Ok(1.0));
    }

    #[test]
    fn no_series_is_an_error_for_rate_and_increase() {
        let w = window(60, &[(0, vec![]), (30, vec![])]);
        assert!(matches!(w.rate(), Err(NoValue::Error(_))));
        assert!(matches!(w.increase(), Err(NoValue::Error(_))));
    }

    #[test]
    fn nan_samples_are_skipped() {
        let w = window(60, &[(0, one(1.0)), (10, one(f64::NAN)), (30, one(4.0))]);
        assert_eq!(w.increase(), Ok(3.0));
    }

    fn buckets(counts: &[(&str, f64)]) -> Vec<(Labels, f64)> {
        counts
            .iter()
            .map(|(le, v)| (labels(&[("le", le), ("route", "/")]), *v))
            .collect()
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // Increase over the window: ≤0.1: 50, ≤0.5: 90, ≤1: 100, +Inf: 100.
        let w = window(
            60,
            &[
                (
                    0,
                    buckets(&[("0.1", 10.0), ("0.5", 10.0), ("1", 10.0), ("+Inf", 10.0)]),
                ),
                (
                    30,
                    buckets(&[("0.1", 60.0), ("0.5", 100.0), ("1", 110.0), ("+Inf", 110.0)]),
                ),
            ],
        );
        // p50: rank 50, in the first bucket at its top: 0 + 0.1 * 50/50 = 0.1.
        assert!((w.quantile(0.5).unwrap() - 0.1).abs() < 1e-12);
        // p95: rank 95, in (0.5, 1]: 0.5 + 0.5 * (95 - 90) / (100 - 90) = 0.75.
        assert!((w.quantile(0.95).unwrap() - 0.75).abs() < 1e-12);
        // p25: rank 25 in [0, 0.1]: 0.05.
        assert!((w.quantile(0.25).unwrap() - 0.05).abs() < 1e-12);
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_bound() {
        let w = window(
            60,
            &[
                (0, buckets(&[("0.1", 0.0), ("1", 0.0), ("+Inf", 0.0)])),
                (30, buckets(&[("0.1", 1.0), ("1", 2.0), ("+Inf", 10.0)])),
            ],
        );
        assert_eq!(w.quantile(0.99), Ok(1.0));
    }

    #[test]
    fn quantile_adds_series_with_the_same_bound_and_needs_inf() {
        let mut a = buckets(&[("1", 0.0), ("+Inf", 0.0)]);
        a.push((labels(&[("le", "1"), ("route", "/x")]), 0.0));
        a.push((labels(&[("le", "+Inf"), ("route", "/x")]), 0.0));
        let mut b = buckets(&[("1", 4.0), ("+Inf", 4.0)]);
        b.push((labels(&[("le", "1"), ("route", "/x")]), 4.0));
        b.push((labels(&[("le", "+Inf"), ("route", "/x")]), 4.0));
        let w = window(60, &[(0, a), (30, b)]);
        // 8 observations, all ≤ 1: p50 = 0 + 1 * 4/8.
        assert_eq!(w.quantile(0.5), Ok(0.5));

        let w = window(
            60,
            &[(0, buckets(&[("1", 0.0)])), (30, buckets(&[("1", 3.0)]))],
        );
        assert_eq!(
            w.quantile(0.5),
            Err(NoValue::Error(
                "the histogram has no le=\"+Inf\" bucket".into()
            ))
        );
        let w = window(60, &[(0, one(0.0)), (30, one(3.0))]);
        assert!(matches!(w.quantile(0.5), Err(NoValue::Error(e)) if e.contains("`le`")));
    }

    #[test]
    fn quantile_without_observations_is_no_data_yet() {
        let w = window(
            60,
            &[
                (0, buckets(&[("1", 7.0), ("+Inf", 7.0)])),
                (30, buckets(&[("1", 7.0), ("+Inf", 7.0)])),
            ],
        );
        assert!(not_yet(w.quantile(0.95)));
    }

    #[test]
    fn non_monotonic_buckets_are_fixed() {
        let mut b = vec![(0.1, 5.0), (0.5, 4.0), (f64::INFINITY, 10.0)];
        // After the fix: 5, 5, 10. p50 = rank 5 → in the first bucket: 0.1.
        assert_eq!(histogram_quantile(0.5, &mut b), Ok(0.1));
    }

    #[test]
    fn series_are_capped_and_scrapes_thinned() {
        let mut w = Window::new(Duration::from_secs(1200));
        let many: Vec<(Labels, f64)> = (0..=MAX_SERIES)
            .map(|i| (labels(&[("i", &i.to_string())]), 1.0))
            .collect();
        let error = w.push(t(0), many).unwrap_err();
        assert!(error.contains("501 series selected"), "{error}");
        // A scrape every second for 1200 s: at most MAX_SCRAPES are kept.
        for second in 0..1200 {
            w.push(t(second), one(second as f64)).unwrap();
        }
        assert!(w.len() <= MAX_SCRAPES, "{}", w.len());
        // The first one anchors the window, so the increase is still the whole of it.
        assert_eq!(w.increase(), Ok(1199.0));
    }

    #[test]
    fn a_clock_that_goes_back_starts_afresh() {
        let mut w = window(60, &[(10, one(1.0)), (40, one(2.0))]);
        w.push(t(5), one(3.0)).unwrap();
        assert_eq!(w.len(), 1);
        assert!(not_yet(w.rate()));
    }

    #[test]
    fn label_sets_are_shared_between_scrapes() {
        let w = window(60, &[(0, one(1.0)), (30, one(2.0))]);
        let first = w.scrapes[0].series.keys().next().unwrap();
        let second = w.scrapes[1].series.keys().next().unwrap();
        assert!(Arc::ptr_eq(first, second));
    }
}
