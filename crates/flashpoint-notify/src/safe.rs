//! Post text is hostile: making it safe for each destination.
//!
//! Evidence posts, authors and top terms are written by strangers, and a message that quotes them is read by
//! people who act on it. A post must never ping a channel (`<!channel>`, `<!here>`, `@everyone`), mention a
//! person (`<@U123>`), hide a link behind a label (`<https://evil|your dashboard>`, `[docs](https://evil)`),
//! forge a field (`*Severity:* low` on a line of its own) or reorder what is shown (bidi overrides). So, for
//! every destination, the text first goes through [`plain`]: `flashpoint_core::sanitize::for_display` (controls
//! and line breaks become spaces, bidi controls are dropped), invisible characters are dropped, whitespace runs
//! collapse to one space and the result is cut to a length. Then, per destination:
//!
//! - [`chat`] (Slack and Teams): the characters that build markup are replaced by look-alikes that build none
//!   (`<` `>` `[` `]` `|` `*` `_` `~` `` ` `` become `‹ › ［ ］ │ ∗ ＿ ∼ ˋ`), and `@` before `channel`, `here`,
//!   `everyone` becomes `＠`. The text stays readable, a URL stays visible as text, and no parser finds a
//!   control sequence in it, whether or not the block it lands in parses markup.
//! - [`slack`]: [`chat`] plus Slack's own required escaping of `&` (`&amp;`).
//! - [`html`]: [`plain`] plus HTML escaping of `& < > " '` (email).
//!
//! Lengths count characters after escaping, so a cut never splits an escape and a limit (Slack's 3000 per
//! text object, 150 per header) holds exactly.
//!
//! Links to a post or its author come from the same strangers. A link is made only from a URL that passes
//! [`link`]: `https://`, bounded, and only the characters RFC 3986 allows, so it holds no space, control, `<`,
//! `>`, `"` or `|` and cannot end Slack's `<url|label>`, an HTML attribute or a line of the text part. What those
//! characters leave to each markup is escaped by its own function: [`slack_url`] (`&`) and [`html`] for an
//! `href`, quoted. (No channel writes Markdown links: Teams links through Adaptive Card actions.)

use flashpoint_core::normalize::push_collapsed;
use flashpoint_core::sanitize::for_display;

/// Invisible characters that could hide or split what a reader sees (zero-width space/joiners' neighbours,
/// word joiner, invisible operators, BOM, interlinear annotation). ZWJ (U+200D) stays: emoji sequences use it.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{200C}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{00AD}')
}

/// Display-safe, one line, invisible characters dropped, whitespace collapsed, at most `max` characters
/// (with `…` when cut).
pub fn plain(text: &str, max: usize) -> String {
    let shown = for_display(text);
    let mut out = String::with_capacity(shown.len().min(max.saturating_mul(4)));
    push_collapsed(&mut out, shown.chars().filter(|&c| !is_invisible(c)));
    truncate(out, max)
}

/// Cuts `s` to at most `max` characters, the last one `…` when cut.
pub fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let keep = max.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.truncate(out.trim_end().len());
    if max > 0 {
        out.push('…');
    }
    out
}

/// Applies `escape` to each character of `plain(text)`, keeping the escaped length within `max` characters.
fn escaped(text: &str, max: usize, escape: impl Fn(char, &mut String)) -> String {
    let p = plain(text, usize::MAX);
    let mut out = String::new();
    let mut n = 0;
    let mut buf = String::new();
    let total = p.chars().count();
    for (i, c) in p.chars().enumerate() {
        buf.clear();
        escape(c, &mut buf);
        let w = buf.chars().count();
        // Room for the ellipsis unless this is the last character.
        let reserve = usize::from(i + 1 < total);
        if n + w + reserve > max {
            out.truncate(out.trim_end().len());
            out.push('…');
            return out;
        }
        out.push_str(&buf);
        n += w;
    }
    out
}

fn chat_char(c: char, out: &mut String) {
    out.push(match c {
        '<' => '‹',
        '>' => '›',
        '[' => '［',
        ']' => '］',
        '|' => '│',
        '*' => '∗',
        '_' => '＿',
        '~' => '∼',
        '`' => 'ˋ',
        c => c,
    })
}

/// `@channel`, `@here`, `@everyone` (any case) with a full-width `＠`: never a broadcast mention.
fn defuse_broadcasts(s: &str) -> String {
    let lower = s.to_lowercase();
    if lower.len() != s.len() || !lower.contains('@') {
        // Lower-casing changed byte offsets (rare scripts): defuse every `@`.
        return if s.contains('@') { s.replace('@', "＠") } else { s.to_string() };
    }
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        if c == '@' && ["channel", "here", "everyone", "all", "group"].iter().any(|w| lower[i + 1..].starts_with(w)) {
            out.push('＠');
        } else {
            out.push(c);
        }
    }
    out
}

/// For Slack and Teams text (see the module docs).
pub fn chat(text: &str, max: usize) -> String {
    escaped(&defuse_broadcasts(text), max, chat_char)
}

/// For any Slack text object, plain_text or mrkdwn (see the module docs).
pub fn slack(text: &str, max: usize) -> String {
    escaped(&defuse_broadcasts(text), max, |c, out| match c {
        '&' => out.push_str("&amp;"),
        c => chat_char(c, out),
    })
}

/// For HTML email bodies.
pub fn html(text: &str, max: usize) -> String {
    escaped(text, max, |c, out| match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    })
}

/// HTML-escapes text we wrote ourselves (already safe characters, but `&` and `<` may occur).
pub fn html_own(text: &str) -> String {
    html(text, usize::MAX)
}

/// `url` if a link may be made of it (see the module docs), else `None`: the post is then shown unlinked.
pub fn link(url: &str) -> Option<&str> {
    flashpoint_core::post::https_url(url).map(|_| url)
}

/// A [`link`]ed URL for Slack's `<url|label>`: Slack reads `&` as the start of an escape there too.
pub fn slack_url(url: &str) -> String {
    url.replace('&', "&amp;")
}

/// Whether an incident id may name a page (a file of `flashpoint report`, a path of the live server, a link in a
/// message): 1 to 128 letters, digits, `-` and `_` (`inc-1387cae96a0b8ab5`), never a path or markup. The page
/// store refuses any other, so every page link leads somewhere.
pub fn page_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Percent-encodes a URL query value (RFC 3986 unreserved characters kept).
pub fn url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No Slack control sequence, mrkdwn emphasis or markdown link can form in the output.
    fn assert_inert(s: &str) {
        for bad in ["<", ">", "[", "]", "|", "*", "_", "~", "`", "@channel", "@here", "@everyone", "\n", "\u{202e}"] {
            assert!(!s.contains(bad), "{bad:?} survived in {s:?}");
        }
    }

    #[test]
    fn slack_broadcast_mentions_cannot_ping() {
        for t in
            ["<!channel> wake up", "<!here|here>", "<!everyone>", "<!subteam^S123|@oncall>", "hey @channel and @HERE"]
        {
            let s = slack(t, 3000);
            assert_inert(&s);
            assert!(!s.contains("<!"), "{s}");
        }
        assert_eq!(slack("<!channel> now", 100), "‹!channel› now");
        assert_eq!(
            slack("ping @channel / @Everyone / mail@example.com", 100),
            "ping ＠channel / ＠Everyone / mail@example.com"
        );
    }

    #[test]
    fn slack_user_mentions_cannot_notify() {
        let s = slack("thanks <@U024BE7LH> and <#C024BE7LR|general>", 3000);
        assert_inert(&s);
        assert_eq!(s, "thanks ‹@U024BE7LH› and ‹#C024BE7LR│general›");
    }

    #[test]
    fn links_cannot_hide_behind_labels() {
        let s = slack("see <https://evil.example/login|your Grafana dashboard>", 3000);
        assert_inert(&s);
        assert!(s.contains("https://evil.example/login"), "the URL stays visible: {s}");
        let t = chat("read [the runbook](https://evil.example/x) now", 3000);
        assert_inert(&t);
        assert!(!t.contains("]("), "{t}");
        assert!(t.contains("https://evil.example/x"), "{t}");
    }

    #[test]
    fn fields_cannot_be_forged() {
        // A post that tries to look like our own field lines on a line of their own.
        let s = slack("ok\n*Severity:* low\n_resolved_ ~ignore~ `code`", 3000);
        assert_inert(&s);
        assert_eq!(s, "ok ∗Severity:∗ low ＿resolved＿ ∼ignore∼ ˋcodeˋ");
        let t = chat("x\r\n\r\n**Severity:** resolved", 3000);
        assert_eq!(t, "x ∗∗Severity:∗∗ resolved");
    }

    #[test]
    fn controls_bidi_and_invisibles_go() {
        let s = slack("pay\u{202e}lapyap\u{2066} \x1b[31mred\u{200b}\u{feff} \u{2028}x\u{0}", 3000);
        assert_eq!(s, "paylapyap ［31mred x");
        let h = html("a\u{202d}b\tc", 100);
        assert_eq!(h, "ab c");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html("<script>alert('x')</script> & <a href=\"https://evil\">bank</a>", 1000),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;a href=&quot;https://evil&quot;&gt;bank&lt;/a&gt;"
        );
    }

    #[test]
    fn truncation_counts_escapes_and_never_splits_one() {
        let s = slack(&"&".repeat(100), 22);
        assert!(s.chars().count() <= 22, "{s}");
        assert_eq!(s, "&amp;&amp;&amp;&amp;…");
        let h = html("abc<def", 5);
        assert_eq!(h, "abc…");
        assert_eq!(plain("  many   spaces\n\nhere  ", 100), "many spaces here");
        assert_eq!(plain("abcdef", 4), "abc…");
        assert_eq!(slack("abcd", 4), "abcd");
        let long = "é".repeat(5000);
        assert_eq!(slack(&long, 3000).chars().count(), 3000);
    }

    #[test]
    fn only_safe_https_urls_become_links() {
        let ok = "https://x.com/ann/status/1?s=20&t=x";
        assert_eq!(link(ok), Some(ok));
        for bad in [
            "javascript:alert(1)",
            "http://x.com/a",
            "https://x.com/a|evil label",
            "https://x.com/a>b",
            "https://x.com/a\"onmouseover=\"x",
            "https://x.com/a b",
            "https://x.com/a\n*Severity:* low",
            "https://x.com/\u{202e}a",
            " https://x.com/a",
        ] {
            assert_eq!(link(bad), None, "{bad:?}");
        }
        assert_eq!(slack_url(ok), "https://x.com/ann/status/1?s=20&amp;t=x");
    }

    #[test]
    fn url_components() {
        assert_eq!(url_component("Acme Air & Co/x"), "Acme%20Air%20%26%20Co%2Fx");
    }
}
