//! The language gate: which matched posts a scorer can read, and in what language the others are.
//!
//! Every scorer Flashpoint ships reads English only. Scoring a French complaint with the English lexicon
//! yields "neutral" and dilutes exactly the negative share that should rise, so a post in a language the
//! scorer does not declare is marked *unscored* instead: it still counts toward volume, matching and reach,
//! but never toward sentiment sums or shares.
//!
//! The policy, in order (documented in the README's "Languages" section):
//! 1. **Platform tag.** A tag naming a scorer language (`en`, `en-US`, any of Bluesky's `langs`) means
//!    scored, with no detection. A tag naming only other languages means unscored, unless the text itself
//!    shows clear English evidence (see 2): clients tag by the author's setting, not the text, and real
//!    Bluesky posts tagged `tr` or `de` are written in English. `und`, `zxx`, `mul` and Twitter's `q..`
//!    pseudo-codes count as no tag.
//! 2. **No tag.** A cheap scan counts letters, letters outside the Latin script, and hits in two small lists of
//!    function words (English; the commonest Latin-script languages). A text mostly in another script is
//!    foreign. A Latin-script text is foreign only when foreign function words outnumber English ones (at
//!    least two), it has at least `min_letters` letters, and `whatlang` agrees with at least `min_confidence`.
//!    Anything else, short texts and texts without evidence included, is read as the scorer's language:
//!    mislabelling an English complaint as foreign would hide it, which is worse than scoring a stray
//!    foreign post as English.
//!
//! `whatlang` costs ~100 µs per tweet on a busy core, so it only runs on posts the scan already suspects; an
//! English post is decided by the scan, usually within its first few words.

use std::fmt;

/// An ISO 639 code (two or three lower-case ASCII letters): the primary subtag of a BCP-47 tag, or what
/// detection found. Copy and allocation-free, so judging a post allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LangCode([u8; 3]);

impl LangCode {
    /// The primary subtag of a BCP-47 tag (`en-US` -> `en`), lower-cased, mapping retired codes (`in`, `iw`,
    /// `ji`). `None` for anything else, and for the codes that name no language (`und`, `zxx`, `mul`, `mis`,
    /// Twitter's `qme`/`qht`/`qam`/`qct`/`qst`, `art`).
    pub fn parse(tag: &str) -> Option<LangCode> {
        let primary = tag.trim().split(['-', '_']).next()?;
        let b = primary.as_bytes();
        if !(2..=3).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let mut c = [0u8; 3];
        for (d, s) in c.iter_mut().zip(b) {
            *d = s.to_ascii_lowercase();
        }
        let code = LangCode(c);
        match code.as_str() {
            "und" | "zxx" | "mul" | "mis" | "art" => None,
            s if s.len() == 3 && s.starts_with('q') => None,
            "in" => Some(LangCode(*b"id\0")),
            "iw" => Some(LangCode(*b"he\0")),
            "ji" => Some(LangCode(*b"yi\0")),
            _ => Some(code),
        }
    }

    pub fn as_str(&self) -> &str {
        let n = if self.0[2] == 0 { 2 } else { 3 };
        std::str::from_utf8(&self.0[..n]).expect("ASCII letters")
    }

    const EN: LangCode = LangCode(*b"en\0");

    fn from_whatlang(l: whatlang::Lang) -> LangCode {
        let code = iso639_1(l).unwrap_or_else(|| l.code());
        LangCode::parse(code).expect("whatlang codes are valid ISO 639")
    }
}

impl fmt::Debug for LangCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LangCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the gate decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The platform's language tag.
    Tag,
    /// The text: script, function words, and `whatlang` when they point away from the scorer's language.
    Detected,
    /// No evidence either way (short text, or nothing recognisable): read as the scorer's language.
    Assumed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Tag => "tag",
            Source::Detected => "detected",
            Source::Assumed => "assumed",
        }
    }
}

/// The gate's decision for one post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The post's language, when known (`None` when assumed).
    pub lang: Option<LangCode>,
    /// Whether the scorer reads it.
    pub scored: bool,
    pub source: Source,
}

/// Which languages a scorer reads, and how far to trust detection. Cheap to share: no allocation per post.
#[derive(Clone, Debug, PartialEq)]
pub struct LanguageGate {
    /// Empty means every language (the gate is off).
    languages: Vec<LangCode>,
    detect: bool,
    min_letters: usize,
    min_confidence: f64,
    /// The function-word lists, packed (see `WordTable`).
    words: WordTable,
}

/// Default: detection needs at least this many letters in a Latin-script text...
pub const DEFAULT_MIN_LETTERS: usize = 20;
/// ...and at least this `whatlang` confidence.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.5;

/// This many foreign function words and no English one make a text foreign even when whatlang is unsure of the
/// exact language (short Dutch or Afrikaans posts often leave it undecided between the two).
const STRONG_FOREIGN: u32 = 3;

/// A text is in another script when at least this many of its letters, and more than half, are not Latin.
const MIN_NON_LATIN: u32 = 3;

impl LanguageGate {
    /// `languages`: ISO 639 codes, or `["*"]` for every language. `detect = false` trusts tags only.
    pub fn new(
        languages: &[impl AsRef<str>],
        detect: bool,
        min_letters: usize,
        min_confidence: f64,
    ) -> Result<LanguageGate, String> {
        let mut codes = Vec::new();
        let mut all = false;
        for l in languages {
            let l = l.as_ref();
            if l == "*" {
                all = true;
                continue;
            }
            let c = LangCode::parse(l).filter(|c| c.as_str() == l).ok_or_else(|| {
                format!("`{l}` is not a lower-case ISO 639 language code (two or three letters, e.g. \"en\") or \"*\"")
            })?;
            if !codes.contains(&c) {
                codes.push(c);
            }
        }
        if all {
            codes.clear();
        } else if codes.is_empty() {
            return Err("must name at least one language (or \"*\" for all)".into());
        }
        if !(0.0..=1.0).contains(&min_confidence) {
            return Err(format!("detection confidence must be in [0, 1] (got {min_confidence})"));
        }
        Ok(LanguageGate { languages: codes, detect, min_letters, min_confidence, words: WordTable::new() })
    }

    /// The gate for a scorer's declared languages with the default detection thresholds.
    pub fn for_languages(languages: &[&str]) -> LanguageGate {
        LanguageGate::new(languages, true, DEFAULT_MIN_LETTERS, DEFAULT_MIN_CONFIDENCE).expect("valid codes")
    }

    /// Scores every post whatever its language (the behaviour before the gate existed).
    pub fn all() -> LanguageGate {
        LanguageGate {
            languages: Vec::new(),
            detect: false,
            min_letters: 0,
            min_confidence: 0.0,
            words: WordTable::new(),
        }
    }

    pub fn is_all(&self) -> bool {
        self.languages.is_empty()
    }

    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.iter().map(LangCode::as_str)
    }

    fn reads(&self, c: LangCode) -> bool {
        self.languages.contains(&c)
    }

    /// Decides one post. `tag` is the platform's language field (a BCP-47 tag, or several separated by
    /// commas, as the Bluesky decoder keeps `langs`); `text` what the scorer would read.
    pub fn judge(&self, tag: Option<&str>, text: &str) -> Verdict {
        if self.is_all() {
            let lang = tag.and_then(|t| t.split(',').find_map(LangCode::parse));
            let source = if lang.is_some() { Source::Tag } else { Source::Assumed };
            return Verdict { lang, scored: true, source };
        }
        let mut first_tag = None;
        for t in tag.into_iter().flat_map(|t| t.split(',')) {
            if let Some(c) = LangCode::parse(t) {
                if self.reads(c) {
                    return Verdict { lang: Some(c), scored: true, source: Source::Tag };
                }
                first_tag.get_or_insert(c);
            }
        }
        if let Some(c) = first_tag {
            // Tagged with another language: scored only if the text is plainly in one the scorer reads.
            if self.detect {
                if let Some(v) = self.detect_text(text).filter(|v| v.scored && v.source == Source::Detected) {
                    return v;
                }
            }
            return Verdict { lang: Some(c), scored: false, source: Source::Tag };
        }
        if !self.detect {
            return self.assumed();
        }
        self.detect_text(text).unwrap_or_else(|| self.assumed())
    }

    fn assumed(&self) -> Verdict {
        Verdict { lang: None, scored: true, source: Source::Assumed }
    }

    /// `None` when the text gives no evidence.
    fn detect_text(&self, text: &str) -> Option<Verdict> {
        let english = self.reads(LangCode::EN);
        let ev = scan(&self.words, text, english);
        let latin_text = !(ev.non_latin >= MIN_NON_LATIN && ev.non_latin * 2 > ev.letters);
        if latin_text {
            if english && ev.english > 0 && ev.english > ev.foreign {
                return Some(Verdict { lang: Some(LangCode::EN), scored: true, source: Source::Detected });
            }
            // Without English in the languages there are no function words to weigh: detection decides.
            let suspect = !english || (ev.foreign >= 2 && ev.foreign > ev.english);
            if !suspect || (ev.letters as usize) < self.min_letters {
                return None;
            }
        }
        let info = detector().detect(text)?;
        let c = LangCode::from_whatlang(info.lang());
        // Another script is evidence enough (an English scorer cannot read it, whatever whatlang's confidence in
        // the exact language), and so are three foreign function words without an English one; otherwise a
        // Latin-script guess must be confident.
        let strong = !latin_text || (english && ev.foreign >= STRONG_FOREIGN && ev.english == 0 && !self.reads(c));
        let confident = info.is_reliable() && info.confidence() >= self.min_confidence;
        if !strong && !confident {
            return None;
        }
        Some(Verdict { lang: Some(c), scored: self.reads(c), source: Source::Detected })
    }
}

/// `whatlang` without fifteen Latin-script languages rare in social media (Afrikaans, Latin, Esperanto, Javanese,
/// Zulu, Shona, Akan, Turkmen, Uzbek, Azerbaijani, Slovene, Croatian, Lithuanian, Latvian, Estonian): each language
/// is one more trigram profile to compare, and dropping these makes a Latin-script call ~35% cheaper. A post in one
/// of them is still judged foreign, named after its nearest neighbour (Afrikaans as Dutch).
fn detector() -> &'static whatlang::Detector {
    use whatlang::Lang::*;
    static DETECTOR: std::sync::OnceLock<whatlang::Detector> = std::sync::OnceLock::new();
    DETECTOR.get_or_init(|| {
        whatlang::Detector::with_denylist(vec![
            Afr, Lat, Epo, Jav, Zul, Sna, Aka, Tuk, Uzb, Aze, Slv, Hrv, Lit, Lav, Est,
        ])
    })
}

/// What the scan found.
#[derive(Debug, Default, PartialEq)]
struct Evidence {
    letters: u32,
    non_latin: u32,
    english: u32,
    foreign: u32,
}

/// Once this many English function words are seen before any foreign one (or any letter of another script),
/// the scan stops and the text is English: most English posts end here within their first few words, which is
/// what keeps the gate cheap. One is enough because the foreign list holds no English words: a foreign text
/// would have to open with an English function word and hold none of its own before it.
const ENGLISH_ENOUGH: u32 = 1;

fn scan(table: &WordTable, text: &str, english: bool) -> Evidence {
    let mut ev = Evidence::default();
    // The current word, lower-cased and packed as it is read (see `pack`); `len` counts its bytes, and a word
    // longer than 8 bytes is no function word.
    let mut key = 0u64;
    let mut len = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    // Bytes, not chars: posts are mostly ASCII, and only the rare non-ASCII letter needs decoding.
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            i += 1;
            let l = ASCII_LOWER[b as usize];
            if l != 0 {
                ev.letters += 1;
                if len < 8 {
                    key |= (l as u64) << (8 * len);
                }
                len += 1;
                continue;
            }
            if b == b'\'' {
                continue;
            }
        } else {
            let c = text[i..].chars().next().expect("i is at a char boundary");
            i += c.len_utf8();
            if c.is_alphabetic() {
                ev.letters += 1;
                if !is_latin(c) {
                    ev.non_latin += 1;
                }
                let mut buf = [0u8; 4];
                for &u in c.to_lowercase().next().unwrap_or(c).encode_utf8(&mut buf).as_bytes() {
                    if len < 8 {
                        key |= (u as u64) << (8 * len);
                    }
                    len += 1;
                }
                continue;
            }
            if c == '\u{2019}' {
                continue;
            }
        }
        if len > 0 {
            if len <= 8 {
                table.count(key, &mut ev);
                if english && ev.english >= ENGLISH_ENOUGH && ev.foreign == 0 && ev.non_latin == 0 {
                    return ev;
                }
            }
            key = 0;
            len = 0;
        }
    }
    if (1..=8).contains(&len) {
        table.count(key, &mut ev);
    }
    ev
}

/// ASCII letters lower-cased, every other byte 0: one load decides letter or separator.
const ASCII_LOWER: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphabetic() {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

fn is_latin(c: char) -> bool {
    // Basic Latin through Latin Extended-B and IPA, plus Latin Extended Additional (Vietnamese).
    (c as u32) < 0x0300 || ('\u{1E00}'..='\u{1EFF}').contains(&c)
}

/// Function words, lower-case. The English list holds words rare in other languages; the foreign list the
/// commonest function words of Spanish, Portuguese, French, Italian, German, Dutch, Indonesian, Tagalog,
/// Turkish, the Scandinavian languages, Polish and Czech, without the ones that are also English words or
/// common English names and slang (`die`, `dan`, `yo`, `ya`, `um`, `lo`, `al`). Words both lists would claim
/// (`is`, `in`, `on`, `was`, `i`) are in neither. Apostrophes are dropped from words (`don't` is `dont`).
const ENGLISH_WORDS: &[&str] = &[
    "the", "and", "you", "your", "are", "were", "of", "my", "for", "this", "that", "with", "have", "has", "not",
    "what", "just", "but", "it", "its", "im", "dont", "cant", "will", "they", "we", "he", "she", "his", "our", "their",
    "when", "how", "why", "who", "from", "about", "been", "would", "could", "should", "there", "can", "get", "got",
    "like", "to", "be", "if", "or", "all", "by", "out", "up",
];

const FOREIGN_WORDS: &[&str] = &[
    "el", "la", "los", "las", "que", "por", "para", "con", "una", "del", "es", "muy", "pero", "como", "esta", "este",
    "todo", "hay", "mas", "más", "le", "les", "des", "et", "une", "pour", "pas", "je", "vous", "nous", "avec", "dans",
    "sur", "ce", "qui", "il", "du", "au", "mais", "très", "sont", "não", "uma", "eu", "você", "muito", "isso", "che",
    "di", "sono", "della", "gli", "anche", "der", "das", "und", "ist", "nicht", "ich", "ein", "eine", "mit", "für",
    "auf", "wir", "sehr", "auch", "het", "een", "niet", "ik", "ook", "maar", "voor", "zijn", "yang", "ini", "itu",
    "tidak", "saya", "aku", "dengan", "untuk", "ang", "ng", "mga", "ako", "hindi", "naman", "bir", "ve", "bu", "çok",
    "için", "och", "att", "det", "är", "jag", "inte", "ikke", "jeg", "nie", "się", "jest", "że", "jsem", "ještě", "se",
    "en", "de", "na",
];

/// A word of at most 8 bytes packed into an integer: one comparison per probe instead of a string compare.
fn pack(w: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..w.len()].copy_from_slice(w);
    u64::from_le_bytes(b)
}

/// Both lists in an open-addressing hash table of packed words: a probe or two per word, no string compares.
#[derive(Clone, Debug, PartialEq)]
struct WordTable {
    /// 0 is an empty slot (no word packs to 0).
    keys: Box<[u64]>,
    english: Box<[bool]>,
}

const TABLE_BITS: u32 = 9;

impl WordTable {
    fn new() -> WordTable {
        let size = 1usize << TABLE_BITS;
        assert!(ENGLISH_WORDS.len() + FOREIGN_WORDS.len() < size / 2, "keep the table at most half full");
        let mut t = WordTable { keys: vec![0; size].into(), english: vec![false; size].into() };
        for (words, english) in [(ENGLISH_WORDS, true), (FOREIGN_WORDS, false)] {
            for w in words {
                assert!(w.len() <= 8, "{w}: words are packed into 8 bytes");
                let k = pack(w.as_bytes());
                let mut i = Self::slot(k);
                while t.keys[i] != 0 && t.keys[i] != k {
                    i = (i + 1) & (size - 1);
                }
                t.keys[i] = k;
                t.english[i] = english;
            }
        }
        t
    }

    fn slot(k: u64) -> usize {
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TABLE_BITS)) as usize
    }

    fn count(&self, k: u64, ev: &mut Evidence) {
        let mask = self.keys.len() - 1;
        let mut i = Self::slot(k);
        loop {
            match self.keys[i] {
                0 => return,
                x if x == k => {
                    if self.english[i] {
                        ev.english += 1;
                    } else {
                        ev.foreign += 1;
                    }
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }
}

/// ISO 639-1 for whatlang's ISO 639-3 codes (platforms tag with 639-1).
fn iso639_1(l: whatlang::Lang) -> Option<&'static str> {
    use whatlang::Lang::*;
    Some(match l {
        Epo => "eo",
        Eng => "en",
        Rus => "ru",
        Cmn => "zh",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Ben => "bn",
        Fra => "fr",
        Deu => "de",
        Ukr => "uk",
        Kat => "ka",
        Ara => "ar",
        Hin => "hi",
        Jpn => "ja",
        Heb => "he",
        Yid => "yi",
        Pol => "pl",
        Amh => "am",
        Jav => "jv",
        Kor => "ko",
        Nob => "nb",
        Dan => "da",
        Swe => "sv",
        Fin => "fi",
        Tur => "tr",
        Nld => "nl",
        Hun => "hu",
        Ces => "cs",
        Ell => "el",
        Bul => "bg",
        Bel => "be",
        Mar => "mr",
        Kan => "kn",
        Ron => "ro",
        Slv => "sl",
        Hrv => "hr",
        Srp => "sr",
        Mkd => "mk",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tam => "ta",
        Vie => "vi",
        Urd => "ur",
        Tha => "th",
        Guj => "gu",
        Uzb => "uz",
        Pan => "pa",
        Aze => "az",
        Ind => "id",
        Tel => "te",
        Pes => "fa",
        Mal => "ml",
        Ori => "or",
        Mya => "my",
        Nep => "ne",
        Sin => "si",
        Khm => "km",
        Tuk => "tk",
        Aka => "ak",
        Zul => "zu",
        Sna => "sn",
        Afr => "af",
        Lat => "la",
        Slk => "sk",
        Cat => "ca",
        Tgl => "tl",
        Hye => "hy",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> Option<String> {
        LangCode::parse(s).map(|c| c.to_string())
    }

    #[test]
    fn tags_reduce_to_their_primary_language() {
        assert_eq!(code("en-US").as_deref(), Some("en"));
        assert_eq!(code("PT_br").as_deref(), Some("pt"));
        assert_eq!(code("in").as_deref(), Some("id"), "Twitter's retired code for Indonesian");
        assert_eq!(code("iw").as_deref(), Some("he"));
        assert_eq!(code("ckb").as_deref(), Some("ckb"));
        for none in ["und", "zxx", "qme", "qht", "mul", "", "english", "e1", "-en", "日本"] {
            assert_eq!(code(none), None, "{none}");
        }
    }

    #[test]
    fn the_tag_decides_unless_the_text_is_plainly_english() {
        let g = LanguageGate::for_languages(&["en"]);
        let v = g.judge(Some("en-GB"), "c'est nul");
        assert_eq!((v.scored, v.source), (true, Source::Tag), "a scorer-language tag is never second-guessed");
        let v = g.judge(Some("fr"), "le service est nul, je suis furieux");
        assert_eq!((v.lang.unwrap().to_string().as_str(), v.scored, v.source), ("fr", false, Source::Tag));
        let v = g.judge(Some("tr"), "The government you're trying to punish is not the people of the country");
        assert_eq!((v.scored, v.source), (true, Source::Detected));
        let v = g.judge(Some("es,en"), "hola");
        assert_eq!((v.scored, v.source), (true, Source::Tag), "any tag in the list counts");
        let v = g.judge(Some("und"), "lost my bag again");
        assert_eq!((v.scored, v.source), (true, Source::Detected));
        // Trusting tags only: untagged posts are assumed, foreign-tagged ones are not checked against the text.
        let tags_only = LanguageGate::new(&["en"], false, DEFAULT_MIN_LETTERS, DEFAULT_MIN_CONFIDENCE).unwrap();
        assert_eq!(tags_only.judge(None, "le service est nul, je suis furieux").source, Source::Assumed);
        assert!(!tags_only.judge(Some("tr"), "the people of the country are not the government").scored);
    }

    #[test]
    fn untagged_text_is_foreign_only_on_evidence() {
        let g = LanguageGate::for_languages(&["en"]);
        let v = g.judge(None, "El servicio de esta aerolínea es muy malo, perdieron mi maleta y nadie me ayuda");
        assert_eq!((v.lang.map(|l| l.to_string()), v.scored), (Some("es".into()), false));
        let v = g.judge(None, "Le service client est vraiment nul, je suis furieux pour ma valise perdue");
        assert_eq!((v.lang.map(|l| l.to_string()), v.scored), (Some("fr".into()), false));
        let v = g.judge(None, "Der Kundenservice ist eine Katastrophe und ich bin sehr wütend");
        assert_eq!((v.lang.map(|l| l.to_string()), v.scored), (Some("de".into()), false));
        // Another script needs few letters: an English scorer cannot read it at any length.
        assert!(!g.judge(None, "最悪のサービス").scored);
        // Short or evidence-free texts are read as English rather than hidden.
        for text in ["Acme Air sucks!!!", "la la land", "Real de Madrid", "muy bueno", "😡😡😡 #fail", ""] {
            let v = g.judge(None, text);
            assert!(v.scored, "{text}: {v:?}");
        }
        assert_eq!(g.judge(None, "muy bueno").source, Source::Assumed);
        // English with a stray foreign word stays English.
        assert!(g.judge(None, "the food at the el paso gate was awful and they lost my bag").scored);
    }

    #[test]
    fn the_gate_is_configurable_and_can_be_off() {
        let all = LanguageGate::new(&["*"], true, 20, 0.5).unwrap();
        assert!(all.is_all());
        let v = all.judge(Some("ja"), "最悪のサービス");
        assert!(v.scored);
        assert_eq!(v.lang.map(|l| l.to_string()).as_deref(), Some("ja"));
        assert!(LanguageGate::new(&["EN"], true, 20, 0.5).unwrap_err().contains("EN"));
        assert!(LanguageGate::new(&["english"], true, 20, 0.5).is_err());
        assert!(LanguageGate::new(&[] as &[&str], true, 20, 0.5).is_err());
        assert!(LanguageGate::new(&["en"], true, 20, 1.5).is_err());
        // A gate without English weighs no function words: whatlang decides, above the thresholds.
        let de = LanguageGate::new(&["de"], true, 20, 0.5).unwrap();
        assert!(de.judge(None, "Der Kundenservice ist eine Katastrophe und ich bin sehr wütend").scored);
        assert!(!de.judge(None, "The customer service is a disaster and I am very angry about it").scored);
        assert!(de.judge(None, "kurz").scored, "too short to judge");
    }
}
