//! Phrases: what people would name a story by. Words, two-word phrases, hashtags, @mentions and link domains,
//! without stopwords or the entity's own names; each with a 64-bit hash that keys the phrase baselines and
//! samples (`incident::drivers`, `window::Pane::sample`). A leaf: it knows nothing of posts or windows.

/// Words that name nothing: left out of phrases and of the evidence's top terms (`window::terms_of`).
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "you", "your", "are", "was", "were", "but", "not", "this", "that", "with", "have", "has",
    "had", "they", "them", "their", "what", "when", "who", "why", "how", "all", "any", "can", "could", "would",
    "should", "will", "just", "from", "out", "about", "into", "our", "ours", "his", "her", "she", "him", "its", "it's",
    "i'm", "don't", "can't", "didn't", "doesn't", "won't", "isn't", "wasn't", "aren't", "there", "here", "than",
    "then", "too", "very", "more", "most", "some", "such", "only", "own", "same", "also", "been", "being", "does",
    "did", "doing", "again", "still", "even", "get", "got", "now", "one", "via", "amp", "http", "https", "rt", "which",
    "while", "where", "these", "those", "over", "after", "before", "because", "off", "today", "i've", "i'll", "you're",
    "they're", "we're", "that's", "there's", "what's", "let", "let's", "yes", "yeah", "lol", "really", "like",
];

/// Longest phrase kept, in bytes (a URL's domain can be long; a word of more is noise).
const MAX_PHRASE_BYTES: usize = 60;
/// Phrases taken from one post, at most (a post of hundreds of words is not a tweet; its tail adds noise).
const MAX_PHRASES_PER_POST: usize = 48;

pub fn is_stopword(w: &str) -> bool {
    STOPWORDS.contains(&w)
}

/// The phrase's 64-bit hash (FxHash of its bytes): the key of the baseline sketch and the pane samples.
pub fn phrase_hash(p: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(p.as_bytes());
    // Fx's low bits are weak for short keys; a final mix spreads them (the sketch takes its columns from them).
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// The domain of a link (`https://www.example.com/a` → `example.com`), if `tok` is one.
fn domain_of(tok: &str) -> Option<&str> {
    let rest = tok.strip_prefix("https://").or_else(|| tok.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.strip_prefix("www.").unwrap_or(host);
    (host.contains('.') && host.len() <= MAX_PHRASE_BYTES).then_some(host)
}

/// Calls `f` once for each distinct phrase of `text`. `own` holds the entity's own words (its terms' words,
/// handles and hashtags without their sigils, lower case): they and phrases made with them are left out, since
/// every post says them. Deterministic: the same text always gives the same phrases in the same order.
pub fn phrases_of(text: &str, own: &[String], mut f: impl FnMut(&str, u64)) {
    let mut seen: Vec<u64> = Vec::with_capacity(32);
    let mut emit = |p: &str, f: &mut dyn FnMut(&str, u64)| {
        if seen.len() >= MAX_PHRASES_PER_POST || p.len() > MAX_PHRASE_BYTES {
            return;
        }
        let h = phrase_hash(p);
        if !seen.contains(&h) {
            seen.push(h);
            f(p, h);
        }
    };
    let is_own = |w: &str| own.iter().any(|o| o == w);
    let mut prev: Option<String> = None;
    let mut buf = String::new();
    for tok in text.split_whitespace() {
        if let Some(d) = domain_of(tok) {
            let d = d.to_ascii_lowercase();
            emit(&d, &mut f);
            prev = None;
            continue;
        }
        // A hashtag or mention keeps its sigil: "#refund" and "refund" are different evidence.
        let sigil = tok.chars().next().filter(|c| *c == '#' || *c == '@');
        let body = tok.trim_start_matches(['#', '@']);
        let mut words = body.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '_')).filter(|w| !w.is_empty());
        if let Some(s) = sigil {
            if let Some(w) = words.next() {
                let w = w.trim_matches('\'').to_lowercase();
                if w.len() >= 2 && !is_own(&w) {
                    buf.clear();
                    buf.push(s);
                    buf.push_str(&w);
                    emit(&buf, &mut f);
                }
            }
            // A tag or handle ends a phrase: "#fail lost" is not a two-word phrase people say.
            prev = None;
            continue;
        }
        for raw in words {
            let w = raw.trim_matches('\'');
            let n = w.chars().count();
            if !(3..=40).contains(&n) || w.bytes().all(|b| b.is_ascii_digit()) {
                // Short words ("my", "to") are skipped like stopwords, so they do not split a phrase.
                continue;
            }
            let w = w.to_lowercase();
            if is_stopword(&w) {
                // Stopwords are skipped, not breaks: "lost my luggage" gives "lost luggage".
                continue;
            }
            if is_own(&w) {
                prev = None;
                continue;
            }
            emit(&w, &mut f);
            if let Some(p) = &prev {
                buf.clear();
                buf.push_str(p);
                buf.push(' ');
                buf.push_str(&w);
                emit(&buf, &mut f);
            }
            prev = Some(w);
        }
        // Punctuation that ends a clause ends a phrase: "lost bags, no refund" says "lost bags", not "bags refund".
        if tok.ends_with(['.', ',', ';', ':', '!', '?', ')', '"']) {
            prev = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str, own: &[&str]) -> Vec<String> {
        let own: Vec<String> = own.iter().map(|s| s.to_string()).collect();
        let mut v = Vec::new();
        phrases_of(text, &own, |p, _| v.push(p.to_string()));
        v
    }

    #[test]
    fn phrases_are_words_pairs_tags_mentions_and_domains_without_the_entity() {
        let p = collect(
            "@AcmeAir lost my LUGGAGE again!! #AcmeFail see https://www.news.example.com/story?id=1 @bob lost luggage",
            &["acmeair", "acme", "air"],
        );
        // A clause's end ends a pair.
        assert_eq!(collect("lost bags, no refund", &[]), vec!["lost", "bags", "lost bags", "refund"]);
        assert_eq!(
            p,
            vec!["lost", "luggage", "lost luggage", "#acmefail", "see", "news.example.com", "@bob"],
            "stopwords skipped inside pairs, own handle left out, each phrase once"
        );
        // The entity's own words never appear, alone or in a pair.
        let p = collect("acme air delayed again acme", &["acme", "air"]);
        assert_eq!(p, vec!["delayed"]);
        assert!(collect("", &[]).is_empty());
    }
}
