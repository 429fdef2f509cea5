//! What a backend's training loss is: the value and its backward pass.

use tch::Tensor;

/// A part of the backward pass that autograd does not run: the fast backend's hand-written
/// LSTM passes ([`crate::fast::lstm::Tape`]), which read the gradients autograd left.
pub type Continuation = Box<dyn FnOnce()>;

/// A training loss and its backward pass: autograd, then the continuations in order (the
/// fast backend's decoder LSTM first — it hands the encoder's final states their gradients
/// — then the encoder's).
pub struct Loss {
    /// The scalar loss.
    pub value: Tensor,
    then: Vec<Continuation>,
}

impl Loss {
    /// A loss whose backward pass is autograd's alone.
    pub fn autograd(value: Tensor) -> Self {
        Self {
            value,
            then: Vec::new(),
        }
    }

    /// A loss whose backward pass continues with `then`, in order, after autograd's.
    pub fn continued(value: Tensor, then: Vec<Continuation>) -> Self {
        Self { value, then }
    }

    /// Accumulates the gradient of the loss into every parameter's `.grad`.
    pub fn backward(self) {
        self.value.backward();
        for part in self.then {
            part();
        }
    }
}

impl std::fmt::Debug for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loss")
            .field("value", &self.value)
            .field("continuations", &self.then.len())
            .finish()
    }
}
