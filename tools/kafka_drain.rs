//! The baseline of `scripts/bench-kafka.sh`: a bare rdkafka consumer that only drains a topic (touches each
//! payload, nothing else), timed from its first record to its N-th. Usage: kafka-drain BROKERS TOPIC N

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (brokers, topic, n) = (&a[1], &a[2], a[3].parse::<u64>().expect("N"));
    let group = format!("bare-drain-{}", std::process::id());
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let (mut got, mut bytes, mut first) = (0u64, 0u64, None);
    let deadline = Instant::now() + Duration::from_secs(600);
    while got < n && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            first.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, |p| p.len() as u64);
            got += 1;
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "{{\"records\":{got},\"bytes\":{bytes},\"seconds\":{secs:.3},\"records_per_second\":{:.0}}}",
        got as f64 / secs.max(1e-9)
    );
}
