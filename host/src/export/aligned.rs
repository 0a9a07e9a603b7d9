//! The one aligned-bytes helper of the host: a model file in 16-byte-aligned memory, as the
//! device has it in flash, so [`microdnn::ModelView`] can read its tensors in place.

use microdnn::ModelView;

/// A model file's bytes copied to 16-byte-aligned memory, as a device has them in flash.
pub struct AlignedModel {
    words: Vec<u128>,
    len: usize,
}

impl AlignedModel {
    /// Copies `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        for (w, c) in words.iter_mut().zip(bytes.chunks(16)) {
            let mut b = [0u8; 16];
            b[..c.len()].copy_from_slice(c);
            *w = u128::from_ne_bytes(b);
        }
        Self {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }

    /// Validates and views the model.
    pub fn view(&self) -> Result<ModelView<'_>, microdnn::ModelError> {
        ModelView::new_checked(self.bytes())
    }
}
