//! Chat: templates that turn messages into a prompt, and sessions that generate replies with a KV cache.

pub mod template;
pub mod session;

pub use session::{ChatError, GenerateParams, GenerateStats, OnContextFull, Prompt, Session, StopReason};
pub use template::{ChatTemplate, Message};
