//! Who may use the console: passwords and their standard, sessions and their timeouts,
//! sign-in throttling, second factors and single-use links. Pure, apart from hashing.

pub mod link;
pub mod password;
pub mod session;
pub mod throttle;
pub mod two_factor;
