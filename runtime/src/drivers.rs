//! Concrete drivers that talk to real agents: any OpenAI-compatible chat-completions
//! endpoint, and Agent Client Protocol agents run as subprocesses. (The scripted
//! driver lives in sessiond-actors.)

pub mod acp;
pub mod openai;
