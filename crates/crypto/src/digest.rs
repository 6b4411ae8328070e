//! SHA-256 digests of secrets that are looked up, never read back (session identifiers, email
//! addresses), and a comparison that takes the same time wherever the inputs differ.

use aws_lc_rs::digest;

/// SHA-256 over `purpose`, a NUL, then `data`: the same data hashed for two purposes gives two
/// unrelated digests.
pub fn sha256(purpose: &str, data: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(purpose.as_bytes());
    ctx.update(&[0]);
    ctx.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_separate_digests_and_equality_is_exact() {
        assert_ne!(sha256("session", b"x"), sha256("email", b"x"));
        assert_eq!(sha256("session", b"x"), sha256("session", b"x"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
