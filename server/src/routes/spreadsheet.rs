//! CSV cells that a spreadsheet will not run: text exported from logs (prompts, messages,
//! user ids, breakdown values) is written by whoever sends data, and a cell that begins with
//! `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice and Google
//! Sheets as a formula (CSV injection). As OWASP recommends, such a text cell gets a leading
//! single quote. Only text columns go through here: numbers (a feedback of -1) stay numbers.

use std::borrow::Cow;

/// The text as a CSV cell that no spreadsheet evaluates.
pub fn text_cell(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::text_cell;

    #[test]
    fn formula_starts_are_quoted_and_other_text_is_kept() {
        for s in ["=HYPERLINK(\"http://evil.example\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"] {
            assert_eq!(text_cell(s), format!("'{s}"), "{s:?}");
        }
        for s in ["", "plain", "a=b", " =1", "{\"team\":\"a\"}", "'quoted"] {
            assert_eq!(text_cell(s), s, "{s:?}");
        }
    }
}
