//! The incidents the pages show: spike events grouped by `incident_id`, in bounded memory.
//!
//! The live pages are fed from the spikes topic for as long as the worker runs, so both the number of incidents
//! and each incident's event log are capped: past `max_incidents`, the incident updated longest ago (by event
//! time) is forgotten; past `max_events`, an incident keeps its opening event and its newest ones (the opening
//! says how it began, the newest what it is now; the count of the dropped middle is shown). The spikes topic is
//! read at least once, so an event seen again (same `seq`) is ignored. The `flashpoint report` command uses the
//! same store without caps.

use flashpoint_core::event::SpikeEvent;
use flashpoint_core::time::Millis;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One event of an incident's log, with what the pages show of it that the event struct does not carry.
#[derive(Clone, Debug)]
pub struct Logged {
    pub event: Arc<SpikeEvent>,
    /// Why the event was emitted, when its producer says (`reasons`, a newer field); one line each.
    pub reasons: Vec<String>,
}

/// One incident: its events by `seq`, and how many were dropped to stay within the cap.
#[derive(Clone, Debug)]
pub struct Incident {
    pub id: String,
    /// Sorted by `seq`, no two alike; never empty.
    pub events: Vec<Logged>,
    pub dropped: u64,
}

impl Incident {
    /// The newest event: the incident's current state.
    pub fn latest(&self) -> &SpikeEvent {
        &self.events.last().expect("an incident has an event").event
    }

    /// The event time it was last updated at (for eviction).
    fn updated(&self) -> Millis {
        self.latest().window_end
    }

    /// When it opened: the start the events give (the same in each).
    pub fn opened(&self) -> Millis {
        self.latest().incident_start
    }

    pub fn is_open(&self) -> bool {
        self.latest().kind != flashpoint_core::event::EventKind::Resolved
    }
}

/// Why an event is not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Ids name pages (a file, a URL path): only a short run of letters, digits, `-` and `_` is taken.
    #[error("incident_id is not 1 to 128 letters, digits, - or _")]
    BadId,
}

#[derive(Debug)]
pub struct IncidentStore {
    max_incidents: usize,
    max_events: usize,
    incidents: BTreeMap<String, Incident>,
    /// (last update, id) of every incident: the eviction order.
    by_update: BTreeSet<(Millis, String)>,
}

impl IncidentStore {
    /// `max_events` below 2 is taken as 2 (the opening and the newest).
    pub fn new(max_incidents: usize, max_events: usize) -> IncidentStore {
        IncidentStore {
            max_incidents: max_incidents.max(1),
            max_events: max_events.max(2),
            incidents: BTreeMap::new(),
            by_update: BTreeSet::new(),
        }
    }

    /// No caps: for a file of events, read once.
    pub fn unbounded() -> IncidentStore {
        IncidentStore::new(usize::MAX, usize::MAX)
    }

    /// Adds one event. `raw` is the JSON it came as, read for the fields the pages show beyond the struct's.
    pub fn record(&mut self, event: Arc<SpikeEvent>, raw: &str) -> Result<(), Refused> {
        if !crate::safe::page_id(&event.incident_id) {
            return Err(Refused::BadId);
        }
        let logged = Logged { reasons: reasons(raw), event };
        let id = logged.event.incident_id.clone();
        match self.incidents.get_mut(&id) {
            Some(inc) => {
                let before = inc.updated();
                match inc.events.binary_search_by_key(&logged.event.seq, |l| l.event.seq) {
                    Ok(_) => return Ok(()),
                    Err(at) => inc.events.insert(at, logged),
                }
                if inc.events.len() > self.max_events {
                    // Keep the opening (index 0) and the newest; drop the oldest of the middle.
                    inc.events.remove(1);
                    inc.dropped += 1;
                }
                let after = inc.updated();
                if after != before {
                    self.by_update.remove(&(before, id.clone()));
                    self.by_update.insert((after, id));
                }
            }
            None => {
                let inc = Incident { id: id.clone(), events: vec![logged], dropped: 0 };
                self.by_update.insert((inc.updated(), id.clone()));
                self.incidents.insert(id, inc);
                while self.incidents.len() > self.max_incidents {
                    let Some(oldest) = self.by_update.pop_first() else { break };
                    self.incidents.remove(&oldest.1);
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.incidents.get(id)
    }

    pub fn len(&self) -> usize {
        self.incidents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty()
    }

    /// Every incident in the index's order: open ones first, then the most recently opened, then by id (so the
    /// order never depends on arrival).
    pub fn list(&self) -> Vec<&Incident> {
        let mut all: Vec<&Incident> = self.incidents.values().collect();
        all.sort_by(|a, b| b.is_open().cmp(&a.is_open()).then(b.opened().cmp(&a.opened())).then(a.id.cmp(&b.id)));
        all
    }
}

/// The `reasons` of an event's JSON, one line each: strings as they are, an object by its `text`, `reason` or
/// `why` if it has one, anything else as compact JSON. Absent (older producers): none.
fn reasons(raw: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Extras {
        #[serde(default)]
        reasons: Vec<serde_json::Value>,
    }
    let Ok(x) = serde_json::from_str::<Extras>(raw) else { return Vec::new() };
    x.reasons
        .into_iter()
        .map(|r| match r {
            serde_json::Value::String(s) => s,
            serde_json::Value::Object(ref o) => ["text", "reason", "why"]
                .iter()
                .find_map(|k| o.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .unwrap_or_else(|| r.to_string()),
            other => other.to_string(),
        })
        .collect()
}

/// The store the notify stage writes and the HTTP server reads.
pub type SharedStore = Arc<std::sync::Mutex<IncidentStore>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::testing::event;
    use flashpoint_core::detect::Severity;
    use flashpoint_core::event::EventKind;

    fn ev(id: &str, seq: u64, end_min: i64, kind: EventKind) -> Arc<SpikeEvent> {
        let mut e = event(kind, seq, Severity::Warning);
        e.incident_id = id.into();
        e.window_end = 1_772_632_860_000 + end_min * 60_000;
        e.incident_start = 1_772_632_860_000 - id.len() as i64 * 60_000;
        Arc::new(e)
    }

    #[test]
    fn groups_orders_and_ignores_duplicates() {
        let mut s = IncidentStore::unbounded();
        s.record(ev("inc-a", 1, 5, EventKind::Updated), "{}").unwrap();
        s.record(ev("inc-a", 0, 1, EventKind::Opened), "{}").unwrap();
        s.record(ev("inc-a", 1, 5, EventKind::Updated), "{}").unwrap();
        s.record(ev("inc-bb", 0, 2, EventKind::Opened), "{}").unwrap();
        s.record(ev("inc-bb", 1, 9, EventKind::Resolved), "{}").unwrap();
        let a = s.get("inc-a").unwrap();
        assert_eq!(a.events.iter().map(|l| l.event.seq).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(a.latest().seq, 1);
        // Open first, whatever the arrival or opening order.
        assert_eq!(s.list().iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["inc-a", "inc-bb"]);
        assert_eq!(s.record(ev("../etc", 0, 1, EventKind::Opened), "{}"), Err(Refused::BadId));
        assert_eq!(s.record(ev("<b>", 0, 1, EventKind::Opened), "{}"), Err(Refused::BadId));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn bounded_in_incidents_and_events() {
        let mut s = IncidentStore::new(2, 3);
        for seq in 0..6 {
            s.record(ev("inc-a", seq, 10 + seq as i64, EventKind::Updated), "{}").unwrap();
        }
        let a = s.get("inc-a").unwrap();
        assert_eq!(a.events.iter().map(|l| l.event.seq).collect::<Vec<_>>(), [0, 4, 5], "the opening and the newest");
        assert_eq!(a.dropped, 3);
        s.record(ev("inc-b", 0, 1, EventKind::Opened), "{}").unwrap();
        s.record(ev("inc-c", 0, 30, EventKind::Opened), "{}").unwrap();
        // inc-b was updated longest ago (event time 1 minute against 15 and 30).
        assert!(s.get("inc-b").is_none());
        assert!(s.get("inc-a").is_some() && s.get("inc-c").is_some());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn reasons_are_read_when_present() {
        assert!(reasons("{}").is_empty());
        assert_eq!(
            reasons(r#"{"reasons":["severity rose",{"text":"volume x4"},{"code":7}]}"#),
            ["severity rose", "volume x4", r#"{"code":7}"#]
        );
    }
}
