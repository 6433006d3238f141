//! Staff passwords: argon2id (the `argon2` crate's default, v19) with a
//! random salt, stored as a PHC string.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::codes::SecureRng;
use super::validate::FieldError;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Hashes a password (refusing ones shorter than [`MIN_PASSWORD_CHARS`]).
pub fn hash(password: &str, rng: &mut dyn SecureRng) -> Result<String, FieldError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > 1024 {
        return Err(FieldError {
            field: "password",
            message_ja: format!("パスワードは{MIN_PASSWORD_CHARS}文字以上にしてください"),
            message_en: format!("password must have at least {MIN_PASSWORD_CHARS} characters"),
        });
    }
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| FieldError {
        field: "password",
        message_ja: "パスワードを処理できません".into(),
        message_en: "cannot hash password".into(),
    })?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| FieldError {
            field: "password",
            message_ja: "パスワードを処理できません".into(),
            message_en: "cannot hash password".into(),
        })
}

/// Whether `password` matches the stored PHC string.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn argon2id_round_trip() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let h = hash("correct horse battery", &mut rng).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(hash("short", &mut rng).is_err());
    }
}
