//! The outbox: the one way a stage publishes, and the one place a refusal is judged.
//!
//! Enqueue refusals are sorted by kind: a full local queue is backpressure (wait and retry, with the wait
//! visible as a stall in `/readyz` and `flashpoint_stage_stalled_seconds`); a record larger than the
//! producer's `message.max.bytes` is an input problem (the record's head goes to the dead-letter topic with
//! its size and the reason `output_too_large`, and is counted); anything else stops the stage without
//! committing past the record. Delivery reports are judged the same way, since a broker may accept less than
//! the producer: a record it refuses as too large is dead-lettered, any other failure stops the stage.
//! Nothing is retried forever in silence, which is what made one oversized input record stall a worker.

use crate::client::ProducerContext;
use crate::dead_letter::DeadLetter;
use crate::error::WorkerError;
use crate::metrics::{Metrics, Progress};
use crate::role::Stage;
use flashpoint_core::reject::Rejection;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

pub struct Outbox {
    pub producer: FutureProducer<ProducerContext>,
    metrics: Arc<Metrics>,
    dead_topic: String,
    /// The producer's `message.max.bytes`, read back from its final configuration.
    max_bytes: usize,
}

/// Where an output came from: the source named in its dead letter if no topic takes it.
#[derive(Clone, Debug)]
pub struct Origin {
    pub stage: Stage,
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// An enqueued record whose acknowledgement is still to be awaited with `Outbox::settle`.
pub struct Tracked {
    fut: DeliveryFuture,
    origin: Option<Origin>,
}

/// How an enqueue or delivery refusal is handled.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// librdkafka's queue is full: backpressure, wait.
    Retry,
    /// The record exceeds what the producer or broker accepts: no retry can help.
    TooLarge,
    Fatal,
}

fn classify(e: &KafkaError) -> Refusal {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => Refusal::Retry,
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => Refusal::TooLarge,
        _ => Refusal::Fatal,
    }
}

impl Outbox {
    pub fn new(
        producer: FutureProducer<ProducerContext>,
        metrics: Arc<Metrics>,
        dead_topic: String,
        max_bytes: usize,
    ) -> Outbox {
        Outbox { producer, metrics, dead_topic, max_bytes }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Publishes an output of `origin`'s record; one that is too large is dead-lettered instead.
    pub async fn send(&self, rec: FutureRecord<'_, [u8], [u8]>, origin: &Origin) -> Result<Tracked, WorkerError> {
        match self.enqueue(rec, origin.stage).await {
            Ok(fut) => Ok(Tracked { fut, origin: Some(origin.clone()) }),
            Err((Refusal::TooLarge, _, r)) => {
                let d = too_large(
                    origin,
                    r.topic,
                    r.key.map(<[u8]>::to_vec),
                    r.payload.unwrap_or_default(),
                    self.max_bytes,
                );
                self.dead_letter(&d).await
            }
            Err((_, e, r)) => Err(WorkerError::Delivery(format!("enqueueing to {} refused: {e}", r.topic))),
        }
    }

    /// Publishes a record that must not be diverted (a state snapshot): any refusal stops the stage.
    pub async fn send_plain(&self, rec: FutureRecord<'_, [u8], [u8]>, stage: Stage) -> Result<Tracked, WorkerError> {
        let len = rec.payload.map_or(0, <[u8]>::len);
        match self.enqueue(rec, stage).await {
            Ok(fut) => Ok(Tracked { fut, origin: None }),
            Err((_, e, r)) => Err(WorkerError::Delivery(format!("enqueueing {len} bytes to {} refused: {e}", r.topic))),
        }
    }

    /// Best effort, never waits (watermark ticks: a lost one only delays window closing until the next).
    pub fn try_send(&self, rec: FutureRecord<'_, [u8], [u8]>) -> bool {
        self.producer.send_result(rec).is_ok()
    }

    /// Sends a dead letter, cut to fit the producer's limit, and counts it by reason.
    pub async fn dead_letter(&self, d: &DeadLetter) -> Result<Tracked, WorkerError> {
        self.metrics.dead_lettered.with_label_values(&[d.reason.reason()]).inc();
        self.send_dead(d, self.max_bytes).await
    }

    async fn send_dead(&self, d: &DeadLetter, limit: usize) -> Result<Tracked, WorkerError> {
        let f = d.fit(limit);
        if f.truncated {
            warn!(reason = d.reason.reason(), size = d.payload.len(), topic = %d.topic, partition = d.partition, offset = d.offset, "dead letter larger than the topic accepts: sending its head");
        }
        let mut rec = FutureRecord::to(&self.dead_topic).payload(f.payload).headers(f.headers);
        if let Some(k) = f.key {
            rec = rec.key(k);
        }
        match self.enqueue(rec, d.stage).await {
            Ok(fut) => Ok(Tracked { fut, origin: None }),
            Err((_, e, _)) => Err(WorkerError::Delivery(format!(
                "dead letter for {}/{}@{} refused: {e}",
                d.topic, d.partition, d.offset
            ))),
        }
    }

    /// Awaits one record's acknowledgement. A record the broker refuses as too large is dead-lettered (with
    /// a head a quarter of the producer's limit, since the broker's own limit is unknown here).
    pub async fn settle(&self, t: Tracked) -> Result<(), WorkerError> {
        let (e, msg) = match t.fut.await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err((e, msg))) => (e, Some(msg)),
            Err(_) => (KafkaError::Canceled, None),
        };
        if let (Refusal::TooLarge, Some(o), Some(m)) = (classify(&e), &t.origin, &msg) {
            if m.topic() != self.dead_topic {
                let d = refused(o, m, self.max_bytes / 4);
                self.metrics.dead_lettered.with_label_values(&[d.reason.reason()]).inc();
                let dead = self.send_dead(&d, self.max_bytes / 4).await?;
                return match dead.fut.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(self.failed(&e)),
                    Err(_) => Err(self.failed(&KafkaError::Canceled)),
                };
            }
        }
        Err(self.failed(&e))
    }

    fn failed(&self, e: &KafkaError) -> WorkerError {
        self.metrics.produce_failures.inc();
        warn!(error = %e, "delivery failed; stopping without committing past it");
        WorkerError::Delivery(format!("delivery failed: {e}"))
    }

    /// Enqueues `rec`, waiting while librdkafka's queue is full (the backpressure that bounds memory while
    /// the broker is slow or away); the wait shows as the stage's stall. Other refusals are returned.
    async fn enqueue<'a>(
        &self,
        mut rec: FutureRecord<'a, [u8], [u8]>,
        stage: Stage,
    ) -> Result<DeliveryFuture, (Refusal, KafkaError, FutureRecord<'a, [u8], [u8]>)> {
        let mut wait = Duration::from_millis(1);
        let progress: &Progress = self.metrics.health.progress(stage);
        let mut blocked = false;
        let out = loop {
            match self.producer.send_result(rec) {
                Ok(f) => break Ok(f),
                Err((e, r)) => match classify(&e) {
                    Refusal::Retry => {
                        if !blocked {
                            progress.blocked();
                            blocked = true;
                        }
                        rec = r;
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_millis(100));
                    }
                    kind => break Err((kind, e, r)),
                },
            }
        };
        if blocked {
            progress.unblocked();
        }
        out
    }
}

fn too_large(origin: &Origin, topic: &str, key: Option<Vec<u8>>, payload: &[u8], limit: usize) -> DeadLetter {
    DeadLetter {
        reason: Rejection::OutputTooLarge,
        detail: format!(
            "a {} byte record for {topic} exceeds the producer's message.max.bytes ({limit})",
            payload.len()
        ),
        stage: origin.stage,
        key,
        payload: payload.to_vec(),
        topic: origin.topic.to_string(),
        partition: origin.partition,
        offset: origin.offset,
    }
}

fn refused(origin: &Origin, m: &OwnedMessage, limit: usize) -> DeadLetter {
    let payload = m.payload().unwrap_or_default();
    let mut d = too_large(origin, m.topic(), m.key().map(<[u8]>::to_vec), payload, limit);
    d.detail = format!("the broker refused a {} byte record for {} as too large", payload.len(), m.topic());
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_queue_is_retried() {
        use rdkafka::error::KafkaError::MessageProduction;
        assert_eq!(classify(&MessageProduction(RDKafkaErrorCode::QueueFull)), Refusal::Retry);
        assert_eq!(classify(&MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)), Refusal::TooLarge);
        assert_eq!(classify(&MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition)), Refusal::Fatal);
        assert_eq!(classify(&MessageProduction(RDKafkaErrorCode::InvalidMessage)), Refusal::Fatal);
        assert_eq!(classify(&KafkaError::Canceled), Refusal::Fatal);
    }
}
