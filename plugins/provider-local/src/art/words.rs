//! Reading a prompt: lower-cased words, with negations ("no stars", "without clouds") and
//! the negative prompt collected separately.

/// Words that negate the word after them inside the prompt.
const NEGATORS: &[&str] = &["no", "without", "not", "never", "minus", "zero", "sans"];
/// Words skipped between a negator and what it negates ("no more stars", "without any sun").
const FILLERS: &[&str] = &["any", "the", "a", "an", "more", "of", "visible", "single"];

/// The words of a request, split into wanted and unwanted.
#[derive(Clone, Debug, Default)]
pub struct Words {
    wanted: Vec<String>,
    unwanted: Vec<String>,
}

/// Lower-case words of `text`, split on anything that is not a letter or digit.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_lowercase)
}

/// The singular-ish form used for matching: "stars" → "star", but "glass" stays.
fn stem(word: &str) -> &str {
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") {
        &word[..word.len() - 1]
    } else {
        word
    }
}

impl Words {
    /// Parse a prompt, an optional negative prompt and an optional style hint (whose words
    /// count as wanted).
    pub fn parse(prompt: &str, negative: Option<&str>, style: Option<&str>) -> Self {
        let mut words = Self::default();
        let mut negate = false;
        for token in tokens(prompt).chain(style.into_iter().flat_map(tokens)) {
            if NEGATORS.contains(&token.as_str()) {
                negate = true;
            } else if negate && FILLERS.contains(&token.as_str()) {
                // keep negating through filler words
            } else if negate {
                words.unwanted.push(stem(&token).to_string());
                negate = false;
            } else {
                words.wanted.push(stem(&token).to_string());
            }
        }
        words.unwanted.extend(negative.into_iter().flat_map(tokens).map(|t| stem(&t).to_string()));
        words
    }

    /// True when any of `keys` (singular forms) is wanted and none of them is unwanted.
    pub fn has(&self, keys: &[&str]) -> bool {
        self.mentions(keys) && !self.refuses(keys)
    }

    /// True when any of `keys` appears among the wanted words, negated or not.
    pub fn mentions(&self, keys: &[&str]) -> bool {
        self.wanted.iter().any(|w| keys.contains(&w.as_str()))
    }

    /// True when any of `keys` was negated or appears in the negative prompt.
    pub fn refuses(&self, keys: &[&str]) -> bool {
        self.unwanted.iter().any(|w| keys.contains(&w.as_str()))
    }

    /// Position of the first wanted word among `keys`, for "which was said first" choices.
    pub fn first_index(&self, keys: &[&str]) -> Option<usize> {
        self.wanted.iter().position(|w| keys.contains(&w.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negations_and_negative_prompt() {
        let w = Words::parse("Mountains at night, no stars, without any clouds", Some("blurry, moon"), None);
        assert!(w.has(&["mountain"]));
        assert!(w.has(&["night"]));
        assert!(!w.has(&["star"]));
        assert!(w.refuses(&["star"]));
        assert!(w.refuses(&["cloud"]));
        assert!(w.refuses(&["moon"]));
        assert!(!w.has(&["any"]));
    }

    #[test]
    fn style_hint_words_count() {
        let w = Words::parse("a fox", None, Some("flat vector"));
        assert!(w.has(&["vector"]));
        assert!(w.has(&["fox"]));
    }
}
