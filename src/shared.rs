//! [`Shared`]: the copy-on-write handle behind the values scripts pass around by the thousand
//! ([`crate::artifact::Artifact`], [`crate::oic::Integration`]).

use std::fmt;
use std::sync::{Arc, Weak};

/// A shared handle on a value's fields: read through `Deref`; a write through `DerefMut` copies
/// them first when another clone shares them. A clone costs a reference count, not a copy of the
/// fields' strings: scripts pass, filter and return arrays of these by value.
#[derive(PartialEq)]
pub struct Shared<T> {
    fields: Arc<T>,
}

impl<T> Shared<T> {
    /// A reference to the fields that does not keep them alive.
    pub fn downgrade(&self) -> Weak<T> {
        Arc::downgrade(&self.fields)
    }

    /// True when both handles share the same fields (no write has copied them apart).
    pub fn ptr_eq(a: &Shared<T>, b: &Shared<T>) -> bool {
        Arc::ptr_eq(&a.fields, &b.fields)
    }
}

// Written out rather than derived: a clone needs no `T: Clone`.
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            fields: Arc::clone(&self.fields),
        }
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.fields
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    /// The fields of this handle alone (copied first when another clone shares them).
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.fields)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fields.fmt(f)
    }
}

impl<T> From<T> for Shared<T> {
    fn from(fields: T) -> Shared<T> {
        Shared {
            fields: Arc::new(fields),
        }
    }
}
