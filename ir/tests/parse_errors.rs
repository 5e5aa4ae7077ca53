//! Parser error tests: each broken text fails with the exact `line:column: message`.

use sparsec_ir::parse;

/// A valid graph; the cases below break one line of it.
const BASE: &str = "\
graph @g(%x: f32[2]) -> (%y: f32[2]) {
  @w0 = const f32[2] [1.0, 2.0]
  %0 = add %x, @w0 : f32[2]
  %y = softmax %0 {axis=0} : f32[2] \"sm\"
  return %y
}
";

/// Parses `BASE` with `from` replaced by `to` and returns the error text.
fn error(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "`{from}` is not in the base text");
    match parse(&BASE.replacen(from, to, 1)) {
        Ok(_) => panic!("`{to}` parsed"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_base_text_parses() {
    assert!(parse(BASE).is_ok());
}

#[test]
fn unknown_op() {
    assert_eq!(error("add %x", "addd %x"), "3:8: unknown op `addd`");
}

#[test]
fn bad_attributes() {
    assert_eq!(
        error("{axis=0}", "{axis=zero}"),
        "4:20: attribute `axis` of `softmax`: expected an integer, found `zero`"
    );
    assert_eq!(
        error("{axis=0}", "{axis=0, bogus=1}"),
        "4:28: op `softmax` has no attribute `bogus`"
    );
    assert_eq!(
        error("{axis=0}", "{axis=0, axis=1}"),
        "4:28: duplicate attribute `axis`"
    );
    assert_eq!(
        error("{axis=0}", "{axis=}"),
        "4:25: expected an attribute value, found `}`"
    );
    assert_eq!(
        error("{axis=0}", "{axis=0"),
        "4:27: expected `}` after the attributes, found `:`"
    );
}

#[test]
fn undefined_values() {
    assert_eq!(
        error("add %x, @w0", "add %x, @w1"),
        "3:16: use of undefined value `@w1`"
    );
    assert_eq!(
        error("softmax %0", "softmax %1"),
        "4:16: use of undefined value `%1`"
    );
    assert_eq!(
        error("return %y", "return %\"y z\""),
        "5:10: use of undefined value `%\"y z\"`"
    );
}

#[test]
fn syntax_errors() {
    assert_eq!(
        error("%0 = add", "%0 add"),
        "3:6: expected `=` after the results, found `a`"
    );
    assert_eq!(error("graph @g", "grahp @g"), "1:1: expected `graph`");
    assert_eq!(
        error("-> (", "> ("),
        "1:22: expected `->` after the graph inputs, found `>`"
    );
    assert_eq!(error("\"sm\"", "\"sm"), "4:37: unterminated string");
    assert_eq!(
        error("\"sm\"", "\"sm\" extra"),
        "4:42: expected end of line, found `e`"
    );
    assert_eq!(
        error("f32[2]) ->", "f32[2) ->"),
        "1:19: expected `]` after the dimensions, found `)`"
    );
    assert_eq!(
        error("  return %y\n", ""),
        "5:1: expected a statement or `return`, found `}`"
    );
    assert_eq!(
        error("\n}\n", "\n}\n}\n"),
        "7:1: expected end of input after the graph"
    );
    assert_eq!(
        error("%0 = add %x, @w0", "%0 = add %x @w0"),
        "3:15: expected end of line, found `@`"
    );
    assert_eq!(
        error("%x, @w0", "%x, _x"),
        "3:16: expected an operand (`%..`, `@..` or `_`)"
    );
}

#[test]
fn type_errors() {
    assert_eq!(
        error("%0 = add %x, @w0 : f32[2]", "%0 = add %x, @w0 : f31[2]"),
        "3:22: unknown element type `f31`"
    );
    assert_eq!(
        error("%0 = add %x, @w0 : f32[2]", "%0 = add %x, @w0"),
        "3:19: `add` defines 1 results but 0 types"
    );
    assert_eq!(
        error(
            "%0 = add %x, @w0 : f32[2]",
            "%0 = add %x, @w0 : f32[2], f32[2]"
        ),
        "3:20: `add` defines 1 results but 2 types"
    );
    assert_eq!(
        error("%y: f32[2]) {", "%y: f32[3]) {"),
        "1:26: output `%y` is declared as f32[3] but defined as f32[2]"
    );
    assert_eq!(
        error("return %y", "return %0"),
        "5:10: return value 0 is not the header's output `%y`"
    );
    assert_eq!(
        error("return %y", "return %y, %0"),
        "5:3: `return` has 2 values but the header declares 1 outputs"
    );
}

#[test]
fn redefinitions() {
    assert_eq!(
        error("%y = softmax", "%0 = softmax"),
        "4:3: value `%0` is defined twice"
    );
    assert_eq!(
        error("  %0 = add", "  @w0 = const f32[] [1.0]\n  %0 = add"),
        "3:3: weight `@w0` is defined twice"
    );
    assert_eq!(
        error("graph @g(%x: f32[2])", "graph @g(%x: f32[2], %x: f32[2])"),
        "1:22: graph input `%x` is declared twice"
    );
}

#[test]
fn constant_errors() {
    assert_eq!(
        error("[1.0, 2.0]", "[1.0]"),
        "2:22: constant `@w0` has 1 elements, its shape [2] needs 2"
    );
    assert_eq!(
        error("[1.0, 2.0]", "[1.0, two]"),
        "2:28: expected an element of type f32, found `two`"
    );
    assert_eq!(
        error("const f32[2] [1.0, 2.0]", "const i8[2] [1, 300]"),
        "2:25: expected an element of type i8, found `300`"
    );
    assert_eq!(
        error("const f32[2] [1.0, 2.0]", "const bool[2] [true, 1]"),
        "2:30: expected an element of type bool, found `1`"
    );
    assert_eq!(
        error("const f32[2]", "const f32[n]"),
        "2:15: weight `@w0` needs a known shape, found f32[n]"
    );
    assert_eq!(
        error("const f32[2]", "constant f32[2]"),
        "2:9: expected `weight` or `const`, found `constant`"
    );
}

#[test]
fn weight_fact_errors() {
    let line = "@w0 = const f32[2] [1.0, 2.0]";
    assert_eq!(
        error(line, "@w0 = weight f32[2] nnz=2 pattern=dense"),
        "2:9: weight `@w0` is missing `zero_rows`"
    );
    assert_eq!(
        error(line, "@w0 = weight f32[2] nnz=2 pattern=3:5x zero_rows=0"),
        "2:37: invalid value `3:5x` for `pattern`"
    );
    assert_eq!(
        error(line, "@w0 = weight f32[2] nnz=-1 pattern=dense zero_rows=0"),
        "2:27: invalid value `-1` for `nnz`"
    );
    assert_eq!(
        error(
            line,
            "@w0 = weight f32[2] nnz=2 nnz=2 pattern=dense zero_rows=0"
        ),
        "2:29: duplicate weight fact `nnz`"
    );
    assert_eq!(
        error(
            line,
            "@w0 = weight f32[2] nnz=2 numel=2 pattern=dense zero_rows=0"
        ),
        "2:29: unknown weight fact `numel`"
    );
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let text = BASE
        .replace("  %0 = add", "\n  ; a comment\n  %0 = add")
        .replace("\"sm\"", "\"sm\" ; trailing comment");
    let g = parse(&text).expect("parses");
    assert_eq!(
        sparsec_ir::print(&g),
        parse(BASE).map(|g| sparsec_ir::print(&g)).expect("base")
    );
}

#[test]
fn broken_texts_fail_without_panicking() {
    let texts = [
        include_str!("fixtures/names.sir"),
        include_str!("fixtures/consts.sir"),
        include_str!("fixtures/conv_block.sir"),
    ];
    for text in texts {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        for &(i, c) in &chars {
            // Every prefix and every text with one character removed parses or fails cleanly,
            // and what parses verifies without panicking and round-trips.
            let cut = format!("{}{}", &text[..i], &text[i + c.len_utf8()..]);
            for t in [&text[..i], cut.as_str()] {
                if let Ok(g) = parse(t) {
                    let _ = sparsec_ir::verify(&g);
                    let printed = sparsec_ir::print(&g);
                    let again = parse(&printed).map(|g| sparsec_ir::print(&g));
                    assert_eq!(again.as_ref(), Ok(&printed));
                }
            }
        }
    }
    assert_eq!(
        error("const f32[2]", "weight f32[99999999999,99999999999]")
            .split(": ")
            .nth(1),
        Some("weight `@w0` has too many elements")
    );
}
