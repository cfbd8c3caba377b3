//! The notifier's metrics, registered on a registry the caller owns (the worker's `/metrics`, or a fresh one
//! for `flashpoint notify`), so the Kafka stage and the command count the same series. Labels are channel and
//! route names from the config (bounded by it).

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct NotifyMetrics {
    pub sent: IntCounterVec,
    pub failed: IntCounterVec,
    pub retried: IntCounterVec,
    pub rate_limited: IntCounterVec,
    /// Messages held back by a `[[notify.silences]]` entry.
    pub silenced: IntCounterVec,
    pub latency: HistogramVec,
    pub queue_depth: IntGaugeVec,
    pub input_dead_letters: IntCounterVec,
    pub events_in: IntCounter,
    /// Input read to receiver acknowledgement (the notifier's own share of the latency).
    pub processing: Histogram,
}

impl NotifyMetrics {
    pub fn new(r: &Registry) -> Result<NotifyMetrics, prometheus::Error> {
        let cr = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), &["channel", "route"])?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "flashpoint_notification_delivery_latency_seconds",
                "From the spike event's window end to the receiver's acknowledgement, by channel",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
            &["channel"],
        )?;
        r.register(Box::new(latency.clone()))?;
        let processing = Histogram::with_opts(
            HistogramOpts::new(
                "flashpoint_notification_processing_seconds",
                "From reading the spike event to the receiver's acknowledgement",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0]),
        )?;
        r.register(Box::new(processing.clone()))?;
        let queue_depth = IntGaugeVec::new(
            Opts::new("flashpoint_notification_queue_depth", "Messages waiting or in delivery, by channel"),
            &["channel"],
        )?;
        r.register(Box::new(queue_depth.clone()))?;
        let input_dead_letters = IntCounterVec::new(
            Opts::new(
                "flashpoint_notify_input_dead_letters_total",
                "Input lines the notifier could not read, by reason",
            ),
            &["reason"],
        )?;
        r.register(Box::new(input_dead_letters.clone()))?;
        let events_in = IntCounter::new("flashpoint_notify_events_total", "Spike events read by the notifier")?;
        r.register(Box::new(events_in.clone()))?;
        Ok(NotifyMetrics {
            sent: cr("flashpoint_notifications_sent_total", "Messages the receiver acknowledged")?,
            failed: cr(
                "flashpoint_notifications_failed_total",
                "Messages dead-lettered (permanent failure, retries exhausted, queue full)",
            )?,
            retried: cr("flashpoint_notifications_retried_total", "Delivery attempts that failed and were retried")?,
            rate_limited: cr(
                "flashpoint_notifications_rate_limited_total",
                "Messages held back by a route's rate limit",
            )?,
            silenced: cr("flashpoint_notifications_silenced_total", "Messages held back by a silence")?,
            latency,
            queue_depth,
            input_dead_letters,
            events_in,
            processing,
        })
    }
}
