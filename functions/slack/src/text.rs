//! Caller text made safe for Slack, then cut to a limit.
//!
//! [`Mrkdwn`] escapes first and cuts the *escaped* text, between whole pieces, so an
//! entity (`&amp;`, `&lt;`, `&gt;`) is never split and the result never exceeds its
//! limit. [`plain_text`] keeps text literal for `plain_text` objects (the header), where
//! Slack shows entities as written. Lengths are counted in characters (Unicode scalar
//! values), as Slack's Block Kit reference states its limits.

/// Appended where text was cut; it counts towards the limit.
pub const ELLIPSIS: char = '…';

/// Text safe to place in Slack mrkdwn: `&`, `<` and `>` are entities, so no link,
/// mention or `<!channel>` can be formed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrkdwn(String);

impl Mrkdwn {
    /// Escapes caller-supplied text, then cuts the escaped text to at most `max_chars`
    /// characters (`…` included). Control characters other than newline and tab, and
    /// bidirectional overrides, are dropped.
    pub fn escape(text: &str, max_chars: usize) -> Self {
        Mrkdwn(fit(escape_pieces(text), max_chars))
    }

    /// Text this crate wrote itself (labels, formatting around escaped parts).
    pub(crate) fn trusted(text: String) -> Self {
        Mrkdwn(text)
    }

    /// The same text cut to at most `max_chars` characters, between entities.
    pub fn cut(&self, max_chars: usize) -> Self {
        if self.chars() <= max_chars {
            return self.clone();
        }
        Mrkdwn(fit(escaped_pieces(&self.0), max_chars))
    }

    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Mrkdwn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Caller text for a `plain_text` object: shown literally (no entities), whitespace
/// controls (newline, tab, CR) become spaces, other control characters and
/// bidirectional overrides are removed, and the result is cut to `max_chars`.
pub fn plain_text(text: &str, max_chars: usize) -> String {
    let pieces = text.char_indices().filter_map(|(i, c)| match c {
        '\n' | '\r' | '\t' => Some(" "),
        c if hidden(c) => None,
        c => Some(&text[i..i + c.len_utf8()]),
    });
    fit(pieces, max_chars)
}

/// Characters no reader should get from a caller: controls (newline and tab are
/// handled by the caller) and the bidirectional embeddings, overrides and isolates
/// that can make text read differently from what it is.
fn hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Raw text as mrkdwn pieces: one per kept character, an entity for `&`, `<`, `>`.
fn escape_pieces(text: &str) -> impl Iterator<Item = &str> {
    text.char_indices().filter_map(|(i, c)| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\n' | '\t' => Some(&text[i..i + 1]),
        c if hidden(c) => None,
        c => Some(&text[i..i + c.len_utf8()]),
    })
}

/// Escaped text as pieces: an entity from `&` to its `;`, otherwise one character.
fn escaped_pieces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let end = match first {
            '&' => rest.find(';').map_or(rest.len(), |semi| semi + 1),
            c => c.len_utf8(),
        };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// The pieces joined, or, when they exceed `max_chars`, the longest run of whole
/// pieces that leaves room for `…`, followed by it.
fn fit<'a>(pieces: impl Iterator<Item = &'a str>, max_chars: usize) -> String {
    let mut out = String::new();
    let mut chars = 0;
    // Bytes of `out` that still leave room for the ellipsis.
    let mut keep = 0;
    for piece in pieces {
        let width = piece.chars().count();
        if chars + width > max_chars {
            out.truncate(keep);
            if max_chars > 0 {
                out.push(ELLIPSIS);
            }
            return out;
        }
        out.push_str(piece);
        chars += width;
        if chars < max_chars {
            keep = out.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `&` in escaped text starts a whole entity.
    fn entities_whole(text: &str) -> bool {
        text.match_indices('&').all(|(i, _)| {
            let tail = &text[i..];
            ["&amp;", "&lt;", "&gt;"]
                .iter()
                .any(|e| tail.starts_with(e))
        })
    }

    #[test]
    fn given_short_text_then_it_is_escaped_whole_without_an_ellipsis() {
        let out = Mrkdwn::escape("<!channel> & <@U1>", 100);
        assert_eq!(out.as_str(), "&lt;!channel&gt; &amp; &lt;@U1&gt;");
    }

    #[test]
    fn given_every_limit_then_the_cut_is_within_it_and_never_splits_an_entity() {
        let raw = "a<b&c>dé😀&&<<>>z";
        let whole = Mrkdwn::escape(raw, usize::MAX);
        for max in 0..=whole.chars() + 1 {
            let out = Mrkdwn::escape(raw, max);
            assert!(out.chars() <= max, "{max}: {out}");
            assert!(entities_whole(out.as_str()), "{max}: {out}");
            let kept = out.as_str().trim_end_matches(ELLIPSIS);
            assert!(whole.as_str().starts_with(kept), "{max}: {out}");
            let cut = max > 0 && max < whole.chars();
            assert_eq!(out.as_str().ends_with(ELLIPSIS), cut, "{max}: {out}");
        }
    }

    #[test]
    fn given_1800_angle_brackets_then_the_escaped_text_is_cut_not_the_raw_text() {
        let out = Mrkdwn::escape(&"<".repeat(1800), 2000);
        assert_eq!(out.chars(), 1997, "499 entities and the ellipsis");
        assert!(out.as_str().ends_with("&lt;…"), "{out}");
        assert!(entities_whole(out.as_str()));
    }

    #[test]
    fn given_escaped_text_then_cut_keeps_entities_whole() {
        let whole = Mrkdwn::escape("x&y<z>", usize::MAX);
        for max in 0..=whole.chars() {
            let out = whole.cut(max);
            assert!(out.chars() <= max, "{max}: {out}");
            assert!(entities_whole(out.as_str()), "{max}: {out}");
        }
        assert_eq!(whole.cut(3).as_str(), "x…");
    }

    #[test]
    fn given_controls_and_overrides_then_mrkdwn_drops_them_but_keeps_newlines() {
        let out = Mrkdwn::escape("a\u{0}b\u{202E}c\nd\te\u{7}", 100);
        assert_eq!(out.as_str(), "abc\nd\te");
    }

    #[test]
    fn given_entities_in_plain_text_then_they_stay_literal_and_controls_go() {
        let out = plain_text("Q&A <urgent>\r\n\u{1b}[31m\u{2066}x", 150);
        assert_eq!(out, "Q&A <urgent>  [31mx");
    }

    #[test]
    fn given_long_plain_text_then_it_is_cut_to_the_limit_with_an_ellipsis() {
        let out = plain_text(&"é".repeat(200), 150);
        assert_eq!(out.chars().count(), 150);
        assert!(out.ends_with("é…"), "{out}");
        assert_eq!(plain_text("exactly", 7), "exactly");
    }
}
