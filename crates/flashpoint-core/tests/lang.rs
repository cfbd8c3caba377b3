//! The language gate on real posts from five platforms' JSON (tests/fixtures/lang, with its source note): each
//! record goes through its platform's decoder and the scoring normaliser, as in the pipeline.

use flashpoint_core::lang::{LanguageGate, Source};
use flashpoint_core::post::{Decoder, FieldPaths, Format};
use flashpoint_core::sentiment::{Label, LabelThresholds, LexiconScorer};
use flashpoint_core::stage::ScoreStage;
use flashpoint_core::{entity::EntityConfig, normalize};
use serde_json::Value;
use std::sync::Arc;

const FIXTURE: &str = include_str!("fixtures/lang/social_posts.jsonl");

fn format(name: &str) -> Format {
    serde_json::from_value(Value::String(name.into())).unwrap()
}

fn source(s: &str) -> Source {
    match s {
        "tag" => Source::Tag,
        "detected" => Source::Detected,
        "assumed" => Source::Assumed,
        other => panic!("fixture: unknown source {other}"),
    }
}

#[test]
fn real_posts_are_judged_by_tag_and_text() {
    let gate = LanguageGate::for_languages(&["en"]);
    let mut checked = 0;
    let mut unscored = std::collections::BTreeSet::new();
    for line in FIXTURE.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let decoder = Decoder::new(format(row["format"].as_str().unwrap()), FieldPaths::default());
        let posts = decoder.decode(row["record"].to_string().as_bytes()).unwrap();
        assert_eq!(posts.len(), 1, "{line}");
        let p = &posts[0];
        let text = normalize::for_scoring(&p.text);
        let v = gate.judge(p.lang.as_deref(), &text);
        let want = &row["expect"];
        assert_eq!(v.scored, want["scored"].as_bool().unwrap(), "{} {:?}: {v:?}", p.text, p.lang);
        assert_eq!(v.source, source(want["source"].as_str().unwrap()), "{} {:?}: {v:?}", p.text, p.lang);
        assert_eq!(v.lang.map(|l| l.to_string()).as_deref(), want["lang"].as_str(), "{}: {v:?}", p.text);
        let bare = gate.judge(None, &text);
        assert_eq!(bare.scored, row["untagged"]["scored"].as_bool().unwrap(), "untagged {}: {bare:?}", p.text);
        if !v.scored {
            unscored.insert(v.lang.unwrap().to_string());
        }
        checked += 1;
    }
    assert_eq!(checked, 16);
    // Japanese, Korean, Czech, Russian, Dutch and (by its tag) German posts are not read as English.
    assert_eq!(unscored.into_iter().collect::<Vec<_>>(), ["cs", "de", "ja", "ko", "nl", "ru"]);
}

#[test]
fn unscored_posts_still_match_and_count() {
    // The Dutch tweets mention Tweepy as the English ones do: all match, only the English ones are scored.
    let entity = EntityConfig {
        name: "Tweepy".into(),
        terms: vec!["tweepy".into()],
        handles: vec![],
        hashtags: vec![],
        exclude: vec![],
        ..EntityConfig::default()
    };
    let stage = ScoreStage::new(Arc::new(LexiconScorer::new(LabelThresholds::default())), &[entity]).unwrap();
    let decoder = Decoder::new(Format::TwitterV1, FieldPaths::default());
    let posts: Vec<_> = FIXTURE
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["format"] == "twitter_v1")
        .flat_map(|r| decoder.decode(r["record"].to_string().as_bytes()).unwrap())
        .collect();
    assert_eq!(posts.len(), 4);
    let mut out = Vec::new();
    let counts = stage.score_counted(&posts, &mut out).unwrap();
    assert_eq!((counts.matched, counts.unscored), (4, 2));
    let labels: Vec<(&str, Label)> =
        out.iter().map(|s| (posts[s.post].lang.as_deref().unwrap(), s.sentiment.label)).collect();
    for (lang, label) in &labels {
        assert_eq!(*lang == "nl", *label == Label::Unscored, "{labels:?}");
    }
    let unscored = out.iter().find(|s| s.sentiment.label == Label::Unscored).unwrap();
    assert_eq!(unscored.sentiment.compound, 0.0);
    // With every language allowed, the same posts are all scored (the behaviour before the gate).
    let mut all = ScoreStage::new(
        Arc::new(LexiconScorer::new(LabelThresholds::default())),
        &[EntityConfig {
            name: "Tweepy".into(),
            terms: vec!["tweepy".into()],
            handles: vec![],
            hashtags: vec![],
            exclude: vec![],
            ..EntityConfig::default()
        }],
    )
    .unwrap();
    all.language = LanguageGate::all();
    let mut out = Vec::new();
    assert_eq!(all.score_counted(&posts, &mut out).unwrap().unscored, 0);
    assert!(out.iter().all(|s| s.sentiment.label != Label::Unscored));
}

fn acme() -> EntityConfig {
    EntityConfig {
        name: "Acme".into(),
        terms: vec!["acme".into()],
        handles: vec![],
        hashtags: vec![],
        exclude: vec![],
        ..EntityConfig::default()
    }
}

/// A quiet English baseline, then ten minutes of English complaints drowned in twice as many French ones (half of
/// them tagged `fr`, half untagged): the incident opens on the English share, and its events count the French
/// posts as volume but not as sentiment.
#[test]
fn foreign_posts_count_toward_volume_and_not_toward_the_negative_share() {
    use flashpoint_core::aggregate::{AggregatorConfig, WindowConfig};
    use flashpoint_core::event::Output;
    use flashpoint_core::pipeline::Pipeline;
    use flashpoint_core::post::Post;
    let mut cfg = AggregatorConfig::default();
    cfg.window = WindowConfig { size_secs: 120, slide_secs: 60, offset_secs: 0, allowed_lateness_secs: 10 };
    cfg.detection.warmup_secs = 0;
    let mut p = Pipeline::new(Box::new(LexiconScorer::default()), &[acme()], &cfg).unwrap();
    let mut posts = Vec::new();
    for minute in 0..180i64 {
        let burst = (150..160).contains(&minute);
        let n = if burst { 60 } else { 3 };
        for k in 0..n {
            let (text, lang) = match (burst, k % 3) {
                (false, _) => ("I love flying acme, great crew", None),
                (true, 0) => ("acme lost my bag again, worst service ever", None),
                (true, 1) => ("acme a perdu ma valise, le service est nul et je suis furieux", Some("fr")),
                (true, _) => ("acme a perdu ma valise, le service est nul et je suis furieux", None),
            };
            posts.push(Post {
                id: format!("{minute}-{k}"),
                text: text.into(),
                created_at: minute * 60_000 + k * 100,
                author: None,
                followers: Some(10),
                lang: lang.map(str::to_string),
                url: None,
                author_url: None,
                platform: None,
            });
        }
    }
    let mut out = Vec::new();
    for chunk in posts.chunks(512) {
        p.process_batch(chunk.to_vec(), &mut out).unwrap();
    }
    p.aggregator().flush(&mut out);
    assert_eq!(p.counters.unscored, 400, "every French post of the burst, tagged or not");
    assert_eq!(p.counters.scored + p.counters.unscored, p.counters.matched);
    let spikes: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Spike(e) => Some(e),
            _ => None,
        })
        .collect();
    let opened = spikes.first().expect("the English complaints open an incident");
    let c = &opened.counts;
    assert!(c.unscored > 0 && c.volume == c.scored + c.unscored, "{c:?}");
    assert_eq!(c.scored, c.negative + c.neutral + c.positive);
    let share = c.negative as f64 / c.scored as f64;
    assert!((opened.negative_share - share).abs() < 1e-4, "{} vs {share}", opened.negative_share);
    assert!(opened.negative_share > 0.5, "over scored posts, not diluted by the French ones: {c:?}");
    // The JSON carries the counts (and the schema requires them).
    let json = serde_json::to_value(opened).unwrap();
    assert_eq!(json["counts"]["unscored"], c.unscored);
}

/// An unscored post crosses the internal topic like any other: its label is one more value of the same field.
#[test]
fn unscored_stage_records_round_trip_and_count_as_unscored() {
    use flashpoint_core::aggregate::AggregatorConfig;
    use flashpoint_core::stage::{AggregateStage, Applied, ScoredPost, StageRecord};
    let post = flashpoint_core::post::Post {
        id: "1".into(),
        text: "acme a perdu ma valise".into(),
        created_at: 0,
        author: None,
        followers: None,
        lang: Some("fr".into()),
        url: None,
        author_url: None,
        platform: None,
    };
    let rec = StageRecord::Post(ScoredPost::new(
        &post,
        "Acme",
        &flashpoint_core::sentiment::Sentiment::UNSCORED,
        "posts/0",
        7,
        0,
    ));
    let bytes = serde_json::to_vec(&rec).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("\"label\":\"unscored\""));
    let back: StageRecord = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, rec);
    let mut st = AggregateStage::new(&[acme()], &AggregatorConfig::default()).unwrap();
    assert_eq!(st.apply(&back, &mut Vec::new()), Applied::Aggregated);
}
