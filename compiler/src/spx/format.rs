//! The `.spx` container: the fixed header (magic bytes, format version, body length, checksum)
//! and the prost messages of the body, defined by hand (no `.proto` file, no protoc).
//!
//! Layout of a file: 32 header bytes, then the body, one [`SpxModel`] message.
//!
//! | bytes | content |
//! | --- | --- |
//! | 0..8 | [`MAGIC`] |
//! | 8..12 | format version, u32 little-endian ([`FORMAT_VERSION`]) |
//! | 12..16 | reserved, zero |
//! | 16..24 | body length in bytes, u64 little-endian |
//! | 24..32 | [`checksum`] of the body, u64 little-endian |

/// The first bytes of every `.spx` file (a non-ASCII first byte and a CR-LF / EOF / LF tail, so
/// text-mode transfers and text files are told apart at once).
pub const MAGIC: [u8; 8] = *b"\x89SPX\r\n\x1a\n";

/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the fixed header.
pub const HEADER_LEN: usize = 32;

/// The body of a `.spx` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpxModel {
    /// The program that wrote the file, e.g. `sparsec 0.1.0`.
    #[prost(string, tag = "1")]
    pub producer: String,
    /// The graph in sparsec's IR text form (weights as type and statistics).
    #[prost(string, tag = "2")]
    pub graph_text: String,
    /// The data of every weight, in the order the text form numbers them (`@w0`, `@w1`, ...).
    #[prost(message, repeated, tag = "3")]
    pub weights: Vec<WeightRecord>,
    /// Per-layer layout decisions of the compiler (which kernel layout a node runs and why).
    #[prost(message, repeated, tag = "4")]
    pub notes: Vec<LayerNote>,
}

/// One weight's data.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WeightRecord {
    /// Its printed id in the graph text (`@w3`).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Its source name (may be empty).
    #[prost(string, tag = "2")]
    pub name: String,
    /// Its element type as the text form names it (`f32`, `i64`, ...).
    #[prost(string, tag = "3")]
    pub dtype: String,
    /// Its shape.
    #[prost(uint64, repeated, tag = "4")]
    pub shape: Vec<u64>,
    /// The elements.
    #[prost(oneof = "WeightPayload", tags = "5, 6")]
    pub payload: Option<WeightPayload>,
}

/// How a weight's elements are stored.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum WeightPayload {
    /// Every element, row-major, little-endian (`bool` as one byte 0/1, `f16` as its bits).
    #[prost(bytes, tag = "5")]
    Dense(Vec<u8>),
    /// The nonzero elements of an `f32` weight in CSR over its matrix view `d0 x (d1*d2*...)`.
    #[prost(message, tag = "6")]
    Csr(CsrData),
}

/// Compressed sparse rows of an `f32` matrix (elements whose bits are not all zero are stored, so
/// `-0.0` survives the round trip).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CsrData {
    /// `rows + 1` offsets into `col_idx` / `values`, u32 little-endian.
    #[prost(bytes, tag = "1")]
    pub row_ptr: Vec<u8>,
    /// Width of a column index: 16 (when the matrix has at most 65536 columns) or 32.
    #[prost(uint32, tag = "2")]
    pub col_bits: u32,
    /// Column index of each stored element, little-endian, `col_bits` wide.
    #[prost(bytes, tag = "3")]
    pub col_idx: Vec<u8>,
    /// Each stored element, f32 little-endian.
    #[prost(bytes, tag = "4")]
    pub values: Vec<u8>,
}

/// Why the compiler chose a layout for a layer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LayerNote {
    /// The node's name.
    #[prost(string, tag = "1")]
    pub node: String,
    /// The layout chosen (e.g. `dense`, `csr`, `bsr4x1`).
    #[prost(string, tag = "2")]
    pub layout: String,
    /// Why (the cost model's reasoning, one line).
    #[prost(string, tag = "3")]
    pub reason: String,
}

/// A fast 64-bit checksum of `bytes`: any change of a single 8-byte word (in particular any
/// flipped byte) changes the result, as each step is a bijection of the running state.
pub fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = 0x2545_f491_4f6c_dd1d;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(a)).wrapping_mul(K);
    }
    let rest = words.remainder();
    let mut a = [0u8; 8];
    a[..rest.len()].copy_from_slice(rest);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(a)).wrapping_mul(K);
    (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(K)
}

/// The header of a body.
pub fn header(body: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&(body.len() as u64).to_le_bytes());
    h[24..32].copy_from_slice(&checksum(body).to_le_bytes());
    h
}

/// What is wrong with a header, before the file's path is attached.
#[derive(Debug, PartialEq)]
pub enum HeaderError {
    /// The magic bytes differ.
    NotSpx,
    /// The file ends before the header or the body does.
    Truncated(String),
    /// The format version is newer than [`FORMAT_VERSION`] (or zero).
    Version(u32),
    /// Anything else (reserved bytes, trailing bytes, checksum).
    Corrupt(String),
}

/// Checks the header of `file` and returns its body.
pub fn split(file: &[u8]) -> Result<&[u8], HeaderError> {
    let n = file.len().min(MAGIC.len());
    if file[..n] != MAGIC[..n] {
        return Err(HeaderError::NotSpx);
    }
    if file.len() < HEADER_LEN {
        return Err(HeaderError::Truncated(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            file.len()
        )));
    }
    let u32_at = |i: usize| u32::from_le_bytes([file[i], file[i + 1], file[i + 2], file[i + 3]]);
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&file[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let version = u32_at(8);
    if version == 0 || version > FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    if u32_at(12) != 0 {
        return Err(HeaderError::Corrupt(
            "reserved header bytes are not zero".into(),
        ));
    }
    let declared = u64_at(16);
    let actual = (file.len() - HEADER_LEN) as u64;
    if actual < declared {
        return Err(HeaderError::Truncated(format!(
            "the header declares {declared} body bytes, the file holds {actual}"
        )));
    }
    if actual > declared {
        return Err(HeaderError::Corrupt(format!(
            "{} bytes after the declared {declared}-byte body",
            actual - declared
        )));
    }
    let body = &file[HEADER_LEN..];
    if checksum(body) != u64_at(24) {
        return Err(HeaderError::Corrupt(
            "checksum mismatch (the body was changed or damaged)".into(),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flipped_byte_of_a_small_file_is_caught() {
        let body: Vec<u8> = (0..77u8).collect();
        let mut file = header(&body).to_vec();
        file.extend(&body);
        assert_eq!(split(&file), Ok(&body[..]));
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x10;
            assert!(split(&bad).is_err(), "flip at byte {i} not caught");
        }
        for len in 0..file.len() {
            assert!(
                split(&file[..len]).is_err(),
                "truncation to {len} not caught"
            );
        }
    }

    #[test]
    fn newer_versions_and_wrong_magic_are_named() {
        let mut file = header(b"x").to_vec();
        file.push(b'x');
        file[8] = 2;
        assert_eq!(split(&file), Err(HeaderError::Version(2)));
        assert_eq!(split(b"\x08\x01rest"), Err(HeaderError::NotSpx));
        assert!(matches!(split(&MAGIC[..5]), Err(HeaderError::Truncated(_))));
    }
}
