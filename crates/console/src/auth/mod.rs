//! Who may use the console: passwords and their standard, sessions and their timeouts, and
//! sign-in throttling. Pure, apart from hashing.

pub mod password;
pub mod session;
pub mod throttle;
