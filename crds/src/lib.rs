//! tend.dev/v1alpha1 custom resources.
