//! The OIC REST client (being written).
