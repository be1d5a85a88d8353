//! Backup vaults (being written).
