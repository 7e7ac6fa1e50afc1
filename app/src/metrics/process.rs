//! The standard process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_start_time_seconds`, `process_open_fds`, `process_max_fds`), named
//! as every Prometheus client library names them so stock dashboards and
//! alert rules work. prometheus-client has no process collector, so this one
//! reads `/proc/self` at scrape time; off Linux it reports nothing.
//!
//! CPU and start times in `/proc/self/stat` are in clock ticks. Their rate is
//! `sysconf(_SC_CLK_TCK)`, which needs libc and `unsafe` (this crate forbids
//! it); the kernel's USER_HZ is 100 on every Linux architecture it exports to
//! user space, so 100 is used. Memory comes from `/proc/self/status` in kB,
//! which needs no page size.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// USER_HZ: clock ticks per second in `/proc/<pid>/stat` (see module docs).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says about this process at one instant.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<i64>,
    pub virtual_bytes: Option<i64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<i64>,
    pub max_fds: Option<i64>,
}

/// (user + system CPU seconds, start time in seconds after boot) from the
/// text of `/proc/<pid>/stat`.
pub fn parse_stat(stat: &str) -> Option<(f64, f64)> {
    // The command name is in parentheses and may itself hold spaces or ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15, starttime 22.
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let cpu = (field(14)? + field(15)?) / TICKS_PER_SECOND;
    let started = field(22)? / TICKS_PER_SECOND;
    Some((cpu, started))
}

/// A `VmRSS:   1234 kB` style line of `/proc/<pid>/status`, in bytes.
pub fn parse_status_kib(status: &str, key: &str) -> Option<i64> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
    let kib: i64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// Boot time (`btime`) from `/proc/stat`, in Unix seconds.
pub fn parse_boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of open files from `/proc/<pid>/limits`; None when unlimited.
pub fn parse_max_fds(limits: &str) -> Option<i64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

impl ProcessSample {
    /// Reads `/proc/self`; every value that cannot be read stays None.
    pub fn read() -> ProcessSample {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat").and_then(|s| parse_stat(&s));
        let status = read("/proc/self/status");
        let boot = read("/proc/stat").and_then(|s| parse_boot_time(&s));
        ProcessSample {
            cpu_seconds: stat.map(|(cpu, _)| cpu),
            resident_bytes: status.as_deref().and_then(|s| parse_status_kib(s, "VmRSS")),
            virtual_bytes: status
                .as_deref()
                .and_then(|s| parse_status_kib(s, "VmSize")),
            start_time_seconds: stat
                .zip(boot)
                .map(|((_, after_boot), boot)| boot + after_boot),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count().try_into().unwrap_or(i64::MAX)),
            max_fds: read("/proc/self/limits").and_then(|s| parse_max_fds(&s)),
        }
    }
}

/// Registered without the `fieldbook_` prefix: these names are a convention
/// shared by all exporters.
#[derive(Debug, Default)]
pub struct ProcessCollector;

fn gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<N>,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let Some(value) = value else { return Ok(()) };
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = ProcessSample::read();
        if let Some(cpu) = sample.cpu_seconds {
            let counter = ConstCounter::new(cpu);
            // A counter: the exposition adds `_total` to the samples.
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?)?;
        }
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            sample.resident_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            sample.virtual_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            sample.start_time_seconds,
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors.",
            sample.open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            sample.max_fds,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_command_name_with_spaces_and_parens() {
        let stat = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 3000 0 0 0 250 50 0 0 20 0 8 0 12345 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(stat), Some((3.0, 123.45)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_limits_and_boot_time_parse() {
        let status = "Name:\tfieldbook\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(10_485_760));
        assert_eq!(parse_status_kib(status, "VmSize"), Some(209_715_200));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\n"),
            Some(1.7e9)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_readable_on_linux() {
        let sample = ProcessSample::read();
        assert!(sample.cpu_seconds.is_some_and(|c| c >= 0.0), "{sample:?}");
        assert!(sample.resident_bytes.is_some_and(|r| r > 0), "{sample:?}");
        assert!(sample.open_fds.is_some_and(|n| n > 0), "{sample:?}");
        // Not compared with the clock: the year-ahead test run fakes it, not btime.
        let started = sample.start_time_seconds.unwrap();
        assert!(started > 1.0e9, "{sample:?}");
    }
}
