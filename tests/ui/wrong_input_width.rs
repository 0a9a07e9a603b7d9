// A network with 4 inputs fed a vector of 3.
use microdnn::{Activation, Dense, Layer};

microdnn::network! {
    pub struct Net(NetBuffers) {
        hidden: Dense<4, 3>,
        out: Dense<3, 2>,
    }
}

fn main() {
    let (w1, b1, w2, b2) = ([[0.5f32; 4]; 3], [0.0f32; 3], [[1.0f32; 3]; 2], [0.0f32; 2]);
    let net = Net {
        hidden: Layer::new(Dense::new(&w1, &b1), Activation::Relu),
        out: Layer::new(Dense::new(&w2, &b2), Activation::Identity),
    };
    let mut bufs = NetBuffers::new();
    let _ = net.forward(&[1.0; 3], &mut bufs);
}
