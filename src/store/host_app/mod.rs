//! The host app's contract, in SQL: what the vendor's app reads and what every write leaves
//! for it, in one folder.
//!
//! | module | owns |
//! |---|---|
//! | [`alerts`] | alerts raised per organisation (failing, stalled, a credential expiring): what decides them, and raising or clearing one with its event |
//! | [`directory`] | the user and group shapes (one definition for the directory API and the feed's events) |
//! | [`trail`] | the events and log entry a write records in its own batch; every event type |
//! | [`feed`] | reading the change feed |
//! | [`log`] | the provisioning log's row, written and read |
//! | [`roles`] | roles from groups: the effective-role rule and the statements that keep it (and the feed) up to date |
//! | [`keys`] | the admin API's keys |
//! | [`webhooks`] | webhook endpoints, their lanes (one per endpoint and organisation), attempts and dead letters |
//!
//! `plans` (tests) checks that each of their reads and chunked deletes seeks an index.

pub mod alerts;
pub mod directory;
pub mod feed;
pub mod keys;
pub mod log;
#[cfg(test)]
mod plans;
pub mod roles;
pub mod trail;
pub mod webhooks;
