//! The key derivations of the Exposure Notification cryptography spec v1.2.
//!
//! ```text
//! RPIK  = HKDF-SHA256(IKM = TEK, salt = NULL, info = "EN-RPIK", L = 16)
//! RPI_j = AES-128(RPIK, "EN-RPI" || 0x00 * 6 || LE32(j))
//! AEMK  = HKDF-SHA256(TEK, NULL, "EN-AEMK", 16)
//! AEM   = AES-128-CTR(AEMK, IV = RPI, metadata)
//! ```
//!
//! HKDF is written out over the SHA-256 compression function instead of going
//! through the `hkdf` crate, because it is the matcher's hot path: with the
//! all-zero salt fixed by the spec, the salt's HMAC pads are compressed once
//! per process, and every derivation costs exactly six compressions (two for
//! Extract, two to key HMAC with the PRK, two for Expand's single block). The
//! matcher's path ([`diagnosis_key_rpi_cipher`]) also builds every block once,
//! straight in the type `sha2` takes, with the key-independent ones (padding,
//! Expand's message) precomputed, and keeps only the AES encryption key
//! schedule. The `hkdf` crate is kept as the reference the tests compare
//! against.

use std::sync::OnceLock;

use aes::Aes128Enc;
use aes::cipher::{BlockEncrypt, KeyInit};

use crate::keys::{Aem, Aemk, BluetoothMetadata, Rpi, Rpik, Tek};
use crate::time::{EnIntervalNumber, TEK_ROLLING_PERIOD};

/// `info` of the RPIK derivation.
pub const RPIK_INFO: &[u8] = b"EN-RPIK";
/// `info` of the AEMK derivation.
pub const AEMK_INFO: &[u8] = b"EN-AEMK";
/// The first 6 bytes of `PaddedData`.
pub const RPI_PADDING_PREFIX: &[u8; 6] = b"EN-RPI";

/// An AES block, as the `aes` crate's batch API takes it.
pub type AesBlock = aes::Block;

const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

// generic-array 0.14 is marked deprecated in favour of 1.x, but it is what
// sha2 0.10's compression API takes; the conversion is a 64-byte copy.
#[allow(deprecated)]
fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    compress_blocks(state, std::slice::from_ref(block));
}

/// Absorbs up to two blocks in one call into `sha2`.
#[allow(deprecated)]
fn compress_blocks(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    type Block = sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>;
    let mut buf = [Block::default(), Block::default()];
    for (b, block) in buf.iter_mut().zip(blocks) {
        *b = (*block).into();
    }
    sha2::compress256(state, &buf[..blocks.len().min(2)]);
}

/// The final block holding `msg` (< 56 bytes) plus SHA-256 padding for a
/// message of `total_len` bytes in all.
fn final_block(msg: &[u8], total_len: u64) -> [u8; 64] {
    debug_assert!(msg.len() < 56);
    let mut block = [0u8; 64];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] = 0x80;
    block[56..].copy_from_slice(&(total_len * 8).to_be_bytes());
    block
}

fn digest_bytes(state: [u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// The SHA-256 state after absorbing one 64-byte block `key ^ pad`
/// (`key` at most 64 bytes, zero-extended): HMAC's inner or outer key block.
fn keyed_pad_state(key: &[u8], pad: u8) -> [u32; 8] {
    let mut block = [pad; 64];
    for (b, k) in block.iter_mut().zip(key) {
        *b ^= k;
    }
    let mut state = SHA256_IV;
    compress(&mut state, &block);
    state
}

/// Absorbs the final block holding `msg` (< 56 bytes) plus SHA-256 padding,
/// for a message of `total_len` bytes in all, and returns the digest.
fn finish(mut state: [u32; 8], msg: &[u8], total_len: u64) -> [u8; 32] {
    compress(&mut state, &final_block(msg, total_len));
    digest_bytes(state)
}

/// HMAC key states of the all-zero 32-byte salt, computed once.
fn zero_salt_states() -> &'static ([u32; 8], [u32; 8]) {
    static STATES: OnceLock<([u32; 8], [u32; 8])> = OnceLock::new();
    STATES.get_or_init(|| (keyed_pad_state(&[], 0x36), keyed_pad_state(&[], 0x5c)))
}

/// HKDF's pseudorandom key, held as the two HMAC states it keys, so that
/// several `info`s can be expanded from one Extract. Wiped when dropped.
struct Prk {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl Prk {
    /// `HKDF-Extract(salt = NULL, IKM = tek)`.
    fn extract(tek: &Tek) -> Self {
        let (zi, zo) = zero_salt_states();
        let inner = finish(*zi, tek.as_bytes(), 64 + 16);
        let mut prk = finish(*zo, &inner, 64 + 32);
        let me = Self {
            inner: keyed_pad_state(&prk, 0x36),
            outer: keyed_pad_state(&prk, 0x5c),
        };
        zeroize::Zeroize::zeroize(&mut prk);
        me
    }

    /// `HKDF-Expand(PRK, info, 16)`: `T(1) = HMAC(PRK, info || 0x01)`, first 16 bytes.
    fn expand16(&self, info: &[u8]) -> [u8; 16] {
        let mut msg = [0u8; 32];
        msg[..info.len()].copy_from_slice(info);
        msg[info.len()] = 0x01;
        let msg = &msg[..info.len() + 1];
        let inner = finish(self.inner, msg, 64 + msg.len() as u64);
        let t1 = finish(self.outer, &inner, 64 + 32);
        let mut out = [0u8; 16];
        out.copy_from_slice(&t1[..16]);
        out
    }
}

impl Drop for Prk {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.inner);
        zeroize::Zeroize::zeroize(&mut self.outer);
    }
}

/// The RPI generator of a published diagnosis key, for the matcher: the same
/// derivation as [`Tek::rpik`] and [`RpiCipher::new`], in fewer calls and
/// without wiping the intermediate values, which anyone can derive once the
/// key is published.
pub fn diagnosis_key_rpi_cipher(key: &Tek) -> RpiCipher {
    diagnosis_key_rpi_cipher_bytes(key.as_bytes())
}

// generic-array 0.14 is marked deprecated in favour of 1.x, but it is what
// sha2 0.10's compression API takes.
#[allow(deprecated)]
type ShaBlock = sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>;

/// A block holding the 32-byte words of `words`, each XORed with `xor`,
/// then `tail` (SHA-256 padding or HMAC key padding).
#[inline(always)]
#[allow(deprecated)]
fn words_block(words: &[u32; 8], xor: u32, tail: &[u8; 32]) -> ShaBlock {
    let mut block = ShaBlock::default();
    for (chunk, word) in block[..32].chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&(word ^ xor).to_be_bytes());
    }
    block[32..].copy_from_slice(tail);
    block
}

/// The blocks of the hot path that do not depend on the key: the padding
/// after a 32-byte digest that follows a 64-byte key block, the HMAC key
/// pads of a 32-byte key, and HKDF-Expand's message for the RPIK,
/// `"EN-RPIK" || 0x01`, after the key block.
struct Constants {
    digest_tail: [u8; 32],
    ipad_tail: [u8; 32],
    opad_tail: [u8; 32],
    rpik_info: ShaBlock,
}

#[allow(deprecated)]
fn constants() -> &'static Constants {
    static CONSTANTS: OnceLock<Constants> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let mut digest_tail = [0u8; 32];
        digest_tail.copy_from_slice(&final_block(&[0; 32], 64 + 32)[32..]);
        let mut info = [0u8; 8];
        info[..7].copy_from_slice(RPIK_INFO);
        info[7] = 0x01;
        Constants {
            digest_tail,
            ipad_tail: [0x36; 32],
            opad_tail: [0x5c; 32],
            rpik_info: final_block(&info, 64 + 8).into(),
        }
    })
}

/// [`diagnosis_key_rpi_cipher`] from the key's bytes: six compressions in
/// four calls into `sha2`, each block built once, straight in the type
/// `sha2` takes.
#[inline]
#[allow(deprecated)]
pub(crate) fn diagnosis_key_rpi_cipher_bytes(tek: &[u8; 16]) -> RpiCipher {
    let (zi, zo) = zero_salt_states();
    let c = constants();
    // Extract: PRK = HMAC(0^32, TEK).
    let mut block = ShaBlock::default();
    block[..16].copy_from_slice(tek);
    block[16] = 0x80;
    block[56..].copy_from_slice(&((64u64 + 16) * 8).to_be_bytes());
    let mut inner = *zi;
    sha2::compress256(&mut inner, std::slice::from_ref(&block));
    let mut prk = *zo;
    sha2::compress256(
        &mut prk,
        std::slice::from_ref(&words_block(&inner, 0, &c.digest_tail)),
    );
    // Expand's one block: T(1) = HMAC(PRK, "EN-RPIK" || 0x01).
    let mut inner = SHA256_IV;
    sha2::compress256(
        &mut inner,
        &[words_block(&prk, 0x3636_3636, &c.ipad_tail), c.rpik_info],
    );
    let mut outer = SHA256_IV;
    sha2::compress256(
        &mut outer,
        &[
            words_block(&prk, 0x5c5c_5c5c, &c.opad_tail),
            words_block(&inner, 0, &c.digest_tail),
        ],
    );
    let mut rpik = [0u8; 16];
    for (chunk, word) in rpik.chunks_exact_mut(4).zip(&outer) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    RpiCipher {
        aes: Aes128Enc::new(&rpik.into()),
    }
}

impl Tek {
    /// `RPIK = HKDF(TEK, NULL, "EN-RPIK", 16)`.
    pub fn rpik(&self) -> Rpik {
        Rpik::from_bytes(Prk::extract(self).expand16(RPIK_INFO))
    }

    /// `AEMK = HKDF(TEK, NULL, "EN-AEMK", 16)`.
    pub fn aemk(&self) -> Aemk {
        Aemk::from_bytes(Prk::extract(self).expand16(AEMK_INFO))
    }

    /// Both keys from one HKDF-Extract.
    pub fn rpik_and_aemk(&self) -> (Rpik, Aemk) {
        let prk = Prk::extract(self);
        (
            Rpik::from_bytes(prk.expand16(RPIK_INFO)),
            Aemk::from_bytes(prk.expand16(AEMK_INFO)),
        )
    }
}

/// `PaddedData_j = "EN-RPI" || 0x00 * 6 || LE32(j)`.
pub fn padded_data(interval: EnIntervalNumber) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..6].copy_from_slice(RPI_PADDING_PREFIX);
    block[12..].copy_from_slice(&interval.get().to_le_bytes());
    block
}

/// Writes `PaddedData_j` for the `blocks.len()` consecutive intervals from
/// `first` into `blocks`: the input of [`RpiCipher::rpis_from_padded`],
/// the same for every key, so the matcher builds it once per day.
pub fn padded_blocks(first: EnIntervalNumber, blocks: &mut [AesBlock]) {
    // Built as one 128-bit value per block: writing the prefix and the
    // counter as separate narrow stores, then reading the block back whole,
    // stalls store forwarding.
    let template = u128::from_le_bytes(padded_data(EnIntervalNumber::new(0)));
    let mut j = first.get();
    for block in blocks.iter_mut() {
        *block = AesBlock::from((template | (u128::from(j) << 96)).to_le_bytes());
        j = j.wrapping_add(1);
    }
}

/// An RPIK with its AES key schedule expanded (encryption only), ready to
/// produce RPIs.
#[derive(Clone)]
pub struct RpiCipher {
    aes: Aes128Enc,
}

impl std::fmt::Debug for RpiCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RpiCipher(<redacted>)")
    }
}

impl RpiCipher {
    /// Expands the AES key schedule of `rpik`.
    pub fn new(rpik: &Rpik) -> Self {
        Self {
            aes: Aes128Enc::new(&(*rpik.as_bytes()).into()),
        }
    }

    /// `RPI_j` for one interval.
    pub fn rpi(&self, interval: EnIntervalNumber) -> Rpi {
        let mut block = AesBlock::from(padded_data(interval));
        self.aes.encrypt_block(&mut block);
        Rpi(block.into())
    }

    /// The RPIs of `blocks.len()` consecutive intervals from `first`, written
    /// in place into `blocks` in one batch call (the `aes` crate pipelines
    /// several blocks at a time through AES-NI).
    pub fn rpis_into(&self, first: EnIntervalNumber, blocks: &mut [AesBlock]) {
        padded_blocks(first, blocks);
        self.aes.encrypt_blocks(blocks);
    }

    /// The RPIs of the intervals whose `PaddedData` ([`padded_blocks`]) is
    /// `padded`, written into `out` (the shorter of the two sets the count).
    /// Reading the input from a buffer shared by all keys saves building 144
    /// blocks per key, which costs a quarter of the AES itself.
    #[inline]
    pub fn rpis_from_padded(&self, padded: &[AesBlock], out: &mut [AesBlock]) {
        let n = padded.len().min(out.len());
        // Equal lengths by construction, so this cannot fail.
        let _ = self.aes.encrypt_blocks_b2b(&padded[..n], &mut out[..n]);
    }
}

impl Rpik {
    /// `RPI_j = AES-128(RPIK, PaddedData_j)`.
    pub fn rpi(&self, interval: EnIntervalNumber) -> Rpi {
        RpiCipher::new(self).rpi(interval)
    }

    /// The `count` RPIs of the intervals `first .. first + count`.
    pub fn rpis(&self, first: EnIntervalNumber, count: u32) -> Vec<Rpi> {
        let mut blocks = vec![AesBlock::default(); count as usize];
        RpiCipher::new(self).rpis_into(first, &mut blocks);
        blocks.into_iter().map(|b| Rpi(b.into())).collect()
    }

    /// All 144 RPIs of a key that starts at `rolling_start`.
    pub fn all_rpis(&self, rolling_start: EnIntervalNumber) -> Vec<Rpi> {
        self.rpis(rolling_start, TEK_ROLLING_PERIOD)
    }
}

impl Aemk {
    /// `AEM = AES-128-CTR(AEMK, IV = RPI, metadata)`. The metadata is 4 bytes,
    /// so CTR uses only its first counter block, the RPI itself: the AEM is
    /// the metadata XOR the first 4 bytes of `AES(AEMK, RPI)`, computed here
    /// as one block encryption.
    pub fn encrypt(&self, rpi: &Rpi, metadata: BluetoothMetadata) -> Aem {
        Aem(self.apply_keystream(rpi, metadata.to_bytes()))
    }

    /// Decrypts an AEM heard with `rpi` (CTR is its own inverse).
    pub fn decrypt(&self, rpi: &Rpi, aem: &Aem) -> BluetoothMetadata {
        BluetoothMetadata::from_bytes(self.apply_keystream(rpi, aem.0))
    }

    fn apply_keystream(&self, rpi: &Rpi, data: [u8; 4]) -> [u8; 4] {
        let aes = Aes128Enc::new(&(*self.as_bytes()).into());
        let mut block = AesBlock::from(rpi.0);
        aes.encrypt_block(&mut block);
        let mut out = data;
        for (o, k) in out.iter_mut().zip(block.iter()) {
            *o ^= k;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_hkdf(tek: &[u8; 16], info: &[u8]) -> [u8; 16] {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, tek);
        let mut out = [0u8; 16];
        hk.expand(info, &mut out).unwrap();
        out
    }

    #[test]
    fn fast_hkdf_equals_reference_hkdf() {
        for seed in 0u8..=255 {
            let bytes: [u8; 16] =
                std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8 * 7));
            let tek = Tek::from_bytes(bytes);
            assert_eq!(tek.rpik().as_bytes(), &reference_hkdf(&bytes, RPIK_INFO));
            assert_eq!(tek.aemk().as_bytes(), &reference_hkdf(&bytes, AEMK_INFO));
            let (r, a) = tek.rpik_and_aemk();
            assert_eq!(r, tek.rpik());
            let j = EnIntervalNumber::new(u32::from(seed) * 1000);
            assert_eq!(diagnosis_key_rpi_cipher(&tek).rpi(j), r.rpi(j));
            assert_eq!(a, tek.aemk());
        }
    }

    #[test]
    fn batch_rpis_equal_single_rpis() {
        let rpik = Tek::from_bytes([9; 16]).rpik();
        let start = EnIntervalNumber::new(2_650_000);
        let batch = rpik.rpis(start, 144);
        for (i, rpi) in batch.iter().enumerate() {
            assert_eq!(
                *rpi,
                rpik.rpi(EnIntervalNumber::new(start.get() + i as u32))
            );
        }
    }
}
