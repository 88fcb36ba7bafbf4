//! The built-in bot's intent matcher: a confidence between 0 and 1 for each intent, from its
//! example phrases, with no external service.
//!
//! Text is normalised (case, punctuation, German umlauts and ß), split into words, and each
//! example is compared with the message as a bag of words, so word order does not matter.
//! Words match exactly, by a shared stem that differs only in its endings (`price` /
//! `prices` / `pricing`, `mitarbeiter` / `mitarbeiterin`), as part of a compound (`preis` in
//! `preisliste`) or within a small edit distance of the known word (`opning` / `opening`: one
//! edit for words of five letters or more, two for eight or more). A word's weight is lower the more intents
//! use it and lowest for the common little words of each language, so `you` or `mit` decide
//! nothing. An example's score is the weighted share of its words found in the message,
//! slightly lowered by the share of the message's own words it leaves unexplained.

/// One intent's best score for a message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Index of the intent, in configuration order.
    pub intent: usize,
    /// Confidence, 0–1.
    pub score: f32,
    /// The language of the example that scored best (`None`: an example for any language).
    pub locale: Option<usize>,
}

struct Example {
    intent: usize,
    locale: Option<usize>,
    words: Vec<(String, f32)>,
}

/// Examples prepared for matching.
pub struct Matcher {
    examples: Vec<Example>,
    intents: usize,
}

/// Little words that carry no intent, in English and German (weighed low, never ignored).
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "am",
    "an",
    "and",
    "any",
    "are",
    "at",
    "be",
    "can",
    "could",
    "do",
    "does",
    "for",
    "from",
    "have",
    "i",
    "im",
    "in",
    "is",
    "it",
    "its",
    "just",
    "me",
    "my",
    "of",
    "on",
    "or",
    "our",
    "please",
    "quick",
    "so",
    "some",
    "that",
    "the",
    "there",
    "this",
    "to",
    "u",
    "want",
    "we",
    "what",
    "with",
    "would",
    "you",
    "your",
    "ok",
    "okay",
    "pls",
    "plz",
    "ich",
    "du",
    "sie",
    "wir",
    "es",
    "ein",
    "eine",
    "einen",
    "einem",
    "einer",
    "der",
    "die",
    "das",
    "den",
    "dem",
    "des",
    "und",
    "oder",
    "mit",
    "zu",
    "im",
    "in",
    "am",
    "an",
    "auf",
    "bei",
    "fur",
    "fuer",
    "von",
    "vom",
    "ist",
    "sind",
    "bin",
    "hab",
    "habe",
    "haben",
    "kann",
    "konnen",
    "koennen",
    "mochte",
    "moechte",
    "will",
    "wie",
    "was",
    "mir",
    "mich",
    "ihr",
    "ihre",
    "ihnen",
    "bitte",
    "mal",
    "doch",
    "noch",
    "gerne",
    "gern",
    "denn",
    "ja",
    "eigentlich",
];

const STOPWORD_WEIGHT: f32 = 0.15;

/// Lower-case words with umlauts and ß spelled out (`Öffnungszeiten` → `oeffnungszeiten`)
/// and other accents dropped.
pub fn words(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut word = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let folded: &str = match c {
            'ä' => "ae",
            'ö' => "oe",
            'ü' => "ue",
            'ß' => "ss",
            'à' | 'á' | 'â' | 'ã' | 'å' => "a",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ò' | 'ó' | 'ô' | 'õ' => "o",
            'ù' | 'ú' | 'û' => "u",
            'ç' => "c",
            'ñ' => "n",
            '\'' | '’' => continue,
            _ => {
                if c.is_alphanumeric() {
                    word.push(c);
                } else if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                continue;
            }
        };
        word.push_str(folded);
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn is_stopword(w: &str) -> bool {
    STOPWORDS.contains(&w)
}

/// Damerau–Levenshtein distance (adjacent swaps count once), or `None` above `max`.
fn distance(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        let mut row_min = usize::MAX;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
    }
    let v = d[a.len() * w + b.len()];
    (v <= max).then_some(v)
}

/// Inflection endings a shared stem may differ by, in English and German.
const SUFFIXES: &[&str] = &[
    "", "s", "es", "e", "ed", "d", "ing", "er", "ers", "ly", "ion", "ions", "en", "n", "in",
    "innen", "ung", "ungen", "t", "te", "ten", "st", "et", "em", "ern",
];

/// How alike a typed word is to a known one: 1 the same, less for a shared stem, a compound
/// or a typo, 0 unrelated. Typos are forgiven by the known word's length: none up to four
/// letters (`moin` is not `main`), one up to seven, two beyond.
pub fn similarity(known: &str, typed: &str) -> f32 {
    let (a, b) = (known, typed);
    if a == b {
        return 1.0;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let short_len = short.chars().count();
    // A shared stem that differs by endings only: `open`/`opening`, `price`/`pricing`,
    // `mitarbeiter`/`mitarbeiterin` (but not `good`/`goodbye`).
    let common = short
        .char_indices()
        .zip(long.chars())
        .take_while(|((_, x), y)| x == y)
        .last()
        .map_or(0, |((i, x), _)| i + x.len_utf8());
    if common >= 4 && SUFFIXES.contains(&&short[common..]) && SUFFIXES.contains(&&long[common..]) {
        return 0.9;
    }
    // Part of a compound: `preis` in `preisliste`, `zeiten` in `servicezeiten`.
    if short_len >= 5 && (long.starts_with(short) || long.ends_with(short)) {
        return 0.8;
    }
    let max = match a.chars().count() {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    };
    match distance(a, b, max) {
        Some(0) => 1.0,
        Some(1) => 0.85,
        Some(_) => 0.7,
        None => 0.0,
    }
}

impl Matcher {
    /// Prepares `(intent, locale, phrase)` examples for `intents` intents.
    pub fn new(intents: usize, examples: &[(usize, Option<usize>, &str)]) -> Self {
        // Document frequency of each word across intents.
        let mut df: std::collections::HashMap<String, std::collections::BTreeSet<usize>> =
            Default::default();
        for (intent, _, phrase) in examples {
            for w in words(phrase) {
                df.entry(w).or_default().insert(*intent);
            }
        }
        let n = intents.max(1) as f32;
        let weight = |w: &str| {
            if is_stopword(w) {
                STOPWORD_WEIGHT
            } else {
                let f = df.get(w).map_or(1, |s| s.len()) as f32;
                1.0 + (n / f).ln() / n.ln().max(1.0)
            }
        };
        Self {
            examples: examples
                .iter()
                .map(|(intent, locale, phrase)| Example {
                    intent: *intent,
                    locale: *locale,
                    words: words(phrase)
                        .into_iter()
                        .map(|w| {
                            let wt = weight(&w);
                            (w, wt)
                        })
                        .collect(),
                })
                .filter(|e| !e.words.is_empty())
                .collect(),
            intents,
        }
    }

    /// Every intent's best score for `message`, best first (equal scores in configuration
    /// order; within an intent, an example in the `prefer`red language wins a tie, as `hi`
    /// is English and German); intents with no word in common are left out.
    pub fn rank(&self, message: &str, prefer: Option<usize>) -> Vec<Scored> {
        let msg = words(message);
        if msg.is_empty() {
            return vec![];
        }
        // The message's own words that carry meaning, and which of them an example explains.
        let content: Vec<bool> = msg.iter().map(|w| !is_stopword(w)).collect();
        let contents = content.iter().filter(|c| **c).count();
        let mut best: Vec<Option<Scored>> = vec![None; self.intents];
        for ex in &self.examples {
            let (mut got, mut total) = (0.0f32, 0.0f32);
            let mut explained = vec![false; msg.len()];
            for (w, wt) in &ex.words {
                total += wt;
                let mut top = 0.0f32;
                for (k, m) in msg.iter().enumerate() {
                    let sim = similarity(w, m);
                    top = top.max(sim);
                    if sim > 0.0 && content[k] && !is_stopword(w) {
                        explained[k] = true;
                    }
                }
                got += wt * top;
            }
            if got <= 0.0 {
                continue;
            }
            let recall = got / total;
            let coverage = if contents == 0 {
                1.0
            } else {
                explained.iter().filter(|e| **e).count() as f32 / contents as f32
            };
            let score = recall * (0.75 + 0.25 * coverage);
            let slot = &mut best[ex.intent];
            if slot.is_none_or(|s| {
                score > s.score || (score == s.score && s.locale != prefer && ex.locale == prefer)
            }) {
                *slot = Some(Scored {
                    intent: ex.intent,
                    score,
                    locale: ex.locale,
                });
            }
        }
        let mut out: Vec<Scored> = best.into_iter().flatten().collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.intent.cmp(&b.intent)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded() {
        assert_eq!(
            words("Öffnungszeiten?! Grüß Gott, it's 9"),
            ["oeffnungszeiten", "gruess", "gott", "its", "9"]
        );
    }

    #[test]
    fn similar_words() {
        assert_eq!(similarity("hours", "hours"), 1.0);
        assert!(similarity("opening", "opning") > 0.8);
        assert!(similarity("price", "pirce") > 0.8, "a swap is one edit");
        assert!(similarity("hello", "helo") > 0.8);
        assert_eq!(
            similarity("moin", "main"),
            0.0,
            "short words forgive no typo"
        );
        assert!(similarity("pricing", "price") > 0.8);
        assert!(similarity("mitarbeiterin", "mitarbeiter") > 0.8);
        assert_eq!(
            similarity("hi", "his"),
            0.0,
            "short words must match exactly"
        );
        assert_eq!(similarity("human", "hours"), 0.0);
        assert_eq!(similarity("good", "goodbye"), 0.0, "not an ending");
        assert!(similarity("preis", "preisliste") > 0.7, "a compound");
    }

    #[test]
    fn word_order_case_and_punctuation_do_not_matter() {
        let m = Matcher::new(
            2,
            &[(0, None, "opening hours"), (1, None, "talk to a person")],
        );
        for msg in ["Hours of opening?", "OPENING HOURS!!!", "opning hours"] {
            assert_eq!(m.rank(msg, None)[0].intent, 0, "{msg}");
            assert!(m.rank(msg, None)[0].score > 0.8, "{msg}");
        }
        assert_eq!(m.rank("a person to talk to", None)[0].intent, 1);
        assert!(m.rank("quantum chromodynamics", None).is_empty());
    }
}
