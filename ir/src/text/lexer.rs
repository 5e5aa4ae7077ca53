//! A character cursor over the text form with the small scanners the parser is built from.
//!
//! The format is line oriented: [`Cursor::skip_blanks`] skips spaces, tabs and `;` comments but
//! stops at a newline, and the parser ends every statement with [`Cursor::expect_eol`].

use super::{is_ident_continue, is_ident_start, ParseError};

/// A position in the source and the scanners that advance it.
pub(crate) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

/// The result type of the parser.
pub(crate) type PResult<T> = Result<T, ParseError>;

impl<'a> Cursor<'a> {
    /// A cursor at the start of `src`.
    pub(crate) fn new(src: &'a str) -> Cursor<'a> {
        Cursor { src, pos: 0 }
    }

    /// The byte offset of the cursor.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next character, not consumed.
    pub(crate) fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    /// Consumes and returns the next character.
    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// A parse error at byte offset `pos`.
    pub(crate) fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        let before = &self.src[..pos.min(self.src.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        ParseError {
            line,
            column: before[line_start..].chars().count() + 1,
            message: message.into(),
        }
    }

    /// A parse error at the cursor.
    pub(crate) fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    /// A description of what is at the cursor, for error messages.
    pub(crate) fn found(&self) -> String {
        match self.peek() {
            None => "end of input".to_string(),
            Some('\n') => "end of line".to_string(),
            Some(c) => format!("`{c}`"),
        }
    }

    /// Skips spaces, tabs, carriage returns and a `;` comment, stopping at a newline.
    pub(crate) fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => {
                    self.bump();
                }
                ';' => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
    }

    /// Skips blanks, comments and newlines.
    pub(crate) fn skip_blank_lines(&mut self) {
        loop {
            self.skip_blanks();
            if self.peek() == Some('\n') {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// After blanks, the next character (not consumed).
    pub(crate) fn peek_token(&mut self) -> Option<char> {
        self.skip_blanks();
        self.peek()
    }

    /// After blanks, consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek_token() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// After blanks, consumes `c` or fails naming `what` the parser was reading.
    pub(crate) fn expect(&mut self, c: char, what: &str) -> PResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{c}` {what}, found {}", self.found())))
        }
    }

    /// After blanks, consumes `->`.
    pub(crate) fn expect_arrow(&mut self) -> PResult<()> {
        self.skip_blanks();
        if self.src[self.pos..].starts_with("->") {
            self.pos += 2;
            Ok(())
        } else {
            Err(self.error(format!(
                "expected `->` after the graph inputs, found {}",
                self.found()
            )))
        }
    }

    /// After blanks, requires the end of the line (or of the input) and consumes the newline.
    pub(crate) fn expect_eol(&mut self) -> PResult<()> {
        match self.peek_token() {
            None => Ok(()),
            Some('\n') => {
                self.bump();
                Ok(())
            }
            Some(_) => Err(self.error(format!("expected end of line, found {}", self.found()))),
        }
    }

    /// After blanks, an identifier `[A-Za-z_][A-Za-z0-9_.]*` if one is next.
    pub(crate) fn ident(&mut self) -> Option<&'a str> {
        self.skip_blanks();
        let start = self.pos;
        match self.peek() {
            Some(c) if is_ident_start(c) => {
                self.bump();
            }
            _ => return None,
        }
        while self.peek().is_some_and(is_ident_continue) {
            self.bump();
        }
        Some(&self.src[start..self.pos])
    }

    /// After blanks, a run of ASCII digits if one is next.
    pub(crate) fn digits(&mut self) -> Option<&'a str> {
        self.skip_blanks();
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        (self.pos > start).then(|| &self.src[start..self.pos])
    }

    /// After blanks, a run of characters up to whitespace or one of `stops` (may be empty).
    pub(crate) fn word(&mut self, stops: &[char]) -> &'a str {
        self.skip_blanks();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !c.is_whitespace() && !stops.contains(&c))
        {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    /// A double-quoted string at the cursor (after blanks), with its escapes decoded.
    pub(crate) fn string(&mut self) -> PResult<String> {
        self.skip_blanks();
        let start = self.pos;
        if self.peek() != Some('"') {
            return Err(self.error(format!("expected a string, found {}", self.found())));
        }
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') => {
                    return Err(self.error_at(start, "unterminated string"));
                }
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('u') => out.push(self.unicode_escape(at)?),
                    _ => return Err(self.error_at(at, "unknown escape in string")),
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// The `{hex}` part of a `\u{hex}` escape that started at `at`.
    fn unicode_escape(&mut self, at: usize) -> PResult<char> {
        if self.bump() != Some('{') {
            return Err(self.error_at(at, "expected `\\u{hex}` in string"));
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.bump();
        }
        let hex = &self.src[start..self.pos];
        if self.bump() != Some('}') {
            return Err(self.error_at(at, "expected `\\u{hex}` in string"));
        }
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error_at(at, format!("invalid character code `{hex}` in string")))
    }

    /// The raw text of one attribute value: a quoted string, a bracketed list, or a run of
    /// characters up to `,`, `}` or whitespace.
    pub(crate) fn attr_value(&mut self) -> PResult<&'a str> {
        self.skip_blanks();
        let start = self.pos;
        match self.peek() {
            Some('"') => {
                self.string()?;
            }
            Some('[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        None | Some('\n') => {
                            return Err(self.error_at(start, "unterminated list `[`"));
                        }
                        Some('"') => {
                            self.string()?;
                        }
                        Some(c) => {
                            self.bump();
                            if c == '[' {
                                depth += 1;
                            } else if c == ']' {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            _ => {
                self.word(&[',', '}']);
            }
        }
        if self.pos == start {
            return Err(self.error(format!(
                "expected an attribute value, found {}",
                self.found()
            )));
        }
        Ok(&self.src[start..self.pos])
    }
}
