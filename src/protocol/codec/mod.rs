//! The API protocol's response codec, both directions of both versions:
//! [`write`] answers in the caller's protocol (the serving side), [`read`]
//! reads those answers (the calling side). Each is unit-tested over
//! in-memory bytes, and `tests` writes with one and reads with the other.

pub(crate) mod read;
pub(crate) mod write;

#[cfg(test)]
mod tests;
