//! The text form of a [`Graph`](crate::Graph): a stable printer ([`print()`]), its parser
//! ([`parse()`]) and the [`Numbering`] that names values and nodes the way the printer does.
//!
//! The form is modelled on Cranelift's textual IR. One line defines one weight or one node, values
//! are renumbered densely in topological order so snapshots do not churn, and weights print as
//! statistics (or, when they are small, as their full data):
//!
//! ```text
//! graph @digits_mlp(%x: f32[batch,64]) -> (%logits: f32[batch,10]) {
//!   @w0 = weight f32[1024,64] nnz=6554 density=0.1000 pattern=unstructured zero_rows=0 "fc1.weight"
//!   @w1 = weight f32[1024] nnz=1024 density=1.0000 pattern=dense zero_rows=0 "fc1.bias"
//!   @w2 = weight f32[10,512] nnz=2560 density=0.5000 pattern=2:4 zero_rows=0 "fc2.weight"
//!   %0 = gemm %x, @w0, @w1 {trans_b=1} : f32[batch,1024] "fc1"
//!   %1, %2 = split %0, _ {axis=1, num_outputs=2} : f32[batch,512], f32[batch,512] "split"
//!   %logits = gemm %1, @w2, _ {trans_b=1} : f32[batch,10] "fc2"
//!   return %logits
//! }
//! ```
//!
//! Grammar (`{x}` repeats, `[x]` is optional, one statement per line, `;` starts a comment):
//!
//! ```text
//! graph    := "graph" "@" name "(" [param {"," param}] ")" "->" "(" [param {"," param}] ")" "{"
//!             {statement} "return" [ref {"," ref}] "}"
//! param    := ref ":" type
//! statement:= "@" name "=" "weight" type {key "=" word} [string]
//!           | "@" name "=" "const" type "[" [word {"," word}] "]" [string]
//!           | ["%" label {"," "%" label} "="] op [operand {"," operand}]
//!             ["{" attr {"," attr} "}"] [":" type {"," type}] [string]
//! operand  := ref | "_"
//! ref      := "%" label | "@" name
//! label    := digits | name
//! name     := identifier | string
//! type     := dtype "[" [dim {"," dim}] "]"
//! dim      := digits | "?" | identifier | string
//! ```
//!
//! Naming rules:
//! - graph inputs and outputs print with their source names (`%x`); a name that is not an
//!   identifier (`[A-Za-z_][A-Za-z0-9_.]*`) is quoted (`%"gpu_0/data_0"`, `%"0"`), an empty name
//!   takes a number;
//! - every other node result is numbered `%0, %1, ...` in print order;
//! - weights are numbered `@w0, @w1, ...` in order of first use and keep their source name as the
//!   trailing string, as nodes do;
//! - an omitted optional operand prints `_`.
//!
//! A weight of more than [`CONST_MAX_ELEMENTS`] elements (or without data) prints as
//! `weight TYPE nnz=.. density=.. pattern=.. zero_rows=..`; `density` is derived and ignored when
//! parsed. A smaller weight with data prints its elements in full as `const TYPE [..]` (floats in
//! Rust's shortest round-trip form) and parses back with its data.
//!
//! Only values that are referenced or are graph inputs/outputs print; dead entries of the value
//! table are skipped. For every graph that passes [`crate::verify()`],
//! `print(&parse(&print(g))?) == print(g)`.

mod lexer;
mod numbering;
mod parse;
mod print;

pub use numbering::Numbering;
pub use parse::parse;
pub use print::print;

use thiserror::Error;

/// A weight with at most this many elements prints its data in full (`const`).
pub const CONST_MAX_ELEMENTS: usize = 16;

/// Why a text could not be parsed: a 1-based line and column (in characters) and a message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// True when `s` prints without quotes: `[A-Za-z_][A-Za-z0-9_.]*`.
pub fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_ident_start(c) => chars.all(is_ident_continue),
        _ => false,
    }
}

/// First character of an identifier.
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Later characters of an identifier.
pub(crate) fn is_ident_continue(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// `s` as a double-quoted string with `\"`, `\\`, `\n`, `\r`, `\t` and `\u{..}` escapes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` itself when it is an identifier, else [`quote`]d.
pub fn ident_or_quoted(s: &str) -> String {
    if is_ident(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_quoting() {
        assert!(is_ident("x"));
        assert!(is_ident("input.1"));
        assert!(is_ident("_"));
        assert!(!is_ident(""));
        assert!(!is_ident("0"));
        assert!(!is_ident("gpu_0/data_0"));
        assert_eq!(ident_or_quoted("fc1.weight"), "fc1.weight");
        assert_eq!(ident_or_quoted("a b"), "\"a b\"");
        assert_eq!(quote("q\"\\\n\t\u{1}"), "\"q\\\"\\\\\\n\\t\\u{1}\"");
    }

    #[test]
    fn the_module_doc_example_is_canonical() {
        let example = "\
graph @digits_mlp(%x: f32[batch,64]) -> (%logits: f32[batch,10]) {
  @w0 = weight f32[1024,64] nnz=6554 density=0.1000 pattern=unstructured zero_rows=0 \"fc1.weight\"
  @w1 = weight f32[1024] nnz=1024 density=1.0000 pattern=dense zero_rows=0 \"fc1.bias\"
  @w2 = weight f32[10,512] nnz=2560 density=0.5000 pattern=2:4 zero_rows=0 \"fc2.weight\"
  %0 = gemm %x, @w0, @w1 {trans_b=1} : f32[batch,1024] \"fc1\"
  %1, %2 = split %0, _ {axis=1, num_outputs=2} : f32[batch,512], f32[batch,512] \"split\"
  %logits = gemm %1, @w2, _ {trans_b=1} : f32[batch,10] \"fc2\"
  return %logits
}
";
        let g = parse(example).expect("the example parses");
        assert_eq!(print(&g), example);
    }
}
