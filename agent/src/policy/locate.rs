//! Finds where a JSON path's value starts in a document, for error messages.
//!
//! serde reports positions only for syntax and type errors; rules checked
//! after parsing (duplicate ids, a query that does not prepare) still deserve
//! a line number, so this small scanner walks the text along the path.

/// One step of a path: an object key or an array index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Option<Vec<Step>> {
    let rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                i = start;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                steps.push(Step::Key(rest[start..i].to_string()));
            }
            b'[' => {
                let end = rest[i..].find(']')? + i;
                let inner = &rest[i + 1..end];
                if let Ok(n) = inner.parse() {
                    steps.push(Step::Index(n));
                } else {
                    steps.push(Step::Key(
                        inner.trim_matches(|c| c == '\'' || c == '"').to_string(),
                    ));
                }
                i = end + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw = std::str::from_utf8(&self.s[start..self.i]).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                _ => self.i += 1,
            }
        }
        None
    }

    /// Skips one value of any kind.
    fn skip(&mut self) -> Option<()> {
        self.ws();
        match *self.s.get(self.i)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                while self.i < self.s.len() {
                    match self.s[self.i] {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                None
            }
            _ => {
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b'}' | b']') {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// Moves to the start of the value at `step` inside the value here.
    fn enter(&mut self, step: &Step) -> Option<()> {
        self.ws();
        match (self.s.get(self.i)?, step) {
            (b'{', Step::Key(k)) => {
                self.i += 1;
                loop {
                    self.ws();
                    if self.s.get(self.i)? == &b'}' {
                        return None;
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.s.get(self.i)? != &b':' {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    if &key == k {
                        return Some(());
                    }
                    self.skip()?;
                    self.ws();
                    if self.s.get(self.i)? == &b',' {
                        self.i += 1;
                    }
                }
            }
            (b'[', Step::Index(n)) => {
                self.i += 1;
                for _ in 0..*n {
                    self.skip()?;
                    self.ws();
                    if self.s.get(self.i)? != &b',' {
                        return None;
                    }
                    self.i += 1;
                }
                self.ws();
                Some(())
            }
            _ => None,
        }
    }
}

/// The 1-based line and column where the value at `path` starts.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let steps = parse_path(path)?;
    let mut sc = Scanner {
        s: text.as_bytes(),
        i: 0,
    };
    for step in &steps {
        sc.enter(step)?;
    }
    sc.ws();
    let before = &text.as_bytes()[..sc.i];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = sc.i
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn finds_nested_values() {
        let text = "{\n  \"a\": [1, {\"b\": \"x,]\"},\n   {\"c\": {\"d\": true}}]\n}";
        assert_eq!(locate(text, "$.a[0]"), Some((2, 9)));
        assert_eq!(locate(text, "$.a[1].b"), Some((2, 18)));
        assert_eq!(locate(text, "$.a[2].c.d"), Some((3, 16)));
        assert_eq!(locate(text, "$.a[3]"), None);
        assert_eq!(locate(text, "$"), Some((1, 1)));
    }
}
