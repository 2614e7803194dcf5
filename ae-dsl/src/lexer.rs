//! Tokeniser for equation files: identifiers, numbers, punctuation, `#` comments.

use crate::error::{Error, Result, Span};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Num(f64),
    /// Punctuation, including the two-character operators `!=`, `<=`, `>=`, `<->`.
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

const PUNCTS: [&str; 18] = [
    "<->", "!=", "<=", ">=", "[", "]", "(", ")", ",", ";", "=", "+", "-", "*", "/", "^", "<", ">",
];

/// Splits `src` into tokens; the last token is always `Tok::Eof`.
pub fn lex(file: &str, src: &str) -> Result<Vec<Token>> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut line_start) = (0usize, 1usize, 0usize);
    let span_at = |start: usize, len: usize, line: usize, line_start: usize| Span {
        offset: start,
        len,
        line,
        col: src[line_start..start].chars().count() + 1,
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            i += 1;
            line += 1;
            line_start = i;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            tokens.push(Token {
                tok: Tok::Ident(src[start..i].to_string()),
                span: span_at(start, i - start, line, line_start),
            });
        } else if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    i = j;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let span = span_at(start, i - start, line, line_start);
            let text = &src[start..i];
            let value: f64 = text
                .parse()
                .map_err(|_| Error::new(file, span, format!("malformed number `{text}`")))?;
            tokens.push(Token {
                tok: Tok::Num(value),
                span,
            });
        } else if let Some(p) = PUNCTS.iter().find(|p| src[i..].starts_with(**p)) {
            tokens.push(Token {
                tok: Tok::Punct(p),
                span: span_at(i, p.len(), line, line_start),
            });
            i += p.len();
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(Error::new(
                file,
                span_at(i, ch.len_utf8(), line, line_start),
                format!("unexpected character `{ch}`"),
            ));
        }
    }
    tokens.push(Token {
        tok: Tok::Eof,
        span: span_at(bytes.len(), 0, line, line_start),
    });
    Ok(tokens)
}
