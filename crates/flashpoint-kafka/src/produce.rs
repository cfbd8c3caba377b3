//! `flashpoint produce`: publishes JSON Lines as records, one per line — the sample-stream feeder of the
//! Compose stack, the benchmark's loader and a handy way to test a deployment.

use crate::client::partition_count;
use crate::client_config::base_config;
use crate::config::KafkaConfig;
use crate::error::WorkerError;
use rdkafka::client::ClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts acknowledgements: "produced" must mean "the broker has it", not "queued".
#[derive(Default)]
struct Acks {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error.lock().expect("not poisoned").get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Sends every line of `input` to `topic` (unkeyed, so librdkafka spreads them over partitions); at most
/// `rate` lines per second when set. Returns the number of records acknowledged.
pub fn produce_lines(
    cfg: &KafkaConfig,
    topic: &str,
    input: impl BufRead,
    rate: Option<u64>,
) -> Result<u64, WorkerError> {
    // Fail fast on a missing topic: librdkafka would otherwise hold the records until they time out.
    let probe: BaseConsumer = base_config(cfg, &[])?.create()?;
    partition_count(&probe, topic, Duration::from_secs(3))?;
    let pc = base_config(
        cfg,
        &[("linger.ms", "20"), ("batch.num.messages", "10000"), ("queue.buffering.max.messages", "1000000")],
    )?;
    let producer: ThreadedProducer<Acks> = pc.create_with_context(Acks::default())?;
    let started = Instant::now();
    let mut n: u64 = 0;
    for line in input.lines() {
        let line = line.map_err(|e| WorkerError::Config(format!("reading input: {e}")))?;
        if line.is_empty() {
            continue;
        }
        let mut rec: BaseRecord<'_, (), str> = BaseRecord::to(topic).payload(line.as_str());
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    if !matches!(e.rdkafka_error_code(), Some(rdkafka::error::RDKafkaErrorCode::QueueFull)) {
                        return Err(e.into());
                    }
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        n += 1;
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(n as f64 / r as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let acks = producer.context();
    let (ok, failed) = (acks.ok.load(Ordering::Relaxed), acks.failed.load(Ordering::Relaxed));
    if ok != n {
        let first = acks.first_error.lock().expect("not poisoned").clone().unwrap_or_default();
        return Err(WorkerError::Delivery(format!(
            "{ok} of {n} records acknowledged, {failed} failed (first error: {first})"
        )));
    }
    Ok(n)
}
