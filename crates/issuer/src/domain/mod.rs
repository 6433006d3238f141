//! The domain: records, validation, codes and the seed's rules. Pure: no I/O.

pub mod codes;
pub mod funnel;
pub mod model;
pub mod password;
pub mod rules;
pub mod validate;
