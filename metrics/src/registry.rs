//! The metric values: counters, gauges and histograms kept in atomics, so
//! that the code that counts never takes a lock, and families of them keyed
//! by one label whose values are fixed at compile time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bounds (seconds) for latencies from 0.5 ms to 10 s: an
/// evaluation, a store operation.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down, stored as the bits of an `f64`.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Observations counted into buckets with fixed upper bounds, plus their
/// sum. Buckets are stored per interval (not cumulative) and summed when
/// read, so a reader always sees a consistent count.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then one for values above the last bound.
    buckets: Box<[AtomicU64]>,
    /// The sum of observations, as `f64` bits.
    sum: AtomicU64,
}

/// What a histogram holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound, observations at or below it): cumulative, in order.
    pub cumulative: Vec<(f64, u64)>,
    /// All observations (the `+Inf` bucket).
    pub count: u64,
    pub sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(LATENCY_BUCKETS)
    }
}

impl Histogram {
    /// A histogram with these upper bounds, which must be finite and
    /// strictly increasing.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(
            bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]),
            "histogram bounds must be finite and increasing"
        );
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Counts one observation; NaN is ignored.
    pub fn observe(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let index = self.bounds.partition_point(|b| *b < value);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let mut current = self.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + value).to_bits();
            match self.sum.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
    }

    /// Counts a duration in seconds.
    pub fn observe_duration(&self, duration: Duration) {
        self.observe(duration.as_secs_f64());
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0u64;
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        for (bound, bucket) in self.bounds.iter().zip(self.buckets.iter()) {
            running += bucket.load(Ordering::Relaxed);
            cumulative.push((*bound, running));
        }
        let overflow = self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            cumulative,
            count: running + overflow,
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
        }
    }
}

/// Metrics of one kind told apart by one label whose values are fixed (the
/// kinds of drift, the store operations), addressed by index.
#[derive(Debug)]
pub struct Family<M> {
    label: &'static str,
    values: &'static [&'static str],
    metrics: Box<[M]>,
}

impl<M: Default> Family<M> {
    pub fn new(label: &'static str, values: &'static [&'static str]) -> Family<M> {
        Family {
            label,
            values,
            metrics: values.iter().map(|_| M::default()).collect(),
        }
    }
}

impl Family<Histogram> {
    /// A family of histograms that all have these bounds.
    pub fn histograms(
        label: &'static str,
        values: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Family<Histogram> {
        Family {
            label,
            values,
            metrics: values.iter().map(|_| Histogram::new(bounds)).collect(),
        }
    }
}

impl<M> Family<M> {
    /// The metric of the label value at `index` in the values given to `new`.
    pub fn at(&self, index: usize) -> &M {
        &self.metrics[index]
    }

    /// The metric of a label value, if it is one of the family's.
    pub fn get(&self, value: &str) -> Option<&M> {
        let index = self.values.iter().position(|v| *v == value)?;
        self.metrics.get(index)
    }

    pub fn label(&self) -> &'static str {
        self.label
    }

    /// (label value, metric), in the order given to `new`.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &M)> {
        self.values.iter().copied().zip(self.metrics.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_each_value_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 1.0, 3.0, f64::NAN] {
            h.observe(v);
        }
        let s = h.snapshot();
        // A value equal to a bound belongs to that bound's bucket (le).
        assert_eq!(s.cumulative, vec![(0.1, 2), (1.0, 4)]);
        assert_eq!(s.count, 5);
        assert!((s.sum - 4.65).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn family_addresses_metrics_by_index_and_by_value() {
        let f: Family<Counter> = Family::new("kind", &["a", "b"]);
        f.at(1).inc();
        f.get("b").expect("b").add(2);
        assert!(f.get("c").is_none());
        let seen: Vec<(&str, u64)> = f.iter().map(|(v, c)| (v, c.get())).collect();
        assert_eq!(seen, vec![("a", 0), ("b", 3)]);
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let h = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        h.observe(0.002);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        let s = h.snapshot();
        assert_eq!(s.count, 4000);
        assert!((s.sum - 8.0).abs() < 1e-6, "{}", s.sum);
    }
}
