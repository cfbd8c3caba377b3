//! Which input positions are completely handled: the low-water mark a caller may commit.
//!
//! Each position is open while anything derived from it is outstanding: the routing step itself, a held state,
//! or a message on any channel not yet delivered or dead-lettered. A partition's low-water mark is its lowest
//! position still open (or one past the highest seen when none is): every offset below it is done, in whatever
//! order they finished. A Kafka consumer commits it; `flashpoint notify` reports it.

use crate::message::Position;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
pub struct Tracker {
    open: BTreeMap<Position, u32>,
    next: HashMap<i32, i64>,
    /// Outstanding counts of forgotten partitions: their `done` calls still arrive (a message in a channel's
    /// queue, a held state) and are absorbed here instead of releasing a later position of the same offset.
    forgotten: HashMap<Position, u32>,
}

impl Tracker {
    /// `n` more outstanding things for `pos`.
    pub fn add(&mut self, pos: Position, n: u32) {
        if n == 0 {
            return;
        }
        *self.open.entry(pos).or_insert(0) += n;
        let next = self.next.entry(pos.partition).or_insert(pos.offset + 1);
        *next = (*next).max(pos.offset + 1);
    }

    /// One outstanding thing of `pos` finished.
    pub fn done(&mut self, pos: Position) {
        if let Some(n) = self.forgotten.get_mut(&pos) {
            *n -= 1;
            if *n == 0 {
                self.forgotten.remove(&pos);
            }
            return;
        }
        match self.open.get_mut(&pos) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.open.remove(&pos);
            }
            None => debug_assert!(false, "done({pos:?}) without add"),
        }
    }

    /// Every offset of `partition` below this is done; `None` before the partition was seen.
    pub fn low_water(&self, partition: i32) -> Option<i64> {
        let lo = Position { partition, offset: i64::MIN };
        let hi = Position { partition, offset: i64::MAX };
        match self.open.range(lo..=hi).next() {
            Some((p, _)) => Some(p.offset),
            None => self.next.get(&partition).copied(),
        }
    }

    /// Drops what is known of `partition` (a Kafka consumer lost it in a rebalance: its new owner re-reads from
    /// the committed offset). Things still outstanding for it finish later and are absorbed, so they never count
    /// against positions of the partition seen again after a re-assignment.
    pub fn forget_partition(&mut self, partition: i32) {
        let lo = Position { partition, offset: i64::MIN };
        let hi = Position { partition, offset: i64::MAX };
        let gone: Vec<(Position, u32)> = self.open.range(lo..=hi).map(|(p, n)| (*p, *n)).collect();
        for (p, n) in gone {
            self.open.remove(&p);
            *self.forgotten.entry(p).or_insert(0) += n;
        }
        self.next.remove(&partition);
    }

    /// Positions with something outstanding.
    pub fn outstanding(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_water_waits_for_the_oldest_per_partition() {
        let p = |partition, offset| Position { partition, offset };
        let mut t = Tracker::default();
        assert_eq!(t.low_water(0), None);
        t.add(p(0, 0), 2);
        t.add(p(0, 1), 1);
        t.add(p(0, 2), 1);
        t.add(p(1, 7), 1);
        t.done(p(0, 1));
        assert_eq!(t.low_water(0), Some(0), "1 done, 0 not: nothing to commit yet");
        t.done(p(0, 0));
        assert_eq!(t.low_water(0), Some(0));
        t.done(p(0, 0));
        assert_eq!(t.low_water(0), Some(2));
        assert_eq!(t.low_water(1), Some(7));
        t.done(p(0, 2));
        assert_eq!(t.low_water(0), Some(3));
        t.done(p(1, 7));
        assert_eq!(t.low_water(1), Some(8));
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_forgotten_partition_starts_afresh_and_its_late_completions_are_absorbed() {
        let p = |partition, offset| Position { partition, offset };
        let mut t = Tracker::default();
        t.add(p(3, 10), 2);
        t.add(p(3, 11), 1);
        t.add(p(4, 5), 1);
        t.forget_partition(3);
        assert_eq!(t.low_water(3), None, "nothing known of partition 3 any more");
        assert_eq!(t.low_water(4), Some(5), "other partitions untouched");
        // Re-assigned and re-read from offset 10: the old completions must not release the new position.
        t.add(p(3, 10), 1);
        t.done(p(3, 10));
        t.done(p(3, 10));
        t.done(p(3, 11));
        assert_eq!(t.low_water(3), Some(10), "the re-read offset 10 is still outstanding");
        t.done(p(3, 10));
        assert_eq!(t.low_water(3), Some(11));
        t.done(p(4, 5));
        assert_eq!(t.outstanding(), 0);
    }
}
