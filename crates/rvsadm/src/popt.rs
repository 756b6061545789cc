//! A command-line lexer that behaves like the popt library ipvsadm is built with:
//! long options only with `--` (exact names, `--name=value` or `--name value`), short
//! options clustered (`-Lnc`) with an argument glued (`-t1.2.3.4:80`, `-s=rr`) or taken from
//! the next word (even one starting with `-`), optional arguments taken only from a next
//! word not starting with `-`, non-options collected as leftovers, `--` ending options.

/// Whether an option takes an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgMode {
    /// A flag.
    None,
    /// A mandatory argument.
    Required,
    /// An optional argument (`-p [timeout]`).
    Optional,
}

/// One entry of an option table.
#[derive(Debug, Clone, Copy)]
pub struct OptDef<T> {
    /// Long name (without dashes).
    pub long: Option<&'static str>,
    /// Short letter.
    pub short: Option<char>,
    /// Argument mode.
    pub mode: ArgMode,
    /// What the caller receives.
    pub id: T,
}

/// popt's error kinds, with the text `poptStrerror` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexError {
    /// `unknown option`.
    BadOpt,
    /// `missing argument`.
    NoArg,
    /// `option does not take an argument`.
    UnwantedArg,
}

impl LexError {
    /// popt's message.
    pub fn reason(self) -> &'static str {
        match self {
            LexError::BadOpt => "unknown option",
            LexError::NoArg => "missing argument",
            LexError::UnwantedArg => "option does not take an argument",
        }
    }
}

/// An option found on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    /// Which option.
    pub id: T,
    /// Its argument, if it takes one and one was given.
    pub arg: Option<String>,
}

/// The lexer over `argv[1..]`.
pub struct Lexer<'a, T> {
    words: &'a [String],
    defs: &'a [OptDef<T>],
    next: usize,
    /// (word index, byte offset) of the rest of a short-option cluster.
    cluster: Option<(usize, usize)>,
    rest_are_args: bool,
    leftovers: Vec<String>,
}

impl<'a, T: Copy> Lexer<'a, T> {
    /// A lexer over `words` (without the program name).
    pub fn new(words: &'a [String], defs: &'a [OptDef<T>]) -> Self {
        Lexer { words, defs, next: 0, cluster: None, rest_are_args: false, leftovers: Vec::new() }
    }

    /// The word consumed last (popt's `poptBadOption`), used in error messages.
    pub fn last_word(&self) -> &str {
        self.next.checked_sub(1).and_then(|i| self.words.get(i)).map_or("", String::as_str)
    }

    /// Non-option words in order.
    pub fn leftovers(&self) -> &[String] {
        &self.leftovers
    }

    fn word(&self, i: usize) -> &'a str {
        self.words.get(i).map_or("", String::as_str)
    }

    /// The next option, `Ok(None)` at the end.
    pub fn next_opt(&mut self) -> Result<Option<Found<T>>, LexError> {
        loop {
            let mut long_arg: Option<String> = None;
            let def: OptDef<T>;
            if let Some((wi, off)) = self.cluster {
                let word = self.word(wi);
                let rest = word.get(off..).unwrap_or("");
                let Some(c) = rest.chars().next() else {
                    self.cluster = None;
                    return Err(LexError::BadOpt);
                };
                let Some(found) = self.defs.iter().find(|d| d.short == Some(c)) else {
                    self.cluster = None;
                    return Err(LexError::BadOpt);
                };
                def = *found;
                let mut after = off + c.len_utf8();
                if after < word.len() {
                    if word.get(after..).is_some_and(|r| r.starts_with('=')) {
                        after += 1;
                    }
                    self.cluster = Some((wi, after));
                } else {
                    self.cluster = None;
                }
            } else {
                if self.next >= self.words.len() {
                    return Ok(None);
                }
                let word = self.word(self.next);
                self.next += 1;
                if self.rest_are_args || !word.starts_with('-') || word == "-" {
                    self.leftovers.push(word.to_string());
                    continue;
                }
                if word == "--" {
                    self.rest_are_args = true;
                    continue;
                }
                if let Some(body) = word.strip_prefix("--") {
                    let (name, arg) = match body.split_once('=') {
                        Some((n, a)) => (n, Some(a.to_string())),
                        None => (body, None),
                    };
                    let Some(found) = self.defs.iter().find(|d| d.long == Some(name)) else {
                        return Err(LexError::BadOpt);
                    };
                    def = *found;
                    long_arg = arg;
                } else {
                    self.cluster = Some((self.next - 1, 1));
                    continue;
                }
            }
            return self.take_argument(def, long_arg).map(Some);
        }
    }

    fn take_argument(&mut self, def: OptDef<T>, long_arg: Option<String>) -> Result<Found<T>, LexError> {
        match def.mode {
            ArgMode::None => {
                let glued_eq = self
                    .cluster
                    .and_then(|(wi, off)| self.word(wi).get(off..))
                    .is_some_and(|rest| rest.starts_with('='));
                if long_arg.is_some() || glued_eq {
                    self.cluster = None;
                    return Err(LexError::UnwantedArg);
                }
                Ok(Found { id: def.id, arg: None })
            }
            ArgMode::Required | ArgMode::Optional => {
                if let Some(a) = long_arg {
                    return Ok(Found { id: def.id, arg: Some(a) });
                }
                if let Some((wi, off)) = self.cluster.take() {
                    let rest = self.word(wi).get(off..).unwrap_or("");
                    let rest = rest.strip_prefix('=').unwrap_or(rest);
                    return Ok(Found { id: def.id, arg: Some(rest.to_string()) });
                }
                if self.next >= self.words.len() {
                    return match def.mode {
                        ArgMode::Optional => Ok(Found { id: def.id, arg: None }),
                        _ => Err(LexError::NoArg),
                    };
                }
                let next = self.word(self.next);
                if def.mode == ArgMode::Optional && next.starts_with('-') {
                    return Ok(Found { id: def.id, arg: None });
                }
                self.next += 1;
                Ok(Found { id: def.id, arg: Some(next.to_string()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &[OptDef<char>] = &[
        OptDef { long: Some("list"), short: Some('L'), mode: ArgMode::None, id: 'L' },
        OptDef { long: Some("numeric"), short: Some('n'), mode: ArgMode::None, id: 'n' },
        OptDef { long: Some("tcp-service"), short: Some('t'), mode: ArgMode::Required, id: 't' },
        OptDef { long: Some("persistent"), short: Some('p'), mode: ArgMode::Optional, id: 'p' },
    ];

    /// One lexer step: the option and its argument, or the error and the word it names.
    type Step = Result<(char, Option<String>), (LexError, String)>;

    fn lex(args: &[&str]) -> (Vec<Step>, Vec<String>) {
        let words: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut lx = Lexer::new(&words, DEFS);
        let mut out = Vec::new();
        loop {
            match lx.next_opt() {
                Ok(Some(f)) => out.push(Ok((f.id, f.arg))),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err((e, lx.last_word().to_string())));
                    break;
                }
            }
        }
        (out, lx.leftovers().to_vec())
    }

    #[test]
    fn clusters_glued_and_separate_arguments() {
        let (o, _) = lex(&["-Ln", "-t1.2.3.4:80", "-t", "-x", "--tcp-service=a", "--tcp-service", "b"]);
        assert_eq!(
            o,
            vec![
                Ok(('L', None)),
                Ok(('n', None)),
                Ok(('t', Some("1.2.3.4:80".into()))),
                Ok(('t', Some("-x".into()))),
                Ok(('t', Some("a".into()))),
                Ok(('t', Some("b".into()))),
            ]
        );
    }

    #[test]
    fn optional_argument_skips_dash_words() {
        let (o, left) = lex(&["-p", "-n", "-p", "300", "-p"]);
        assert_eq!(o, vec![Ok(('p', None)), Ok(('n', None)), Ok(('p', Some("300".into()))), Ok(('p', None))]);
        assert!(left.is_empty());
    }

    #[test]
    fn errors_and_leftovers() {
        assert_eq!(lex(&["--bogus"]).0, vec![Err((LexError::BadOpt, "--bogus".into()))]);
        assert_eq!(lex(&["-Lq"]).0, vec![Ok(('L', None)), Err((LexError::BadOpt, "-Lq".into()))]);
        assert_eq!(lex(&["-t"]).0, vec![Err((LexError::NoArg, "-t".into()))]);
        assert_eq!(lex(&["--list=x"]).0, vec![Err((LexError::UnwantedArg, "--list=x".into()))]);
        // Single-dash long names are short clusters in popt: -list = -l -i ... ('l' unknown here).
        assert_eq!(lex(&["-list"]).0, vec![Err((LexError::BadOpt, "-list".into()))]);
        let (o, left) = lex(&["a", "-L", "-", "--", "-n"]);
        assert_eq!(o, vec![Ok(('L', None))]);
        assert_eq!(left, vec!["a".to_string(), "-".into(), "-n".into()]);
    }
}
