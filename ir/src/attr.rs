//! Attribute values of ops and their text form.
//!
//! Every attribute type implements [`AttrText`], which the op table uses to print an attribute and
//! to parse it back. Floats print in Rust's shortest round-trip form so print -> parse -> print is
//! the identity.

use crate::types::DType;

/// An attribute type with a text form that parses back to the same value.
pub trait AttrText: Sized {
    /// The text form.
    fn write_attr(&self) -> String;
    /// Parses the text form.
    fn parse_attr(s: &str) -> Result<Self, String>;
}

impl AttrText for i64 {
    fn write_attr(&self) -> String {
        self.to_string()
    }
    fn parse_attr(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|_| format!("expected an integer, found `{s}`"))
    }
}

impl AttrText for f32 {
    fn write_attr(&self) -> String {
        format!("{self:?}")
    }
    fn parse_attr(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|_| format!("expected a float, found `{s}`"))
    }
}

impl AttrText for bool {
    fn write_attr(&self) -> String {
        self.to_string()
    }
    fn parse_attr(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|_| format!("expected true or false, found `{s}`"))
    }
}

impl AttrText for String {
    fn write_attr(&self) -> String {
        let mut out = String::from("\"");
        for ch in self.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
    fn parse_attr(s: &str) -> Result<Self, String> {
        let inner = s
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .ok_or_else(|| format!("expected a quoted string, found `{s}`"))?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(c) => out.push(c),
                    None => return Err("string ends in a lone backslash".into()),
                }
            } else {
                out.push(c);
            }
        }
        Ok(out)
    }
}

impl AttrText for DType {
    fn write_attr(&self) -> String {
        self.name().to_string()
    }
    fn parse_attr(s: &str) -> Result<Self, String> {
        DType::from_name(s).ok_or_else(|| format!("unknown element type `{s}`"))
    }
}

impl<T: AttrText> AttrText for Vec<T> {
    fn write_attr(&self) -> String {
        let items: Vec<String> = self.iter().map(AttrText::write_attr).collect();
        format!("[{}]", items.join(","))
    }
    fn parse_attr(s: &str) -> Result<Self, String> {
        let inner = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| format!("expected a list `[..]`, found `{s}`"))?
            .trim();
        if inner.is_empty() {
            return Ok(Vec::new());
        }
        inner.split(',').map(|x| T::parse_attr(x.trim())).collect()
    }
}

/// A typed scalar attribute (the fill value of `ConstantOfShape`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalar {
    /// Element type of the value.
    pub dtype: DType,
    /// The value (integers up to 2^53 are exact).
    pub value: f64,
}

impl AttrText for Scalar {
    fn write_attr(&self) -> String {
        format!("{}:{:?}", self.dtype, self.value)
    }
    fn parse_attr(s: &str) -> Result<Self, String> {
        let (d, v) = s
            .split_once(':')
            .ok_or_else(|| format!("expected `dtype:value`, found `{s}`"))?;
        Ok(Scalar {
            dtype: DType::parse_attr(d)?,
            value: v
                .parse()
                .map_err(|_| format!("expected a number, found `{v}`"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_round_trip() {
        for f in [0.1f32, 1e-5, -3.0, f32::MAX] {
            assert_eq!(f32::parse_attr(&f.write_attr()), Ok(f));
        }
        let v = vec![1i64, -2, 3];
        assert_eq!(Vec::<i64>::parse_attr(&v.write_attr()), Ok(v));
        let s = String::from("a \"b\"\\c");
        assert_eq!(String::parse_attr(&s.write_attr()), Ok(s));
        let sc = Scalar {
            dtype: DType::I64,
            value: 7.0,
        };
        assert_eq!(Scalar::parse_attr(&sc.write_attr()), Ok(sc));
    }
}
