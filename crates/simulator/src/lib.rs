//! A population of phones meeting, falling ill and registering, run on the real protocol code; and the production canary.
