//! Small text helpers providers share: prompts for APIs without a negative prompt, and
//! upstream text cut down for stage labels and error messages.

/// The prompt with the negative prompt appended as an "Avoid: …" sentence, for APIs that have
/// no negative prompt of their own. A blank negative prompt leaves the prompt as it is.
pub fn prompt_with_avoid(prompt: &str, negative: Option<&str>) -> String {
    match negative.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{}\n\nAvoid: {n}", prompt.trim_end()),
        None => prompt.to_string(),
    }
}

/// `text` on one line (runs of whitespace become one space), at most `max` characters, with
/// "…" when cut: for progress stages made of upstream log lines.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let cut: String = line.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// The first `max` characters of `text`, with "…" when cut: for upstream messages quoted in
/// errors.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_lines_and_clips() {
        assert_eq!(prompt_with_avoid("cat", Some(" dogs ")), "cat\n\nAvoid: dogs");
        assert_eq!(prompt_with_avoid("cat", Some(" ")), "cat");
        assert_eq!(prompt_with_avoid("cat", None), "cat");
        assert_eq!(one_line("a  b\nc", 10), "a b c");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hi", 2), "hi");
    }
}
