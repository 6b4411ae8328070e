//! One integration-test binary. Each test spawns the real `chimatic` binary on a random
//! loopback port with a fresh data directory, and real HTTP receivers on 127.0.0.1.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

mod harness;
mod store_probe;
mod test_provider;

mod api_keys;
mod audit;
mod batch;
mod byok;
mod connections;
mod console;
mod console_pages;
mod console_team;
mod contract;
mod delivery;
mod demo;
mod directory;
mod erasure;
mod events;
mod feedback;
mod inbox;
mod input;
mod keys;
mod lifecycle;
mod nodes;
mod outbound_tls;
mod planes;
mod portal;
mod postgres_tls;
mod providers;
mod security;
mod server;
mod sso;
mod tls;
mod topics;
mod vault_roles;
mod workflows;
