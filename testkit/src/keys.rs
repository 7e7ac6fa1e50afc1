//! The age key pair backups are encrypted to.

use age::secrecy::ExposeSecret;
use tend_backup::{Decryption, Encryption};

/// A fresh age key pair, as the strings a Secret holds.
pub struct Keys {
    pub identity: String,
    pub recipient: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new()
    }
}

impl Keys {
    pub fn new() -> Self {
        let identity = age::x25519::Identity::generate();
        Self {
            recipient: identity.to_public().to_string(),
            identity: identity.to_string().expose_secret().to_owned(),
        }
    }

    pub fn encryption(&self) -> Encryption {
        Encryption::from_recipients(&self.recipient).expect("a valid recipient")
    }

    pub fn decryption(&self) -> Decryption {
        Decryption::from_identities(&self.identity).expect("a valid identity")
    }
}
