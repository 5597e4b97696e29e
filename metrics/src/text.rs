//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` lines, samples with escaped label values (policy and rule names
//! come from operators' files), histograms as cumulative `_bucket` lines
//! ending with `le="+Inf"`, then `_sum` and `_count`.

use std::fmt::Write;

use crate::registry::{Counter, Family, Histogram, HistogramSnapshot};

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// Writes one exposition. Metric and label names are the program's own
/// (checked in debug builds); label values and help texts are escaped.
#[derive(Debug, Default)]
pub struct TextEncoder {
    out: String,
}

/// Whether `name` is a valid metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes a help text: backslash and line feed.
fn escape_help(help: &str, out: &mut String) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as the format spells it: `+Inf`, `-Inf`, `NaN`, or the
/// shortest decimal that reads back as the same `f64`.
fn write_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

impl TextEncoder {
    pub fn new() -> TextEncoder {
        TextEncoder::default()
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(help, &mut self.out);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<f64>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (name, value) in labels {
            debug_assert!(valid_name(name) && *name != "le", "label name {name:?}");
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_label_value(value, &mut self.out);
            self.out.push('"');
        }
        if let Some(le) = le {
            if !first {
                self.out.push(',');
            }
            self.out.push_str("le=\"");
            write_value(le, &mut self.out);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// One sample line of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        write_value(value, &mut self.out);
        self.out.push('\n');
    }

    /// One sample line with an integer value, written exactly.
    pub fn sample_u64(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        debug_assert!(valid_name(name), "metric name {name:?}");
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// One histogram's lines (`_bucket` for each bound and `+Inf`, `_sum`,
    /// `_count`) of the current family.
    pub fn histogram_samples(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        snapshot: &HistogramSnapshot,
    ) {
        let bucket = format!("{name}_bucket");
        for (bound, count) in &snapshot.cumulative {
            self.out.push_str(&bucket);
            self.labels(labels, Some(*bound));
            let _ = writeln!(self.out, " {count}");
        }
        self.out.push_str(&bucket);
        self.labels(labels, Some(f64::INFINITY));
        let _ = writeln!(self.out, " {}", snapshot.count);
        self.sample(&format!("{name}_sum"), labels, snapshot.sum);
        self.sample_u64(&format!("{name}_count"), labels, snapshot.count);
    }

    /// A whole family of one gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, MetricType::Gauge);
        self.sample(name, &[], value);
    }

    /// A whole family of one counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, counter: &Counter) {
        self.family(name, help, MetricType::Counter);
        self.sample_u64(name, &[], counter.get());
    }

    /// A whole family of counters, one sample per label value (zeros too,
    /// so that `rate()` sees the first increase).
    pub fn counter_family(&mut self, name: &str, help: &str, family: &Family<Counter>) {
        self.family(name, help, MetricType::Counter);
        for (value, counter) in family.iter() {
            self.sample_u64(name, &[(family.label(), value)], counter.get());
        }
    }

    /// A whole family of histograms, one per label value.
    pub fn histogram_family(&mut self, name: &str, help: &str, family: &Family<Histogram>) {
        self.family(name, help, MetricType::Histogram);
        for (value, histogram) in family.iter() {
            self.histogram_samples(name, &[(family.label(), value)], &histogram.snapshot());
        }
    }

    /// The exposition.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut e = TextEncoder::new();
        e.family("x_rules", "Rules.", MetricType::Gauge);
        e.sample(
            "x_rules",
            &[("policy", "a\\b\"c\nd"), ("rule", "plain é")],
            2.0,
        );
        assert_eq!(
            e.finish(),
            "# HELP x_rules Rules.\n# TYPE x_rules gauge\n\
             x_rules{policy=\"a\\\\b\\\"c\\nd\",rule=\"plain é\"} 2\n"
        );
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        let mut e = TextEncoder::new();
        e.family("x", "a \"b\" \\ c\nd", MetricType::Counter);
        assert_eq!(
            e.finish(),
            "# HELP x a \"b\" \\\\ c\\nd\n# TYPE x counter\n"
        );
    }

    #[test]
    fn values_are_spelled_as_the_format_wants() {
        let mut e = TextEncoder::new();
        for v in [
            0.0,
            1.0,
            0.25,
            -3.5,
            1e-7,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            e.sample("v", &[], v);
        }
        e.sample_u64("v", &[], u64::MAX);
        assert_eq!(
            e.finish(),
            "v 0\nv 1\nv 0.25\nv -3.5\nv 0.0000001\nv +Inf\nv -Inf\nv NaN\nv 18446744073709551615\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf_sum_and_count() {
        let h = Histogram::new(&[0.01, 0.1, 1.0]);
        for v in [0.005, 0.05, 0.07, 0.5, 2.0] {
            h.observe(v);
        }
        let f: Family<Histogram> = Family::histograms("kind", &["full"], &[0.01, 0.1, 1.0]);
        for v in [0.005, 0.05, 0.07, 0.5, 2.0] {
            f.at(0).observe(v);
        }
        let mut e = TextEncoder::new();
        e.histogram_family("x_seconds", "Durations.", &f);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_seconds Durations.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{kind=\"full\",le=\"0.01\"} 1\n\
             x_seconds_bucket{kind=\"full\",le=\"0.1\"} 3\n\
             x_seconds_bucket{kind=\"full\",le=\"1\"} 4\n\
             x_seconds_bucket{kind=\"full\",le=\"+Inf\"} 5\n\
             x_seconds_sum{kind=\"full\"} 2.625\n\
             x_seconds_count{kind=\"full\"} 5\n"
        );
        assert_eq!(h.snapshot(), f.at(0).snapshot());
    }

    #[test]
    fn an_empty_histogram_has_zero_buckets_sum_and_count() {
        let mut e = TextEncoder::new();
        e.histogram_samples("h", &[], &Histogram::new(&[1.0]).snapshot());
        assert_eq!(
            e.finish(),
            "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n"
        );
    }

    #[test]
    fn counter_families_list_every_label_value_even_at_zero() {
        let f: Family<Counter> = Family::new("kind", &["hello", "drift"]);
        f.at(1).add(7);
        let mut e = TextEncoder::new();
        e.counter_family("m_total", "Messages.", &f);
        assert_eq!(
            e.finish(),
            "# HELP m_total Messages.\n# TYPE m_total counter\n\
             m_total{kind=\"hello\"} 0\nm_total{kind=\"drift\"} 7\n"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("hardend_rules"));
        assert!(valid_name("a:b_1"));
        assert!(!valid_name("1a"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }
}
