//! Protobuf (proto2) wire primitives: a bounds-checked reader over a byte
//! slice and the few writers the encoder needs. See the module comment of
//! `export` for why this is hand-written.

use super::DecodeError;

/// Wire type of varint fields (int32, sint32, enum, bool).
pub(crate) const VARINT: u8 = 0;
/// Wire type of fixed64 fields.
pub(crate) const I64: u8 = 1;
/// Wire type of length-delimited fields (bytes, string, messages).
pub(crate) const LEN: u8 = 2;
/// Wire type opening a (deprecated) group.
const SGROUP: u8 = 3;
/// Wire type closing a group.
const EGROUP: u8 = 4;
/// Wire type of fixed32 fields.
const I32: u8 = 5;

/// Largest field number protobuf allows.
const MAX_FIELD: u64 = (1 << 29) - 1;

/// How deeply nested unknown groups may be before we stop skipping them.
const MAX_GROUP_DEPTH: u32 = 32;

/// A cursor over one message. `base` is the offset of `buf` in the whole
/// input, so errors point at the right byte.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    pub(crate) const fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) const fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) const fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// A base-128 varint of at most 10 bytes.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let offset = self.offset();
        // Fast path: one-byte values (tags and most small fields).
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                return Ok(u64::from(b));
            }
            Some(_) => {}
            None => return Err(DecodeError::Truncated { offset }),
        }
        let mut value = 0u64;
        for i in 0..10u32 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(DecodeError::Truncated { offset });
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(DecodeError::BadVarint { offset });
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint { offset })
    }

    /// A field tag: (field number, wire type).
    #[inline]
    pub(crate) fn tag(&mut self) -> Result<(u32, u8), DecodeError> {
        let offset = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        let wire_type = (key & 7) as u8;
        if field == 0 || field > MAX_FIELD || wire_type > I32 {
            return Err(DecodeError::InvalidTag { offset });
        }
        Ok((field as u32, wire_type))
    }

    /// `n` raw bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let offset = self.offset();
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated { offset })?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated { offset })?;
        self.pos = end;
        Ok(bytes)
    }

    /// A little-endian fixed64.
    pub(crate) fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(le))
    }

    /// The payload of a length-delimited field, and its offset in the input.
    /// The declared length is checked against the bytes that remain before
    /// anything is sliced.
    #[inline]
    pub(crate) fn bytes(&mut self) -> Result<(&'a [u8], usize), DecodeError> {
        let offset = self.offset();
        let len = self.varint()?;
        let remaining = self.remaining();
        if len > remaining as u64 {
            return Err(DecodeError::LengthPastEnd {
                offset,
                len,
                remaining,
            });
        }
        let start = self.offset();
        Ok((self.take(len as usize)?, start))
    }

    /// Skips the value of a field we do not know (or do not want), whatever
    /// its wire type, groups included.
    pub(crate) fn skip(&mut self, field: u32, wire_type: u8) -> Result<(), DecodeError> {
        self.skip_nested(field, wire_type, 0)
    }

    fn skip_nested(&mut self, field: u32, wire_type: u8, depth: u32) -> Result<(), DecodeError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            I32 => self.take(4).map(drop),
            SGROUP => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(DecodeError::TooDeep {
                        offset: self.offset(),
                    });
                }
                loop {
                    let offset = self.offset();
                    let (inner, inner_type) = self.tag()?;
                    if inner_type == EGROUP {
                        return if inner == field {
                            Ok(())
                        } else {
                            Err(DecodeError::UnmatchedGroup { offset })
                        };
                    }
                    self.skip_nested(inner, inner_type, depth + 1)?;
                }
            }
            // An end-group tag outside any group (the offset is just past it).
            _ => Err(DecodeError::UnmatchedGroup {
                offset: self.offset(),
            }),
        }
    }
}

/// Checks that a known field has the wire type its schema requires.
#[inline]
pub(crate) fn expect(field: &'static str, expected: u8, found: u8) -> Result<(), DecodeError> {
    if expected == found {
        Ok(())
    } else {
        Err(DecodeError::WrongWireType {
            field,
            expected,
            found,
        })
    }
}

/// An int32 from its varint. Writers sign-extend negative values to 10 bytes;
/// some write them as 32-bit two's complement (5 bytes); both are accepted.
/// Anything else does not fit an int32 and is refused.
#[inline]
pub(crate) fn int32(field: &'static str, raw: u64) -> Result<i32, DecodeError> {
    if let Ok(v) = u32::try_from(raw) {
        return Ok(v as i32);
    }
    i32::try_from(raw as i64).map_err(|_| DecodeError::ValueOutOfRange { field, raw })
}

/// An sint32 (zig-zag) from its varint.
#[inline]
pub(crate) fn sint32(field: &'static str, raw: u64) -> Result<i32, DecodeError> {
    let n = u32::try_from(raw).map_err(|_| DecodeError::ValueOutOfRange { field, raw })?;
    Ok((n >> 1) as i32 ^ -((n & 1) as i32))
}

/// A UTF-8 string field.
pub(crate) fn string(field: &'static str, bytes: &[u8]) -> Result<String, DecodeError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidUtf8 { field })
}

/// Bytes the varint encoding of `v` takes.
#[inline]
pub(crate) const fn varint_len(v: u64) -> usize {
    // ceil(significant bits / 7), with 0 taking one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes an int32 value takes (negative values are sign-extended to 10).
#[inline]
pub(crate) const fn int32_len(v: i32) -> usize {
    varint_len(v as i64 as u64)
}

/// The zig-zag form of an sint32.
#[inline]
pub(crate) const fn zigzag(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A tag for fields 1..=15, which fits one byte.
#[inline]
pub(crate) fn put_tag(out: &mut Vec<u8>, field: u8, wire_type: u8) {
    debug_assert!((1..=15).contains(&field));
    out.push((field << 3) | wire_type);
}

#[inline]
pub(crate) fn put_int32(out: &mut Vec<u8>, field: u8, v: i32) {
    put_tag(out, field, VARINT);
    put_varint(out, v as i64 as u64);
}

pub(crate) fn put_fixed64(out: &mut Vec<u8>, field: u8, v: u64) {
    put_tag(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_of(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_round_trip_and_have_the_predicted_length() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let bytes = varint_of(v);
            assert_eq!(bytes.len(), varint_len(v), "{v}");
            let mut r = Reader::new(&bytes, 0);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_empty());
        }
        assert_eq!(varint_of(300), [0xac, 0x02]);
    }

    #[test]
    fn bad_varints_are_refused() {
        // Truncated.
        assert_eq!(
            Reader::new(&[0x80, 0x80], 7).varint(),
            Err(DecodeError::Truncated { offset: 7 })
        );
        // Eleven bytes.
        let long = [0xff; 11];
        assert_eq!(
            Reader::new(&long, 0).varint(),
            Err(DecodeError::BadVarint { offset: 0 })
        );
        // Ten bytes overflowing 64 bits.
        let mut over = [0xff; 10];
        over[9] = 0x02;
        assert_eq!(
            Reader::new(&over, 0).varint(),
            Err(DecodeError::BadVarint { offset: 0 })
        );
    }

    #[test]
    fn int32_accepts_both_negative_forms() {
        assert_eq!(int32("f", (-1i64) as u64).unwrap(), -1);
        assert_eq!(int32("f", 0xffff_ffff).unwrap(), -1);
        assert_eq!(int32("f", 144).unwrap(), 144);
        assert!(int32("f", 1 << 40).is_err());
    }

    #[test]
    fn sint32_is_zigzag() {
        for (v, z) in [(0, 0), (-1, 1), (1, 2), (-2, 3), (14, 28), (-14, 27)] {
            assert_eq!(zigzag(v), z);
            assert_eq!(sint32("f", z).unwrap(), v);
        }
        assert_eq!(sint32("f", zigzag(i32::MIN)).unwrap(), i32::MIN);
        assert_eq!(sint32("f", zigzag(i32::MAX)).unwrap(), i32::MAX);
        assert!(sint32("f", 1 << 32).is_err());
    }

    #[test]
    fn lengths_past_the_end_are_refused_before_slicing() {
        // Field 1, LEN, declared length 2^62.
        let mut msg = vec![0x0a];
        put_varint(&mut msg, 1 << 62);
        let mut r = Reader::new(&msg, 16);
        r.tag().unwrap();
        assert!(matches!(
            r.bytes(),
            Err(DecodeError::LengthPastEnd {
                offset: 17,
                remaining: 0,
                ..
            })
        ));
    }

    #[test]
    fn every_wire_type_is_skipped_groups_included() {
        let mut msg = Vec::new();
        put_int32(&mut msg, 9, -5); // varint
        put_fixed64(&mut msg, 10, 7); // fixed64
        put_bytes(&mut msg, 11, b"abc"); // len
        msg.extend_from_slice(&[(12 << 3) | 5, 1, 2, 3, 4]); // fixed32
        // group 13 { group 14 { varint 1 } }
        msg.extend_from_slice(&[
            (13 << 3) | 3,
            (14 << 3) | 3,
            8,
            1,
            (14 << 3) | 4,
            (13 << 3) | 4,
        ]);
        put_int32(&mut msg, 1, 42);
        let mut r = Reader::new(&msg, 0);
        let mut seen = Vec::new();
        while !r.is_empty() {
            let (f, wt) = r.tag().unwrap();
            if f == 1 {
                seen.push(r.varint().unwrap());
            } else {
                r.skip(f, wt).unwrap();
            }
        }
        assert_eq!(seen, [42]);
    }

    #[test]
    fn malformed_groups_are_refused() {
        // A group closed by the wrong field.
        let wrong = [(13 << 3) | 3, (14 << 3) | 4];
        let mut r = Reader::new(&wrong, 0);
        let (f, wt) = r.tag().unwrap();
        assert_eq!(
            r.skip(f, wt),
            Err(DecodeError::UnmatchedGroup { offset: 1 })
        );
        // A stray end-group.
        let stray = [(13 << 3) | 4];
        let mut r = Reader::new(&stray, 0);
        let (f, wt) = r.tag().unwrap();
        assert!(matches!(
            r.skip(f, wt),
            Err(DecodeError::UnmatchedGroup { .. })
        ));
        // Never closed.
        let open = [(13 << 3) | 3, 8, 1];
        let mut r = Reader::new(&open, 0);
        let (f, wt) = r.tag().unwrap();
        assert!(matches!(r.skip(f, wt), Err(DecodeError::Truncated { .. })));
        // Nested far too deep.
        let deep = vec![(13 << 3) | 3; 1000];
        let mut r = Reader::new(&deep, 0);
        let (f, wt) = r.tag().unwrap();
        assert!(matches!(r.skip(f, wt), Err(DecodeError::TooDeep { .. })));
    }

    #[test]
    fn invalid_tags_are_refused() {
        for bad in [[0x00u8], [0x06], [0x07]] {
            assert_eq!(
                Reader::new(&bad, 3).tag(),
                Err(DecodeError::InvalidTag { offset: 3 })
            );
        }
    }
}
