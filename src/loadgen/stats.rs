//! Counting and the final summary of a load-generator run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::events::{OutputEvent, OutputTopic};
use super::flow::Class;

#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// (input topic token, command type) -> commands produced.
    pub commands: BTreeMap<(&'static str, &'static str), u64>,
    /// (output topic, type/status) -> events consumed.
    pub events: BTreeMap<(OutputTopic, String), u64>,
    /// ERROR code -> count.
    pub errors: BTreeMap<String, u64>,
    /// dead-letter reason -> count.
    pub dead_letters: BTreeMap<String, u64>,
    /// Outputs that could not be decoded.
    pub undecodable: u64,
    /// Outputs whose traceparent carries the trace id of a command we sent.
    pub traced: u64,
    pub produce_errors: u64,
    pub timeouts: u64,
    pub unexpected: u64,
    /// Logins answered (session CREATE with any answer).
    pub logins_answered: u64,
    /// End-to-end latencies in microseconds by class.
    pub latency_us: BTreeMap<Class, Vec<u64>>,
}

impl Stats {
    pub fn command(&mut self, topic: &'static str, kind: &'static str) {
        *self.commands.entry((topic, kind)).or_default() += 1;
    }

    pub fn event(&mut self, ev: &OutputEvent) {
        *self.events.entry((ev.topic, ev.kind.clone())).or_default() += 1;
        if let Some(code) = &ev.code {
            *self.errors.entry(code.clone()).or_default() += 1;
        }
        if ev.topic == OutputTopic::DeadLetter {
            *self.dead_letters.entry(ev.kind.clone()).or_default() += 1;
        }
    }

    pub fn latency(&mut self, class: Class, took: Duration) {
        self.latency_us
            .entry(class)
            .or_default()
            .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn commands_total(&self) -> u64 {
        self.commands.values().sum()
    }

    pub fn events_total(&self) -> u64 {
        self.events.values().sum()
    }

    /// The summary; the `key: name=value` lines are stable for scripts.
    pub fn render(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "== loadgen summary ({:.1} s) ==",
            elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "commands in: {}", self.commands_total());
        for ((topic, kind), n) in &self.commands {
            let _ = writeln!(out, "  {topic:<30} {kind:<15} {n}");
        }
        let _ = writeln!(out, "events out: {}", self.events_total());
        for ((topic, kind), n) in &self.events {
            let _ = writeln!(out, "  {:<30} {kind:<26} {n}", topic.short());
        }
        let _ = writeln!(out, "errors by code:");
        for (code, n) in &self.errors {
            let _ = writeln!(out, "  {code:<26} {n}");
        }
        let dlq: u64 = self.dead_letters.values().sum();
        let _ = writeln!(out, "dead letters: {dlq}");
        for (reason, n) in &self.dead_letters {
            let _ = writeln!(out, "  {reason:<26} {n}");
        }
        let _ = writeln!(
            out,
            "problems: timeouts={} unexpected={} produce_errors={} undecodable={}",
            self.timeouts, self.unexpected, self.produce_errors, self.undecodable
        );
        let _ = writeln!(
            out,
            "trace: outputs_with_command_trace_id={} of {}",
            self.traced,
            self.events_total()
        );
        let all: Vec<u64> = self.latency_us.values().flatten().copied().collect();
        let _ = writeln!(out, "{}", latency_line("all", &all));
        for (class, v) in &self.latency_us {
            let _ = writeln!(out, "{}", latency_line(class.label(), v));
        }
        let _ = writeln!(
            out,
            "throughput: commands_per_s={:.1} events_per_s={:.1} logins_per_s={:.1}",
            self.commands_total() as f64 / secs,
            self.events_total() as f64 / secs,
            self.logins_answered as f64 / secs
        );
        out
    }
}

/// `latency_ms: class=<c> n=.. p50=.. p99=.. max=..`
pub fn latency_line(label: &str, samples: &[u64]) -> String {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "latency_ms: class={label} n={} p50={:.1} p99={:.1} max={:.1}",
        v.len(),
        ms(percentile(&v, 50.0)),
        ms(percentile(&v, 99.0)),
        ms(v.last().copied().unwrap_or(0))
    )
}

/// Nearest-rank percentile of sorted samples (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(
            latency_line("login", &[3000, 1000, 2000]),
            "latency_ms: class=login n=3 p50=2.0 p99=3.0 max=3.0"
        );
    }
}
