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
        }],
    )
    .unwrap();
    all.language = LanguageGate::all();
    let mut out = Vec::new();
    assert_eq!(all.score_counted(&posts, &mut out).unwrap().unscored, 0);
    assert!(out.iter().all(|s| s.sentiment.label != Label::Unscored));
}
