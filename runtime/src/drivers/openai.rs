//! OpenAI-compatible driver (in progress).
