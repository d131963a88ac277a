//! Agent Client Protocol driver (in progress).
