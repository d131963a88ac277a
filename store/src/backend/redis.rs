//! redis backend
