//! The parser: the text form back to a [`Graph`] (see the parent module for the grammar).
//!
//! Values must be defined before they are used, except in the header's output list, which is
//! checked against the `return` statement at the end. `weight` lines become weights known only
//! by their facts ([`Graph::add_weight_facts`]); `const` lines become weights with data
//! ([`Graph::add_weight`]), whose facts are recomputed from it.

use super::lexer::{Cursor, PResult};
use super::print::type_text;
use super::{ident_or_quoted, is_ident_start, ParseError};
use crate::graph::{Graph, ValueId};
use crate::op::Op;
use crate::sparsity::{Pattern, SparsityFacts};
use crate::tensor::{Tensor, TensorData};
use crate::types::{DType, Dim, TensorType};
use half::f16;
use std::collections::HashMap;
use std::str::FromStr;

/// Parses the text form of a graph.
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    Parser {
        cur: Cursor::new(text),
        graph: Graph::new(""),
        values: HashMap::new(),
        weights: HashMap::new(),
    }
    .graph()
}

/// The label of a `%` value: a number or a source name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Label {
    /// `%7`: a renumbered value without a source name.
    Num(u64),
    /// `%x` or `%"x y"`: a value with a source name.
    Name(String),
}

impl Label {
    /// The name the value gets in the graph (empty for a number).
    fn source_name(&self) -> String {
        match self {
            Label::Num(_) => String::new(),
            Label::Name(s) => s.clone(),
        }
    }
}

/// A reference to a value: `%label` or `@name`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ref {
    /// A node result or graph input.
    Value(Label),
    /// A weight.
    Weight(String),
}

impl Ref {
    /// The reference as printed.
    fn text(&self) -> String {
        match self {
            Ref::Value(Label::Num(n)) => format!("%{n}"),
            Ref::Value(Label::Name(s)) => format!("%{}", ident_or_quoted(s)),
            Ref::Weight(s) => format!("@{}", ident_or_quoted(s)),
        }
    }
}

/// An entry of the header's output list.
struct OutputDecl {
    pos: usize,
    r: Ref,
    ty: TensorType,
}

/// The parser state: the cursor, the graph built so far and the names defined so far.
struct Parser<'a> {
    cur: Cursor<'a>,
    graph: Graph,
    values: HashMap<Label, ValueId>,
    weights: HashMap<String, ValueId>,
}

impl<'a> Parser<'a> {
    /// `graph @name(inputs) -> (outputs) { statements return }`.
    fn graph(mut self) -> PResult<Graph> {
        self.cur.skip_blank_lines();
        let start = self.cur.pos();
        if self.cur.ident() != Some("graph") {
            return Err(self.cur.error_at(start, "expected `graph`"));
        }
        self.cur.expect('@', "before the graph name")?;
        self.graph.name = self.name("the graph name")?;
        self.cur.expect('(', "after the graph name")?;
        if !self.cur.eat(')') {
            loop {
                let pos = self.pos();
                let label = self.value_label()?;
                self.cur.expect(':', "after a graph input")?;
                let ty = self.ty()?;
                if self.values.contains_key(&label) {
                    let text = Ref::Value(label).text();
                    return Err(self
                        .cur
                        .error_at(pos, format!("graph input `{text}` is declared twice")));
                }
                let v = self.graph.add_input(label.source_name(), ty);
                self.values.insert(label, v);
                if !self.cur.eat(',') {
                    self.cur.expect(')', "after the graph inputs")?;
                    break;
                }
            }
        }
        self.cur.expect_arrow()?;
        self.cur.expect('(', "before the graph outputs")?;
        let mut decls = Vec::new();
        if !self.cur.eat(')') {
            loop {
                let pos = self.pos();
                let r = self.reference()?;
                self.cur.expect(':', "after a graph output")?;
                let ty = self.ty()?;
                decls.push(OutputDecl { pos, r, ty });
                if !self.cur.eat(',') {
                    self.cur.expect(')', "after the graph outputs")?;
                    break;
                }
            }
        }
        self.cur.expect('{', "to open the graph body")?;
        self.cur.expect_eol()?;
        loop {
            self.cur.skip_blank_lines();
            let pos = self.pos();
            match self.cur.peek() {
                Some('%') => self.results_statement()?,
                Some('@') => self.weight_statement()?,
                Some(c) if is_ident_start(c) => {
                    let word = self.cur.ident().unwrap_or_default();
                    if word == "return" {
                        self.return_statement(pos, &decls)?;
                        break;
                    }
                    self.op_statement(pos, word, Vec::new())?;
                }
                _ => {
                    return Err(self.cur.error(format!(
                        "expected a statement or `return`, found {}",
                        self.cur.found()
                    )))
                }
            }
        }
        self.cur.skip_blank_lines();
        self.cur.expect('}', "to close the graph body")?;
        self.cur.skip_blank_lines();
        if self.cur.peek().is_some() {
            return Err(self.cur.error("expected end of input after the graph"));
        }
        Ok(self.graph)
    }

    /// The byte offset of the next token.
    fn pos(&mut self) -> usize {
        self.cur.skip_blanks();
        self.cur.pos()
    }

    /// An identifier or a quoted string.
    fn name(&mut self, what: &str) -> PResult<String> {
        if self.cur.peek_token() == Some('"') {
            return self.cur.string();
        }
        match self.cur.ident() {
            Some(s) => Ok(s.to_string()),
            None => Err(self
                .cur
                .error(format!("expected {what}, found {}", self.cur.found()))),
        }
    }

    /// `%7`, `%x` or `%"x y"`.
    fn value_label(&mut self) -> PResult<Label> {
        self.cur.expect('%', "before a value name")?;
        match self.cur.peek() {
            Some(c) if c.is_ascii_digit() => {
                let pos = self.cur.pos();
                let digits = self.cur.digits().unwrap_or_default();
                let n = digits.parse().map_err(|_| {
                    self.cur
                        .error_at(pos, format!("value number `{digits}` is too large"))
                })?;
                Ok(Label::Num(n))
            }
            Some('"') => Ok(Label::Name(self.cur.string()?)),
            Some(c) if is_ident_start(c) => Ok(Label::Name(self.name("a value name")?)),
            _ => Err(self.cur.error(format!(
                "expected a value name after `%`, found {}",
                self.cur.found()
            ))),
        }
    }

    /// `%label` or `@name`.
    fn reference(&mut self) -> PResult<Ref> {
        match self.cur.peek_token() {
            Some('%') => Ok(Ref::Value(self.value_label()?)),
            Some('@') => {
                self.cur.bump();
                match self.cur.peek() {
                    Some(c) if c == '"' || is_ident_start(c) => {
                        Ok(Ref::Weight(self.name("a weight name")?))
                    }
                    _ => Err(self.cur.error(format!(
                        "expected a weight name after `@`, found {}",
                        self.cur.found()
                    ))),
                }
            }
            _ => Err(self.cur.error(format!(
                "expected a value (`%..` or `@..`), found {}",
                self.cur.found()
            ))),
        }
    }

    /// A reference to a value defined earlier.
    fn use_value(&mut self) -> PResult<ValueId> {
        let pos = self.pos();
        let r = self.reference()?;
        let found = match &r {
            Ref::Value(l) => self.values.get(l),
            Ref::Weight(w) => self.weights.get(w),
        };
        found.copied().ok_or_else(|| {
            self.cur
                .error_at(pos, format!("use of undefined value `{}`", r.text()))
        })
    }

    /// `dtype[dim, ...]`.
    fn ty(&mut self) -> PResult<TensorType> {
        let pos = self.pos();
        let name = self.cur.ident().ok_or_else(|| {
            self.cur
                .error(format!("expected a type, found {}", self.cur.found()))
        })?;
        let dtype = DType::from_name(name).ok_or_else(|| {
            self.cur
                .error_at(pos, format!("unknown element type `{name}`"))
        })?;
        self.cur.expect('[', "after the element type")?;
        let mut dims = Vec::new();
        if !self.cur.eat(']') {
            loop {
                dims.push(self.dim()?);
                if !self.cur.eat(',') {
                    self.cur.expect(']', "after the dimensions")?;
                    break;
                }
            }
        }
        Ok(TensorType { dtype, dims })
    }

    /// A known size, `?`, a symbol or a quoted symbol.
    fn dim(&mut self) -> PResult<Dim> {
        let pos = self.pos();
        match self.cur.peek() {
            Some(c) if c.is_ascii_digit() => {
                let digits = self.cur.digits().unwrap_or_default();
                digits.parse().map(Dim::Known).map_err(|_| {
                    self.cur
                        .error_at(pos, format!("dimension `{digits}` is too large"))
                })
            }
            Some('?') => {
                self.cur.bump();
                Ok(Dim::Sym("?".to_string()))
            }
            Some(c) if c == '"' || is_ident_start(c) => Ok(Dim::Sym(self.name("a dimension")?)),
            _ => Err(self
                .cur
                .error(format!("expected a dimension, found {}", self.cur.found()))),
        }
    }

    /// `%a, %b = op ...`: the result labels, then the op statement.
    fn results_statement(&mut self) -> PResult<()> {
        let mut results: Vec<Label> = Vec::new();
        loop {
            let pos = self.pos();
            let label = self.value_label()?;
            if self.values.contains_key(&label) || results.contains(&label) {
                let text = Ref::Value(label).text();
                return Err(self
                    .cur
                    .error_at(pos, format!("value `{text}` is defined twice")));
            }
            results.push(label);
            if !self.cur.eat(',') {
                break;
            }
        }
        self.cur.expect('=', "after the results")?;
        let pos = self.pos();
        let name = self.cur.ident().ok_or_else(|| {
            self.cur
                .error(format!("expected an op name, found {}", self.cur.found()))
        })?;
        self.op_statement(pos, name, results)
    }

    /// `op operands {attrs} : types "name"` after the op name at `op_pos`.
    fn op_statement(&mut self, op_pos: usize, name: &str, results: Vec<Label>) -> PResult<()> {
        if !Op::NAMES.contains(&name) {
            return Err(self.cur.error_at(op_pos, format!("unknown op `{name}`")));
        }
        let mut operands = Vec::new();
        if matches!(self.cur.peek_token(), Some('%' | '@' | '_')) {
            loop {
                operands.push(self.operand()?);
                if !self.cur.eat(',') {
                    break;
                }
            }
        }
        let mut attrs: Vec<(String, String)> = Vec::new();
        if self.cur.eat('{') && !self.cur.eat('}') {
            loop {
                let pos = self.pos();
                let key = self.cur.ident().ok_or_else(|| {
                    self.cur.error(format!(
                        "expected an attribute name, found {}",
                        self.cur.found()
                    ))
                })?;
                self.cur.expect('=', &format!("after attribute `{key}`"))?;
                let value = self.cur.attr_value()?;
                if attrs.iter().any(|(k, _)| k == key) {
                    return Err(self
                        .cur
                        .error_at(pos, format!("duplicate attribute `{key}`")));
                }
                let attr = vec![(key.to_string(), value.to_string())];
                Op::from_text(name, &attr).map_err(|e| self.cur.error_at(pos, e))?;
                attrs.extend(attr);
                if !self.cur.eat(',') {
                    self.cur.expect('}', "after the attributes")?;
                    break;
                }
            }
        }
        let op = Op::from_text(name, &attrs).map_err(|e| self.cur.error_at(op_pos, e))?;
        let types_pos = self.pos();
        let mut types = Vec::new();
        if self.cur.eat(':') {
            loop {
                types.push(self.ty()?);
                if !self.cur.eat(',') {
                    break;
                }
            }
        }
        let node_name = self.optional_string()?;
        self.cur.expect_eol()?;
        if types.len() != results.len() {
            return Err(self.cur.error_at(
                types_pos,
                format!(
                    "`{name}` defines {} results but {} types",
                    results.len(),
                    types.len()
                ),
            ));
        }
        let outputs = results.iter().map(Label::source_name).zip(types).collect();
        let node = self.graph.add_node(node_name, op, operands, outputs);
        let ids = self.graph.node(node).outputs.clone();
        self.values.extend(results.into_iter().zip(ids));
        Ok(())
    }

    /// An operand: a reference or `_` for an omitted one.
    fn operand(&mut self) -> PResult<Option<ValueId>> {
        if self.cur.peek_token() == Some('_') {
            let pos = self.cur.pos();
            return match self.cur.ident() {
                Some("_") => Ok(None),
                _ => Err(self
                    .cur
                    .error_at(pos, "expected an operand (`%..`, `@..` or `_`)")),
            };
        }
        self.use_value().map(Some)
    }

    /// A trailing quoted name, or the empty string.
    fn optional_string(&mut self) -> PResult<String> {
        if self.cur.peek_token() == Some('"') {
            self.cur.string()
        } else {
            Ok(String::new())
        }
    }

    /// `@name = weight TYPE facts "name"` or `@name = const TYPE [elements] "name"`.
    fn weight_statement(&mut self) -> PResult<()> {
        let pos = self.pos();
        let label = match self.reference()? {
            Ref::Weight(w) => w,
            Ref::Value(_) => return Err(self.cur.error_at(pos, "expected a weight name")),
        };
        let text = Ref::Weight(label.clone()).text();
        if self.weights.contains_key(&label) {
            return Err(self
                .cur
                .error_at(pos, format!("weight `{text}` is defined twice")));
        }
        self.cur.expect('=', "after the weight name")?;
        let kind_pos = self.pos();
        let kind = match self.cur.ident() {
            Some(k @ ("weight" | "const")) => k,
            other => {
                let found = other.map_or_else(|| self.cur.found(), |w| format!("`{w}`"));
                return Err(self.cur.error_at(
                    kind_pos,
                    format!("expected `weight` or `const`, found {found}"),
                ));
            }
        };
        let ty_pos = self.pos();
        let ty = self.ty()?;
        let shape = ty.shape().ok_or_else(|| {
            self.cur.error_at(
                ty_pos,
                format!(
                    "weight `{text}` needs a known shape, found {}",
                    type_text(&ty)
                ),
            )
        })?;
        let numel = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| {
                self.cur
                    .error_at(ty_pos, format!("weight `{text}` has too many elements"))
            })?;
        let v = if kind == "weight" {
            let facts = self.facts(kind_pos, &text, numel)?;
            let name = self.optional_string()?;
            self.graph.add_weight_facts(name, ty, facts)
        } else {
            let tensor = self.const_data(&text, ty.dtype, shape, numel)?;
            let name = self.optional_string()?;
            self.graph.add_weight(name, tensor)
        };
        self.cur.expect_eol()?;
        self.weights.insert(label, v);
        Ok(())
    }

    /// `nnz=N density=D pattern=P zero_rows=Z` (any order; `density` is optional and ignored).
    fn facts(&mut self, kind_pos: usize, text: &str, numel: usize) -> PResult<SparsityFacts> {
        const KEYS: [&str; 4] = ["nnz", "density", "pattern", "zero_rows"];
        let mut seen: Vec<&str> = Vec::new();
        let (mut nnz, mut pattern, mut zero_rows) = (None, None, None);
        while self.cur.peek_token().is_some_and(is_ident_start) {
            let pos = self.cur.pos();
            let key = self.cur.ident().unwrap_or_default();
            if !KEYS.contains(&key) {
                return Err(self
                    .cur
                    .error_at(pos, format!("unknown weight fact `{key}`")));
            }
            if seen.contains(&key) {
                return Err(self
                    .cur
                    .error_at(pos, format!("duplicate weight fact `{key}`")));
            }
            seen.push(key);
            self.cur.expect('=', &format!("after `{key}`"))?;
            let vpos = self.pos();
            let value = self.cur.word(&['"']);
            let invalid = || {
                self.cur
                    .error_at(vpos, format!("invalid value `{value}` for `{key}`"))
            };
            match key {
                "nnz" => nnz = Some(value.parse::<usize>().map_err(|_| invalid())?),
                "zero_rows" => zero_rows = Some(value.parse::<usize>().map_err(|_| invalid())?),
                "pattern" => pattern = Some(Pattern::parse(value).ok_or_else(invalid)?),
                _ => {
                    value.parse::<f64>().map_err(|_| invalid())?;
                }
            }
        }
        let missing = |what: &str| {
            self.cur
                .error_at(kind_pos, format!("weight `{text}` is missing `{what}`"))
        };
        Ok(SparsityFacts {
            numel,
            nnz: nnz.ok_or_else(|| missing("nnz"))?,
            zero_rows: zero_rows.ok_or_else(|| missing("zero_rows"))?,
            pattern: pattern.ok_or_else(|| missing("pattern"))?,
        })
    }

    /// `[e0,e1,...]`: exactly as many elements as the shape holds.
    fn const_data(
        &mut self,
        text: &str,
        dtype: DType,
        shape: Vec<usize>,
        numel: usize,
    ) -> PResult<Tensor> {
        let list_pos = self.pos();
        self.cur.expect('[', "before the constant's elements")?;
        let mut elems: Vec<(usize, &str)> = Vec::new();
        if !self.cur.eat(']') {
            loop {
                let pos = self.pos();
                elems.push((pos, self.cur.word(&[',', ']'])));
                if !self.cur.eat(',') {
                    self.cur.expect(']', "after the constant's elements")?;
                    break;
                }
            }
        }
        if elems.len() != numel {
            return Err(self.cur.error_at(
                list_pos,
                format!(
                    "constant `{text}` has {} elements, its shape {shape:?} needs {numel}",
                    elems.len()
                ),
            ));
        }
        let data = match dtype {
            DType::F32 => TensorData::F32(self.elements(&elems, dtype)?),
            DType::F64 => TensorData::F64(self.elements(&elems, dtype)?),
            DType::F16 => TensorData::F16(
                self.elements::<f32>(&elems, dtype)?
                    .into_iter()
                    .map(f16::from_f32)
                    .collect(),
            ),
            DType::I64 => TensorData::I64(self.elements(&elems, dtype)?),
            DType::I32 => TensorData::I32(self.elements(&elems, dtype)?),
            DType::I8 => TensorData::I8(self.elements(&elems, dtype)?),
            DType::U8 => TensorData::U8(self.elements(&elems, dtype)?),
            DType::Bool => TensorData::Bool(self.elements(&elems, dtype)?),
        };
        Tensor::new(shape, data).map_err(|e| self.cur.error_at(list_pos, e.to_string()))
    }

    /// Parses each element as a `T`; fails at the first one that is not.
    fn elements<T: FromStr>(&self, elems: &[(usize, &str)], dtype: DType) -> PResult<Vec<T>> {
        elems
            .iter()
            .map(|&(pos, s)| {
                s.parse().map_err(|_| {
                    let s = if s.is_empty() { "nothing" } else { s };
                    self.cur.error_at(
                        pos,
                        format!("expected an element of type {dtype}, found `{s}`"),
                    )
                })
            })
            .collect()
    }

    /// `return refs`, checked against the header's output list.
    fn return_statement(&mut self, pos: usize, decls: &[OutputDecl]) -> PResult<()> {
        let mut rets = Vec::new();
        if matches!(self.cur.peek_token(), Some('%' | '@')) {
            loop {
                let rpos = self.pos();
                let v = self.use_value()?;
                rets.push((rpos, v));
                if !self.cur.eat(',') {
                    break;
                }
            }
        }
        self.cur.expect_eol()?;
        if rets.len() != decls.len() {
            return Err(self.cur.error_at(
                pos,
                format!(
                    "`return` has {} values but the header declares {} outputs",
                    rets.len(),
                    decls.len()
                ),
            ));
        }
        for (k, (&(rpos, v), decl)) in rets.iter().zip(decls).enumerate() {
            let declared = match &decl.r {
                Ref::Value(l) => self.values.get(l),
                Ref::Weight(w) => self.weights.get(w),
            };
            if declared != Some(&v) {
                return Err(self.cur.error_at(
                    rpos,
                    format!(
                        "return value {k} is not the header's output `{}`",
                        decl.r.text()
                    ),
                ));
            }
            let ty = &self.graph.value(v).ty;
            if *ty != decl.ty {
                return Err(self.cur.error_at(
                    decl.pos,
                    format!(
                        "output `{}` is declared as {} but defined as {}",
                        decl.r.text(),
                        type_text(&decl.ty),
                        type_text(ty)
                    ),
                ));
            }
        }
        let outputs = rets.into_iter().map(|(_, v)| v).collect();
        self.graph.set_outputs(outputs);
        Ok(())
    }
}
