// int8: the same network with matching widths compiles.
use microdnn::quant::{kernel, QActivation, QDense, QLayer, Requantize};

microdnn::qnetwork! {
    pub struct Net(NetBuffers) {
        hidden: QDense<4, 3>,
        out: QDense<3, 2>,
    }
}

fn main() {
    let (w1, b1, w2, b2) = ([[1i8; 4]; 3], [0i32; 3], [[1i8; 3]; 2], [0i32; 2]);
    let (mut k1, mut k2) = ([0i32; 3], [0i32; 2]);
    kernel::kernel_bias(w1.as_flattened(), 4, &b1, 0, &mut k1).unwrap();
    kernel::kernel_bias(w2.as_flattened(), 3, &b2, 0, &mut k2).unwrap();
    let rq = Requantize::new(&[1 << 30], &[0], 0, -128, 127).unwrap();
    let net = Net {
        hidden: QLayer::new(QDense::new(&w1, &b1, &k1, 0, rq).unwrap(), QActivation::Identity),
        out: QLayer::new(QDense::new(&w2, &b2, &k2, 0, rq).unwrap(), QActivation::Identity),
    };
    let mut bufs = NetBuffers::new();
    let _ = net.forward(&[1; 4], &mut bufs);
}
