//! The key export file (placeholder).
