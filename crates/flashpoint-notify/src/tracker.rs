//! Which input positions are completely handled: the low-water mark a caller may commit.
//!
//! Each position is open while anything derived from it is outstanding: the routing step itself, a held state,
//! or a message on any channel not yet delivered or dead-lettered. A partition's low-water mark is its lowest
//! position still open (or one past the highest seen when none is): every offset below it is done, in whatever
//! order they finished. A Kafka consumer commits it; `flashpoint notify` reports it.

use crate::router::Position;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
pub struct Tracker {
    open: BTreeMap<Position, u32>,
    next: HashMap<i32, i64>,
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
}
