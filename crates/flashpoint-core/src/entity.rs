//! Watched entities and the multi-pattern matcher that finds them in posts.
//!
//! Thousands of entities, each with several terms, must be matched against every post, so all patterns go
//! into one Aho-Corasick automaton and a post is scanned once, whatever the watchlist size. A hit counts only
//! on word boundaries ("ai" must not match "said"), and an entity's exclusions veto the hits they cover
//! ("apple" inside "apple pie"). Matching is case-insensitive.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

/// One watched entity, as configured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    pub name: String,
    /// Words or phrases (`"acme air"`).
    #[serde(default)]
    pub terms: Vec<String>,
    /// `@handles` (the `@` is added if missing).
    #[serde(default)]
    pub handles: Vec<String>,
    /// `#hashtags` (the `#` is added if missing).
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Phrases whose occurrences veto the hits they contain (`"apple pie"`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The company's own accounts (`@` optional, any case): their posts are its responses, never mentions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_handles: Vec<String>,
    /// This entity's response plan, over the `[response]` defaults (only with `own_handles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<crate::detect::response::PlanOverride>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WatchlistError {
    #[error("entity #{0} has an empty name")]
    EmptyName(usize),
    #[error("entity `{0}` is listed twice")]
    Duplicate(String),
    #[error("entity `{0}` has no terms, handles or hashtags")]
    NoPatterns(String),
    #[error("entity `{0}` has an empty pattern")]
    EmptyPattern(String),
    #[error("entity `{0}`: own handle `{1}` is also an own handle of `{2}`")]
    SharedOwnHandle(String, String, String),
    #[error("entity `{0}` has a response plan but no own_handles to follow")]
    PlanWithoutHandles(String),
    #[error("building the matcher: {0}")]
    Build(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Hit,
    Exclude,
}

/// Index of an entity in the watchlist.
pub type EntityId = u32;

pub struct Matcher {
    names: Vec<String>,
    ac: Option<AhoCorasick>,
    /// For each automaton pattern: which entities use it, and how.
    owners: Vec<Vec<(EntityId, Role)>>,
    /// For each entity: its own terms (lower-case), so evidence terms can leave them out.
    own_terms: Vec<Vec<String>>,
    /// Own handles (lower-case, without `@`) to their entity: whose posts are responses.
    own_handles: std::collections::HashMap<String, EntityId>,
}

/// A handle as compared: lower-case, without its `@`.
pub fn handle_key(h: &str) -> String {
    h.trim().trim_start_matches('@').to_lowercase()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Matcher {
    pub fn new(entities: &[EntityConfig]) -> Result<Matcher, WatchlistError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<(EntityId, Role)>> = Vec::new();
        let mut index = std::collections::HashMap::new();
        let mut names = Vec::new();
        let mut own_terms = Vec::new();
        let mut own_handles = std::collections::HashMap::new();
        for (i, e) in entities.iter().enumerate() {
            let name = e.name.trim();
            if name.is_empty() {
                return Err(WatchlistError::EmptyName(i));
            }
            if names.iter().any(|n| n == name) {
                return Err(WatchlistError::Duplicate(name.into()));
            }
            if e.terms.is_empty() && e.handles.is_empty() && e.hashtags.is_empty() {
                return Err(WatchlistError::NoPatterns(name.into()));
            }
            let norm = |p: &str, prefix: Option<char>| -> Result<String, WatchlistError> {
                let p = p.trim().to_lowercase();
                let p = match prefix {
                    Some(c) if !p.starts_with(c) => format!("{c}{p}"),
                    _ => p,
                };
                if p.is_empty() || p == "@" || p == "#" {
                    return Err(WatchlistError::EmptyPattern(name.into()));
                }
                Ok(p)
            };
            let mut add = |p: String, role: Role| {
                let k = *index.entry(p.clone()).or_insert_with(|| {
                    patterns.push(p);
                    owners.push(Vec::new());
                    patterns.len() - 1
                });
                if !owners[k].contains(&(i as EntityId, role)) {
                    owners[k].push((i as EntityId, role));
                }
            };
            let mut terms = Vec::new();
            for t in &e.terms {
                let p = norm(t, None)?;
                terms.push(p.clone());
                add(p, Role::Hit);
            }
            for h in &e.handles {
                let p = norm(h, Some('@'))?;
                terms.push(p.trim_start_matches('@').to_string());
                add(p, Role::Hit);
            }
            for h in &e.hashtags {
                let p = norm(h, Some('#'))?;
                terms.push(p.trim_start_matches('#').to_string());
                add(p, Role::Hit);
            }
            for x in &e.exclude {
                add(norm(x, None)?, Role::Exclude);
            }
            if e.response.is_some() && e.own_handles.is_empty() {
                return Err(WatchlistError::PlanWithoutHandles(name.into()));
            }
            for h in &e.own_handles {
                let k = handle_key(h);
                if k.is_empty() {
                    return Err(WatchlistError::EmptyPattern(name.into()));
                }
                if let Some(&other) = own_handles.get(&k) {
                    if other != i as EntityId {
                        let other: &String = &names[other as usize];
                        return Err(WatchlistError::SharedOwnHandle(name.into(), h.clone(), other.clone()));
                    }
                }
                own_handles.insert(k, i as EntityId);
            }
            names.push(name.to_string());
            // Evidence terms are single words, so the entity's own words are what must be left out.
            let mut words: Vec<String> = terms
                .iter()
                .flat_map(|t| {
                    t.split(|c: char| !is_word(c) && c != '\'')
                        .filter(|w| !w.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect();
            words.sort();
            words.dedup();
            own_terms.push(words);
        }
        let ac = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| WatchlistError::Build(e.to_string()))?,
            )
        };
        Ok(Matcher { names, ac, owners, own_terms, own_handles })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, id: EntityId) -> &str {
        &self.names[id as usize]
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn own_terms(&self, id: EntityId) -> &[String] {
        &self.own_terms[id as usize]
    }

    /// The entity whose own account `author` is (a post of it is that entity's response).
    pub fn responder(&self, author: Option<&str>) -> Option<EntityId> {
        if self.own_handles.is_empty() {
            return None;
        }
        self.own_handles.get(&handle_key(author?)).copied()
    }

    /// Appends the ids of the entities `text` mentions to `out` (sorted, without duplicates).
    pub fn find(&self, text: &str, out: &mut Vec<EntityId>) {
        let Some(ac) = &self.ac else { return };
        // Non-ASCII text is lower-cased first so that case-insensitivity holds beyond ASCII; boundaries are
        // then checked on the same (lower-cased) string.
        let lowered;
        let hay: &str = if text.is_ascii() {
            text
        } else {
            lowered = text.to_lowercase();
            &lowered
        };
        let start = out.len();
        let mut hits: Vec<(EntityId, usize, usize)> = Vec::new();
        let mut excl: Vec<(EntityId, usize, usize)> = Vec::new();
        for m in ac.find_overlapping_iter(hay) {
            let (s, e) = (m.start(), m.end());
            let before_ok = hay[..s].chars().next_back().map_or(true, |c| !is_word(c));
            let after_ok = hay[e..].chars().next().map_or(true, |c| !is_word(c));
            if !(before_ok && after_ok) {
                continue;
            }
            for &(ent, role) in &self.owners[m.pattern().as_usize()] {
                match role {
                    Role::Hit => hits.push((ent, s, e)),
                    Role::Exclude => excl.push((ent, s, e)),
                }
            }
        }
        // A hit is vetoed by an exclusion of its entity that starts at or before it and ends at or after it.
        // Checking every pair was quadratic: "apple pie " repeated over a 1 MB post took over a second. So
        // exclusions are sorted by (entity, start) with a running maximum end per entity, and each hit
        // binary-searches the last exclusion of its entity starting at or before it.
        excl.sort_unstable();
        let mut reach = Vec::with_capacity(excl.len());
        for (k, &(x, _, xe)) in excl.iter().enumerate() {
            let prev = if k > 0 && excl[k - 1].0 == x { reach[k - 1] } else { 0 };
            reach.push(xe.max(prev));
        }
        for &(ent, s, e) in &hits {
            let k = excl.partition_point(|&(x, xs, _)| (x, xs) <= (ent, s));
            let vetoed = k > 0 && excl[k - 1].0 == ent && reach[k - 1] >= e;
            if !vetoed {
                out.push(ent);
            }
        }
        out[start..].sort_unstable();
        let mut w = start;
        for r in start..out.len() {
            if r == start || out[r] != out[w - 1] {
                out[w] = out[r];
                w += 1;
            }
        }
        out.truncate(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(name: &str, terms: &[&str], handles: &[&str], tags: &[&str], excl: &[&str]) -> EntityConfig {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        EntityConfig {
            name: name.into(),
            terms: v(terms),
            handles: v(handles),
            hashtags: v(tags),
            exclude: v(excl),
            ..EntityConfig::default()
        }
    }

    fn found<'a>(m: &'a Matcher, t: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        m.find(t, &mut out);
        out.iter().map(|&i| m.name(i)).collect()
    }

    #[test]
    fn boundaries_case_handles_tags_and_exclusions() {
        let m = Matcher::new(&[
            ent("Apple", &["apple"], &["AppleSupport"], &["apple"], &["apple pie", "big apple"]),
            ent("Acme Air", &["acme air"], &["@acmeair"], &[], &[]),
        ])
        .unwrap();
        assert_eq!(found(&m, "My APPLE watch died"), ["Apple"]);
        assert_eq!(found(&m, "grandma's apple pie"), Vec::<&str>::new());
        assert_eq!(found(&m, "apple pie and an apple phone"), ["Apple"]);
        assert_eq!(found(&m, "pineapple, applesauce"), Vec::<&str>::new());
        assert_eq!(found(&m, "@applesupport @acmeair lost my bag"), ["Apple", "Acme Air"]);
        assert_eq!(found(&m, "#Apple!"), ["Apple"]);
        assert_eq!(found(&m, "flying ACME AIR again"), ["Acme Air"]);
        assert_eq!(found(&m, "ÉTÉ with Acme Air"), ["Acme Air"]);
        assert_eq!(found(&m, "nothing here"), Vec::<&str>::new());
    }

    #[test]
    fn exclusions_veto_only_their_own_entity_and_scale() {
        let m = Matcher::new(&[
            ent("Apple", &["apple"], &[], &[], &["apple pie", "big apple"]),
            ent("Pie", &["pie"], &[], &[], &["apple pie recipe"]),
        ])
        .unwrap();
        assert_eq!(found(&m, "big apple pie"), ["Pie"]);
        assert_eq!(found(&m, "apple pie recipe"), Vec::<&str>::new());
        assert_eq!(found(&m, "apple pie recipe, then an apple"), ["Apple"]);
        // 100k vetoed hits: was quadratic.
        // No wall-clock limit (a debug build on a shared CI core is no timer): a quadratic regression shows
        // as this test taking seconds; speed itself is measured by the benchmarks.
        let text = "apple pie recipe ".repeat(100_000);
        assert_eq!(found(&m, &text), Vec::<&str>::new());
    }

    #[test]
    fn own_handles_name_the_responder_with_or_without_at_in_any_case() {
        let mut acme = ent("Acme Air", &["acme air"], &["@acmeair"], &[], &[]);
        acme.own_handles = vec!["@AcmeAir".into(), "AcmeAirHelp".into()];
        let m = Matcher::new(&[ent("Globex", &["globex"], &[], &[], &[]), acme.clone()]).unwrap();
        for a in ["AcmeAir", "@acmeair", "ACMEAIRHELP", " @AcmeAirHelp"] {
            assert_eq!(m.responder(Some(a)), Some(1), "{a}");
        }
        for a in [None, Some("acmeair_fan"), Some("Globex"), Some("")] {
            assert_eq!(m.responder(a), None, "{a:?}");
        }
        // One account belongs to one company; a plan needs accounts to follow.
        let mut other = ent("Acme Cargo", &["acme cargo"], &[], &[], &[]);
        other.own_handles = vec!["acmeair".into()];
        assert!(matches!(Matcher::new(&[acme, other.clone()]), Err(WatchlistError::SharedOwnHandle(..))));
        other.own_handles.clear();
        other.response = Some(Default::default());
        assert_eq!(Matcher::new(&[other]).err(), Some(WatchlistError::PlanWithoutHandles("Acme Cargo".into())));
    }

    #[test]
    fn invalid_watchlists_are_rejected() {
        assert_eq!(Matcher::new(&[ent("", &["x"], &[], &[], &[])]).err(), Some(WatchlistError::EmptyName(0)));
        assert!(matches!(Matcher::new(&[ent("a", &[], &[], &[], &[])]), Err(WatchlistError::NoPatterns(_))));
        assert!(matches!(
            Matcher::new(&[ent("a", &["x"], &[], &[], &[]), ent("a", &["y"], &[], &[], &[])]),
            Err(WatchlistError::Duplicate(_))
        ));
        assert!(matches!(Matcher::new(&[ent("a", &[" "], &[], &[], &[])]), Err(WatchlistError::EmptyPattern(_))));
    }
}
