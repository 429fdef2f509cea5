//! The homework's training loop (teacher forcing, Adam, best checkpoint by validation CER).
