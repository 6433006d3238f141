//! The fixed-size values of the protocol.
//!
//! Secret keys ([`Tek`], [`Rpik`], [`Aemk`]) are neither `Copy` nor printable:
//! their `Debug` says only what they are, they compare in constant time and
//! they are wiped when dropped. Broadcast values ([`Rpi`], [`Aem`]) are public
//! by design and behave like plain bytes.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A byte string of the wrong length where a fixed-size key was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {expected} bytes, got {actual}")]
pub struct WrongLength {
    /// Which value.
    pub what: &'static str,
    /// Its required length.
    pub expected: usize,
    /// The length that was given.
    pub actual: usize,
}

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 16]);

        impl $name {
            /// Wraps 16 bytes.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(bytes)
            }

            /// Copies from a slice that must be exactly 16 bytes long.
            pub fn try_from_slice(bytes: &[u8]) -> Result<Self, WrongLength> {
                <[u8; 16]>::try_from(bytes).map(Self).map_err(|_| WrongLength {
                    what: $what,
                    expected: 16,
                    actual: bytes.len(),
                })
            }

            /// The key bytes. Handle with care: this is secret material.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}
    };
}

secret_key!(
    /// Temporary Exposure Key: 16 random bytes, one per rolling period (a UTC
    /// day). Once a person registers positive, their TEKs become *diagnosis
    /// keys* and are published; until then they are the phone's secret.
    Tek,
    "TEK"
);

secret_key!(
    /// Rolling Proximity Identifier Key: `HKDF(TEK, NULL, "EN-RPIK", 16)`.
    Rpik,
    "RPIK"
);

secret_key!(
    /// Associated Encrypted Metadata Key: `HKDF(TEK, NULL, "EN-AEMK", 16)`.
    Aemk,
    "AEMK"
);

impl Tek {
    /// A fresh key from a cryptographically secure RNG (spec: "TEK_i ← CRNG(16)").
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }
}

/// Rolling Proximity Identifier: what a phone broadcasts for one interval.
/// Public by design; its bytes look random, which the matcher exploits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rpi(pub [u8; 16]);

impl Rpi {
    /// Copies from a slice that must be exactly 16 bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, WrongLength> {
        <[u8; 16]>::try_from(bytes)
            .map(Self)
            .map_err(|_| WrongLength {
                what: "RPI",
                expected: 16,
                actual: bytes.len(),
            })
    }

    /// The bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for Rpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rpi(")?;
        write_hex(f, &self.0)?;
        write!(f, ")")
    }
}

/// Associated Encrypted Metadata: the 4 metadata bytes, encrypted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Aem(pub [u8; 4]);

impl Aem {
    /// Copies from a slice that must be exactly 4 bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, WrongLength> {
        <[u8; 4]>::try_from(bytes)
            .map(Self)
            .map_err(|_| WrongLength {
                what: "AEM",
                expected: 4,
                actual: bytes.len(),
            })
    }

    /// The bytes.
    pub const fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Debug for Aem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aem(")?;
        write_hex(f, &self.0)?;
        write!(f, ")")
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// The 4 metadata bytes a phone broadcasts, encrypted as the AEM: byte 0 the
/// version (bits 7:6 major, 5:4 minor, 3:0 reserved), byte 1 the TX power in
/// dBm (signed), bytes 2-3 reserved. Every byte is kept as received, so the
/// wire form round-trips exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BluetoothMetadata {
    /// The version byte: `0x40` is version 1.0.
    pub version: u8,
    /// Transmit power in dBm, used by receivers to compute attenuation.
    pub tx_power: i8,
    /// Reserved bytes 2 and 3; 0 in v1.
    pub reserved: [u8; 2],
}

impl BluetoothMetadata {
    /// Version 1.0 metadata with the given TX power.
    pub const fn v1(tx_power: i8) -> Self {
        Self {
            version: 0x40,
            tx_power,
            reserved: [0, 0],
        }
    }

    /// Major version (bits 7:6 of the version byte).
    pub const fn version_major(self) -> u8 {
        self.version >> 6
    }

    /// Minor version (bits 5:4 of the version byte).
    pub const fn version_minor(self) -> u8 {
        (self.version >> 4) & 0b11
    }

    /// The 4 wire bytes.
    pub const fn to_bytes(self) -> [u8; 4] {
        [
            self.version,
            self.tx_power as u8,
            self.reserved[0],
            self.reserved[1],
        ]
    }

    /// Reads the 4 wire bytes. Every byte pattern is valid metadata; a reader
    /// that cares about the version checks [`Self::version_major`] itself.
    pub const fn from_bytes(b: [u8; 4]) -> Self {
        Self {
            version: b[0],
            tx_power: b[1] as i8,
            reserved: [b[2], b[3]],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_do_not_print() {
        let tek = Tek::from_bytes([0xab; 16]);
        let shown = format!(
            "{tek:?} {:?} {:?}",
            Rpik::from_bytes([0xab; 16]),
            Aemk::from_bytes([0xab; 16])
        );
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert_eq!(format!("{tek:?}"), "Tek(<redacted>)");
    }

    #[test]
    fn wrong_lengths_are_refused() {
        let e = Tek::try_from_slice(&[0; 15]).unwrap_err();
        assert_eq!(e.to_string(), "TEK must be 16 bytes, got 15");
        assert!(Rpi::try_from_slice(&[0; 17]).is_err());
        assert!(Aem::try_from_slice(&[0; 3]).is_err());
        assert!(Tek::try_from_slice(&[7; 16]).is_ok());
    }

    #[test]
    fn metadata_round_trips_and_matches_vector_layout() {
        let m = BluetoothMetadata::v1(8);
        assert_eq!(m.to_bytes(), [0x40, 0x08, 0, 0]);
        assert_eq!(BluetoothMetadata::from_bytes([0x40, 0x08, 0, 0]), m);
        assert_eq!((m.version_major(), m.version_minor()), (1, 0));
        let neg = BluetoothMetadata::v1(-12);
        assert_eq!(BluetoothMetadata::from_bytes(neg.to_bytes()).tx_power, -12);
    }
}
