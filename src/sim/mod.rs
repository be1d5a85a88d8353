//! The OIC emulator (being written).
