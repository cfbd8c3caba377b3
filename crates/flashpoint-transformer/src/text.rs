//! The text and number plumbing around the encoder: what it reads (emoji spelled out), in which order
//! (by length, for padding), and how its class probabilities become a `Sentiment`.

use flashpoint_core::sentiment::{Label, Sentiment};
use std::borrow::Cow;

/// Class probabilities (negative, neutral, positive) to a [`Sentiment`].
///
/// `compound = pos - neg`, so it stays in [-1, 1] and keeps the lexicon scorer's meaning (sign = polarity, size =
/// confidence), which the detector's negative-share signal relies on. The label is the most probable class, not
/// a threshold on `compound`: the head was trained for argmax, and thresholds tuned for VADER's compound do not
/// transfer (a confident neutral with a slight negative lean would become negative).
pub fn to_sentiment(p: [f32; 3]) -> Sentiment {
    let (neg, neu, pos) = (p[0] as f64, p[1] as f64, p[2] as f64);
    let label = if neg > neu && neg >= pos {
        Label::Negative
    } else if pos > neu && pos > neg {
        Label::Positive
    } else {
        Label::Neutral
    };
    Sentiment { neg, neu, pos, compound: (pos - neg).clamp(-1.0, 1.0), label }
}

/// Emoji spelled out in words ("😍" → " smiling face with heart-eyes "), with the descriptions of VADER's emoji
/// lexicon (the one the lexicon scorer uses).
///
/// MiniLM's WordPiece vocabulary has no emoji: a run of them becomes one `[UNK]` token, so "landed 😍" and
/// "landed 😡" would read the same. The words are in the vocabulary and the encoder knows what they mean. The
/// SemEval training tweets hold no emoji at all, so this changes nothing the model was trained or checked on; it
/// only gives the encoder something to read where it would see `[UNK]`. Skin-tone modifiers and the emoji
/// variation selector carry no sentiment and are dropped. Text without emoji is returned borrowed.
pub fn spell_out_emoji(text: &str) -> Cow<'_, str> {
    let lex = flashpoint_core::sentiment::vader::Lexicon::builtin();
    let dropped = |c: char| c == '\u{FE0F}' || ('\u{1F3FB}'..='\u{1F3FF}').contains(&c);
    // ASCII never holds an emoji: most posts return here without a lookup.
    if text.is_ascii() || !text.chars().any(|c| dropped(c) || lex.emoji_description(c).is_some()) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    for c in text.chars() {
        if dropped(c) {
            continue;
        }
        match lex.emoji_description(c) {
            Some(desc) => {
                out.push(' ');
                out.push_str(desc);
                out.push(' ');
            }
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Indices of `texts` sorted by length (stable), so each sub-batch pads to similar lengths. Byte length is a
/// proxy for token count that costs nothing; tokenising twice to sort exactly would cost more than it saves.
pub fn length_order(texts: &[&str]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_label_and_compound() {
        let s = to_sentiment([0.7, 0.2, 0.1]);
        assert_eq!(s.label, Label::Negative);
        assert!((s.compound + 0.6).abs() < 1e-6);
        assert_eq!(to_sentiment([0.1, 0.2, 0.7]).label, Label::Positive);
        assert_eq!(to_sentiment([0.3, 0.4, 0.3]).label, Label::Neutral);
        // Ties go to neutral: the label the detector treats as "no signal".
        assert_eq!(to_sentiment([0.4, 0.4, 0.2]).label, Label::Neutral);
    }

    #[test]
    fn emoji_are_spelled_out() {
        assert!(matches!(spell_out_emoji("plain text :)"), Cow::Borrowed(_)));
        assert!(matches!(spell_out_emoji("café au lait"), Cow::Borrowed(_)));
        assert_eq!(spell_out_emoji("landed😍"), "landed smiling face with heart-eyes ");
        assert_eq!(spell_out_emoji("no 😡😡"), "no  pouting face  pouting face ");
        // Skin tone and variation selector go; the hand stays.
        assert_eq!(spell_out_emoji("ok 👍🏽"), "ok  thumbs up ");
        assert_eq!(spell_out_emoji("❤\u{FE0F}"), " red heart ");
    }

    #[test]
    fn length_order_is_stable() {
        assert_eq!(length_order(&["ccc", "a", "bb", "d", ""]), vec![4, 1, 3, 2, 0]);
    }
}
