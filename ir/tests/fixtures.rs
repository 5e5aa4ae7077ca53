//! Data-driven tests over the hand-written graphs in `tests/fixtures/*.sir`: each parses, verifies,
//! prints to the committed snapshot, and prints identically after another parse.

use sparsec_ir::{parse, print, verify};

#[test]
fn fixtures_parse_verify_print_and_round_trip() {
    insta::glob!("fixtures/*.sir", |path| {
        let text = std::fs::read_to_string(path).expect("fixture is readable");
        let graph = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(errors) = verify(&graph) {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("{}:\n{}", path.display(), lines.join("\n"));
        }
        let printed = print(&graph);
        insta::assert_snapshot!(printed);
        let reparsed = parse(&printed).unwrap_or_else(|e| panic!("reparse: {e}\n{printed}"));
        assert_eq!(print(&reparsed), printed, "{}", path.display());
    });
}
