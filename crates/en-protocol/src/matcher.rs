//! Matcher.
