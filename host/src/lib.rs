//! Host-side training, data loading and export for microdnn.
